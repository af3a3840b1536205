"""Servers: show one installed server with the caller's consent state; install from the catalog (admin).

`GET /api/servers`, `GET /api/sandboxes`, `DELETE /api/sandboxes/{server}/{profile}` and
`GET /api/audit/egress` are served by `gateway.app`; they are listed here (without a handler) so that the
OpenAPI document covers them.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from gateway.api.consent import CONSENT_VIEW, HASH, MANIFEST, consent_view
from gateway.api.core import SERVER_NAME, ApiError, Call, QueryParam, Reply, Route, not_found, ok
from gateway.api.lookup import installed_server
from gateway.api.schema import ANY_JSON, array, boolean, component, integer, nullable, obj, string
from gateway.catalog import load_catalog
from gateway.installer import InstallError
from gateway.manifest import ManifestError

SERVER = component(
    "Server",
    obj(
        {"name": SERVER_NAME, "version": string(), "runtime_hash": HASH, "manifest": MANIFEST,
         "consent": CONSENT_VIEW},
        ["name", "version", "runtime_hash", "manifest", "consent"],
    ),
)
INSTALLED = component(
    "Installed",
    obj({"name": SERVER_NAME, "version": string(), "runtime_hash": HASH,
         "changed": boolean("the runtime hash differs from what was installed before")},
        ["name", "version", "runtime_hash", "changed"]),
)
SERVER_INDEX = component(
    "ServerIndex",
    obj({"installed": obj({}, open_map=obj({"version": string(), "runtime_hash": HASH}, ["version", "runtime_hash"])),
         "catalog": array(string())}, ["installed", "catalog"]),
)
SANDBOXES = component(
    "Sandboxes",
    obj({"sandboxes": array({"type": "object"}), "spawns": integer(minimum=0)}, ["sandboxes", "spawns"]),
)
STOPPED = component("Stopped", obj({"stopped": array(ANY_JSON)}, ["stopped"]))
AUDIT_PAGE = component(
    "EgressAuditPage",
    obj({"records": array({"type": "object"}), "next_before": nullable(integer())}, ["records", "next_before"]),
)
# Parameter values of the manifest's `config` section (e.g. {"gitlab_url": "https://gitlab.example.com"}).
CONFIG_VALUES = obj({}, open_map={"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "boolean"}]})
INSTALL = obj({"name": SERVER_NAME, "config": CONFIG_VALUES,
               "staged": boolean("keep the previous version serving those who approved it until they approve "
                                 "this one (default: true for a new version, false for a changed manifest of the same "
                                 "version)")}, ["name"])

# One install at a time: two concurrent installs of one server would race on its directory.
_install_lock = asyncio.Lock()


async def show(call: Call) -> web.StreamResponse:
    server = installed_server(call, call.path["server"])
    return ok({
        "name": server.name, "version": server.version, "runtime_hash": server.runtime_hash,
        "manifest": json.loads(server.manifest_json),
        "consent": await consent_view(call.state.store, call.principal.user_id, server),
    })


async def install(call: Call) -> web.StreamResponse:
    state = call.state
    name = call.body["name"]
    async with _install_lock:
        # Re-read the registry: an install takes what the catalog offers now, not what it held at start.
        try:
            state.catalog = load_catalog(state.config)
        except (ManifestError, OSError) as exc:
            raise ApiError(409, "registry_invalid", f"the registry cannot be read: {exc}") from None
        if state.catalog.get(name) is None:
            not_found(f"server {name!r} in the catalog")
        previous = state.installed.get(name)
        try:
            record = await state.install_server(name, config=call.body.get("config") or {},
                                                staged=call.body.get("staged"))
        except ManifestError as exc:
            raise ApiError(409, "invalid_config", str(exc)) from None
        except InstallError as exc:
            raise ApiError(502, "install_failed", str(exc)) from None
    changed = previous is None or previous.runtime_hash != record.runtime_hash
    return ok({"name": record.name, "version": record.version, "runtime_hash": record.runtime_hash,
               "changed": changed})


async def uninstall(call: Call) -> web.StreamResponse:
    name = call.path["server"]
    async with _install_lock:
        if not await call.state.uninstall_server(name):
            not_found(f"installed server {name!r}")
    return ok({"uninstalled": name})


ROUTES = [
    Route("GET", "/api/servers", "Installed servers and the catalog", "servers", None, access="admin",
          replies={200: Reply("installed servers and catalog names", SERVER_INDEX)}),
    Route("GET", "/api/servers/{server}", "An installed server's manifest and the caller's consent to it",
          "servers", show, replies={200: Reply("the server", SERVER)}),
    Route("DELETE", "/api/servers/{server}", "Uninstall a server: its sandboxes stop, and its profile memberships, "
          "tool toggles, consents and stored credentials are removed", "servers", uninstall, access="admin",
          replies={200: Reply("uninstalled", obj({"uninstalled": SERVER_NAME}, ["uninstalled"]))}),
    Route("POST", "/api/servers/install", "Install (or upgrade) a server from the catalog; a changed manifest stops "
          "its sandboxes and needs new consent", "servers", install, access="admin", body=INSTALL,
          replies={200: Reply("installed", INSTALLED)}),
    Route("GET", "/api/sandboxes", "Live sandboxes", "servers", None, access="admin",
          replies={200: Reply("sandboxes and the spawn count", SANDBOXES)}),
    Route("DELETE", "/api/sandboxes/{server}/{profile}", "Stop one sandbox", "servers", None, access="admin",
          replies={200: Reply("stopped", STOPPED)}),
    Route("GET", "/api/audit/egress", "Egress audit records, newest first", "servers", None, access="admin",
          query=(QueryParam("limit", integer(), "page size, clamped to 1..500 (default 100)"),
                 QueryParam("before", integer(minimum=0, maximum=2**63 - 1), "records older than this id"),
                 QueryParam("server", string()), QueryParam("decision", string())),
          replies={200: Reply("a page of records", AUDIT_PAGE)}),
]
