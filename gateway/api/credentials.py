"""Credentials: write-only secrets per (user, server, credential id), sealed by the vault.

No endpoint ever returns a value: listing shows ids and times only.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api.core import ApiError, Call, Reply, Route, no_content, not_found, ok, timestamp
from gateway.api.lookup import installed_server
from gateway.api.schema import TIMESTAMP, array, component, obj, string
from gateway.credentials import MAX_SECRET_BYTES, MAX_SECRET_CHARS, CredentialInfo, Credentials, declared_credentials

CREDENTIAL = component(
    "Credential",
    obj(
        {"server": string(), "credential_id": string(), "created_at": TIMESTAMP, "updated_at": TIMESTAMP},
        ["server", "credential_id", "created_at", "updated_at"],
    ),
)
CREDENTIAL_LIST = component("CredentialList", obj({"credentials": array(CREDENTIAL)}, ["credentials"]))
SECRET = obj({"value": string(min_length=1, max_length=MAX_SECRET_CHARS, description="the secret; never returned")},
             ["value"])


def _data(info: CredentialInfo) -> dict[str, object]:
    return {"server": info.server, "credential_id": info.credential_id,
            "created_at": timestamp(info.created_at), "updated_at": timestamp(info.updated_at)}


def _service(call: Call) -> Credentials:
    service = call.state.credentials
    if service is None or not service.available:
        raise ApiError(409, "vault_not_configured",
                       "no master key is configured (GIG_MASTER_KEY or GIG_MASTER_KEY_FILE): credentials cannot "
                       "be stored")
    return service


async def list_all(call: Call) -> web.StreamResponse:
    rows = await call.state.store.secrets.list_for(call.principal.user_id)
    return ok({"credentials": [_data(CredentialInfo.of(r)) for r in rows]})


async def list_server(call: Call) -> web.StreamResponse:
    rows = await call.state.store.secrets.list_for(call.principal.user_id, call.path["server"])
    return ok({"credentials": [_data(CredentialInfo.of(r)) for r in rows]})


async def put_secret(call: Call) -> web.StreamResponse:
    server = installed_server(call, call.path["server"])
    credential_id = call.path["credential_id"]
    if credential_id not in declared_credentials(server):
        not_found(f"credential {credential_id!r} declared by server {server.name!r}")
    value = call.body["value"]
    if len(value.encode()) > MAX_SECRET_BYTES:
        raise ApiError(400, "invalid_request", f"field 'value' must be at most {MAX_SECRET_BYTES} bytes")
    info = await _service(call).set_secret(call.principal.user_id, server.name, credential_id, value)
    return ok(_data(info))


async def delete_secret(call: Call) -> web.StreamResponse:
    if not await call.state.store.secrets.delete(call.principal.user_id, call.path["server"],
                                                 call.path["credential_id"]):
        not_found("credential")
    return no_content()


ROUTES = [
    Route("GET", "/api/credentials", "List the caller's stored credentials (ids and times, never values)",
          "credentials", list_all, replies={200: Reply("the credentials", CREDENTIAL_LIST)}),
    Route("GET", "/api/credentials/{server}", "List the caller's credentials for one server", "credentials",
          list_server, replies={200: Reply("the credentials", CREDENTIAL_LIST)}),
    Route("PUT", "/api/credentials/{server}/{credential_id}", "Store or replace a secret (write-only)",
          "credentials", put_secret, body=SECRET, replies={200: Reply("stored; the value is not echoed", CREDENTIAL)}),
    Route("DELETE", "/api/credentials/{server}/{credential_id}", "Delete a stored secret", "credentials",
          delete_secret, replies={204: Reply("deleted")}),
]
