"""Consent: show what a server's current manifest may do (and what changed since the caller approved
it), grant consent to exactly that manifest, or revoke it.

A grant names the runtime hash it approves when the client sends one: if the manifest changed
between showing and approving, the grant is refused rather than approving something unseen.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from gateway.api.core import SERVER_NAME, ApiError, Call, Reply, Route, no_content, not_found, ok, timestamp
from gateway.api.lookup import installed_server, stop_sandboxes
from gateway.api.schema import ANY_JSON, TIMESTAMP, array, boolean, component, nullable, obj, string
from gateway.consent import diff_manifests
from gateway.store import InstalledServer, Store

HASH = string(pattern=r"^[0-9a-f]{64}$")
MANIFEST = {"type": "object", "description": "the manifest as the registry ships it"}
STRINGS = array(string())
DIFF = component(
    "ManifestDiff",
    obj(
        {
            "hosts_added": STRINGS, "hosts_removed": STRINGS, "hosts_changed": STRINGS,
            "credentials_added": STRINGS, "credentials_removed": STRINGS, "credentials_changed": STRINGS,
            "tools_added": STRINGS, "tools_removed": STRINGS,
            "changes": obj({}, open_map=obj({"from": ANY_JSON, "to": ANY_JSON}, ["from", "to"])),
        },
        ["hosts_added", "hosts_removed", "hosts_changed", "credentials_added", "credentials_removed",
         "credentials_changed", "tools_added", "tools_removed", "changes"],
    ),
)
CURRENT = obj(
    {"version": string(), "runtime_hash": HASH, "manifest": MANIFEST}, ["version", "runtime_hash", "manifest"]
)
CONSENTED = obj(
    {"version": string(), "runtime_hash": HASH, "granted_at": TIMESTAMP, "manifest": MANIFEST},
    ["version", "runtime_hash", "granted_at", "manifest"],
)
CONSENT_VIEW = component(
    "ConsentView",
    obj(
        {"server": SERVER_NAME, "up_to_date": boolean("the caller approved exactly the current manifest"),
         "current": CURRENT, "consented": nullable(CONSENTED), "diff": DIFF},
        ["server", "up_to_date", "current", "consented", "diff"],
    ),
)
CONSENT_ENTRY = obj(
    {"server": string(), "version": string(), "runtime_hash": HASH, "granted_at": TIMESTAMP,
     "current": boolean("this consent covers the installed manifest")},
    ["server", "version", "runtime_hash", "granted_at", "current"],
)
CONSENT_LIST = component(
    "ConsentList",
    obj({"consents": array(CONSENT_ENTRY),
         "pending": array(string(description="servers in the caller's profiles that wait for consent"))},
        ["consents", "pending"]),
)
GRANT = obj({"runtime_hash": HASH}, [])


async def consent_view(store: Store, user_id: int, server: InstalledServer) -> dict[str, Any]:
    exact = await store.consents.get(user_id, server.name, server.runtime_hash)
    approved = exact or await store.consents.latest(user_id, server.name)
    current = json.loads(server.manifest_json)
    before = json.loads(approved.manifest_json) if approved else None
    return {
        "server": server.name,
        "up_to_date": exact is not None,
        "current": {"version": server.version, "runtime_hash": server.runtime_hash, "manifest": current},
        "consented": {
            "version": approved.version, "runtime_hash": approved.runtime_hash,
            "granted_at": timestamp(approved.granted_at), "manifest": before,
        } if approved else None,
        "diff": diff_manifests(before, current).to_data(),
    }


async def list_consents(call: Call) -> web.StreamResponse:
    store = call.state.store
    user_id = call.principal.user_id
    consents = []
    for record in await store.consents.list_for(user_id):
        installed = call.state.installed.get(record.server)
        consents.append({
            "server": record.server, "version": record.version, "runtime_hash": record.runtime_hash,
            "granted_at": timestamp(record.granted_at),
            "current": installed is not None and await store.consents.has(user_id, record.server,
                                                                          installed.runtime_hash),
        })
    pending: set[str] = set()
    for profile in await store.profiles.list_for(user_id):
        for name in await store.profiles.server_names(profile.id):
            installed = call.state.installed.get(name)
            if installed and not await store.consents.has(user_id, name, installed.runtime_hash):
                pending.add(name)
    return ok({"consents": consents, "pending": sorted(pending)})


async def show(call: Call) -> web.StreamResponse:
    server = installed_server(call, call.path["server"])
    return ok(await consent_view(call.state.store, call.principal.user_id, server))


async def grant(call: Call) -> web.StreamResponse:
    server = installed_server(call, call.path["server"])
    reviewed = call.body.get("runtime_hash")
    if reviewed is not None and reviewed != server.runtime_hash:
        raise ApiError(409, "manifest_changed",
                       f"server {server.name!r} changed since that manifest was shown: review it again")
    store = call.state.store
    await store.consents.grant(call.principal.user_id, server.name, server.runtime_hash, server.version,
                               server.manifest_json)
    return ok(await consent_view(store, call.principal.user_id, server))


async def revoke(call: Call) -> web.StreamResponse:
    store = call.state.store
    name = call.path["server"]
    if not await store.consents.revoke(call.principal.user_id, name):
        not_found("consent")
    profiles = await store.profiles.list_for(call.principal.user_id)
    await stop_sandboxes(call, [p.id for p in profiles], "consent revoked", server=name)
    return no_content()


ROUTES = [
    Route("GET", "/api/consent", "The caller's consents, and servers waiting for one", "consent", list_consents,
          replies={200: Reply("consents", CONSENT_LIST)}),
    Route("GET", "/api/consent/{server}", "What the server may do now, and what changed since the caller's consent",
          "consent", show, replies={200: Reply("the current and the consented manifest, and their difference",
                                               CONSENT_VIEW)}),
    Route("POST", "/api/consent/{server}", "Consent to the server's current manifest", "consent", grant, body=GRANT,
          replies={200: Reply("consent recorded", CONSENT_VIEW)}),
    Route("DELETE", "/api/consent/{server}", "Revoke consent; the caller's sandboxes of the server stop", "consent",
          revoke, replies={204: Reply("revoked")}),
]
