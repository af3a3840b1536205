"""OAuth connected accounts: vendor configurations (admin), connecting an account, listing and removing it.

`POST /api/oauth/{vendor}/connect` answers the vendor's authorization URL and sets a short-lived,
HttpOnly cookie that binds the authorization to this browser; the vendor sends the browser back to
`GET /oauth/callback` (public: it is reached by a redirect, not by an API client), which finishes the
connection. Tokens and the client secret are never returned by any endpoint.
"""

from __future__ import annotations

from aiohttp import web

from gateway.api.core import ApiError, Call, Reply, Route, error_response, no_content, not_found, ok, principal_of
from gateway.api.core import state_of as _state_of
from gateway.api.core import timestamp as _ts
from gateway.api.schema import TIMESTAMP, array, boolean, component, nullable, obj, string
from gateway.oauth import (
    CALLBACK_PATH,
    AccountInfo,
    CallbackError,
    OAuthService,
    ReadOnlyVendor,
    UnknownVendor,
    VendorConfig,
    VendorError,
)
from gateway.oauth.service import binding_cookie_name
from gateway.oauth.vendors import (
    CLIENT_ID_PATTERN,
    CLIENT_SECRET_PATTERN,
    MAX_URL,
    OPTIONAL_URL_PATTERN,
    SCOPES_PATTERN,
    TOKEN_AUTH_METHODS,
    URL_PATTERN,
)
from gateway.store.oauth import KEEP, VendorRow

SCOPES = string(pattern=SCOPES_PATTERN, max_length=1024, description="space-separated OAuth scopes")
VENDOR_BODY = obj(
    {
        "authorize_url": string(pattern=URL_PATTERN, max_length=MAX_URL),
        "token_url": string(pattern=URL_PATTERN, max_length=MAX_URL),
        "revoke_url": string(pattern=OPTIONAL_URL_PATTERN, max_length=MAX_URL,
                             description="RFC 7009 revocation endpoint; empty: none"),
        "issuer": string(pattern=OPTIONAL_URL_PATTERN, max_length=MAX_URL,
                         description="checked against the callback's iss (RFC 9207)"),
        "client_id": string(pattern=CLIENT_ID_PATTERN),
        "client_secret": nullable(string(pattern=CLIENT_SECRET_PATTERN,
                                         description="write-only; omitted: keep the stored one; null: none")),
        "scopes": SCOPES,
        "pkce": boolean("send an S256 PKCE challenge (default true)"),
        "token_auth": string(enum=TOKEN_AUTH_METHODS, description="how the client authenticates at the token endpoint"),
    },
    ["authorize_url", "token_url", "client_id"],
)
VENDOR = component("OAuthVendor", obj(
    {
        "vendor": string(), "authorize_url": string(), "token_url": string(), "revoke_url": string(),
        "issuer": string(), "client_id": string(), "has_client_secret": boolean(), "scopes": string(),
        "pkce": boolean(), "token_auth": string(), "source": string(enum=("api", "env")),
        "redirect_uri": string(), "created_at": TIMESTAMP, "updated_at": TIMESTAMP,
    },
    ["vendor", "authorize_url", "token_url", "revoke_url", "issuer", "client_id", "has_client_secret", "scopes",
     "pkce", "token_auth", "source", "redirect_uri", "created_at", "updated_at"],
))
VENDOR_LIST = component("OAuthVendorList", obj({"vendors": array(VENDOR)}, ["vendors"]))
CONNECT = component("OAuthConnect", obj(
    {"authorize_url": string(), "redirect_uri": string(), "expires_at": TIMESTAMP},
    ["authorize_url", "redirect_uri", "expires_at"],
))
ACCOUNT = component("OAuthAccount", obj(
    {
        "vendor": string(), "status": string(enum=("connected", "reconnect_required")), "scopes": string(),
        "connected_at": TIMESTAMP, "refreshed_at": nullable(TIMESTAMP), "expires_at": nullable(TIMESTAMP),
        "has_refresh_token": boolean(), "last_error": string(),
    },
    ["vendor", "status", "scopes", "connected_at", "refreshed_at", "expires_at", "has_refresh_token", "last_error"],
))
ACCOUNT_LIST = component("OAuthAccountList", obj({"accounts": array(ACCOUNT)}, ["accounts"]))
DISCONNECTED = component("OAuthDisconnected", obj(
    {"vendor": string(), "revoked_at_vendor": boolean("the vendor confirmed the revocation of the tokens")},
    ["vendor", "revoked_at_vendor"],
))


def _service(call: Call) -> OAuthService:
    service = call.state.oauth
    if service is None or not service.available:
        raise ApiError(409, "vault_not_configured",
                       "no master key is configured (GIG_MASTER_KEY or GIG_MASTER_KEY_FILE): OAuth is unavailable")
    return service


def _vendor_data(row: VendorRow, service: OAuthService) -> dict[str, object]:
    return {
        "vendor": row.name, "authorize_url": row.authorize_url, "token_url": row.token_url,
        "revoke_url": row.revoke_url, "issuer": row.issuer, "client_id": row.client_id,
        "has_client_secret": row.client_secret is not None, "scopes": " ".join(row.scopes), "pkce": row.pkce,
        "token_auth": row.token_auth, "source": row.source, "redirect_uri": service.settings.redirect_uri,
        "created_at": _ts(row.created_at), "updated_at": _ts(row.updated_at),
    }


def account_data(info: AccountInfo) -> dict[str, object]:
    return {
        "vendor": info.vendor, "status": info.status, "scopes": " ".join(info.scopes),
        "connected_at": _ts(info.connected_at), "refreshed_at": _ts(info.refreshed_at),
        "expires_at": _ts(info.expires_at), "has_refresh_token": info.has_refresh_token,
        "last_error": info.last_error,
    }


async def list_vendors(call: Call) -> web.StreamResponse:
    service = _service(call)
    return ok({"vendors": [_vendor_data(row, service) for row in await service.vendors()]})


async def get_vendor(call: Call) -> web.StreamResponse:
    service = _service(call)
    row = await service.vendor(call.path["vendor"])
    if row is None:
        not_found("OAuth vendor")
    return ok(_vendor_data(row, service))


async def put_vendor(call: Call) -> web.StreamResponse:
    service = _service(call)
    body = call.body
    try:
        config = VendorConfig(
            name=call.path["vendor"], authorize_url=body["authorize_url"], token_url=body["token_url"],
            client_id=body["client_id"], revoke_url=body.get("revoke_url", ""), issuer=body.get("issuer", ""),
            scopes=tuple(str(body.get("scopes", "")).split()), pkce=bool(body.get("pkce", True)),
            token_auth=body.get("token_auth", "client_secret_basic"),
        )
    except VendorError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    try:
        row, created = await service.put_vendor(config, body.get("client_secret", KEEP))
    except ReadOnlyVendor as exc:
        raise ApiError(409, "vendor_from_environment", str(exc)) from None
    except LookupError as exc:
        raise ApiError(409, "concurrent_change", str(exc)) from None
    return ok(_vendor_data(row, service), 201 if created else 200)


async def delete_vendor(call: Call) -> web.StreamResponse:
    try:
        deleted = await _service(call).delete_vendor(call.path["vendor"])
    except ReadOnlyVendor as exc:
        raise ApiError(409, "vendor_from_environment", str(exc)) from None
    if not deleted:
        not_found("OAuth vendor")
    return no_content()


async def connect(call: Call) -> web.StreamResponse:
    service = _service(call)
    try:
        start = await service.start(call.principal.user_id, call.path["vendor"])
    except UnknownVendor:
        not_found("OAuth vendor")
    response = ok({"authorize_url": start.authorize_url, "redirect_uri": start.redirect_uri,
                   "expires_at": _ts(start.expires_at)})
    response.set_cookie(start.cookie_name, start.cookie_value, max_age=int(service.settings.state_ttl_s),
                        path=service.settings.cookie_path, httponly=True, samesite="Lax",
                        secure=service.settings.secure_cookies)
    response.headers["Cache-Control"] = "no-store"
    return response


async def list_accounts(call: Call) -> web.StreamResponse:
    accounts = await _service(call).accounts(call.principal.user_id)
    return ok({"accounts": [account_data(info) for info in accounts]})


async def disconnect(call: Call) -> web.StreamResponse:
    revoked = await _service(call).disconnect(call.principal.user_id, call.path["vendor"])
    if revoked is None:
        not_found("connected account")
    return ok({"vendor": call.path["vendor"], "revoked_at_vendor": revoked})


async def refresh(call: Call) -> web.StreamResponse:
    info = await _service(call).refresh_now(call.principal.user_id, call.path["vendor"])
    if info is None:
        not_found("connected account")
    if info.status != "connected":
        raise ApiError(409, "reconnect_required", info.last_error or "connect the account again")
    if info.last_error:
        raise ApiError(502, "vendor_unavailable", info.last_error)
    return ok(account_data(info))


async def callback(request: web.Request) -> web.StreamResponse:
    """`GET /oauth/callback`: the vendor's redirect back to the gateway, in the user's browser."""
    service = _state_of(request).oauth
    if service is None or not service.available:
        return error_response(409, "vault_not_configured", "OAuth is unavailable: no master key is configured")
    names = ("code", "state", "iss", "error")
    if any(len(request.query.getall(name, [])) > 1 for name in names):
        return error_response(400, "invalid_request", "a callback parameter is given more than once")
    params = {name: request.query[name] for name in names if name in request.query}
    principal = principal_of(request)
    user_id = principal.user_id if principal is not None and not principal.is_profile_token else None
    try:
        info = await service.complete(params, request.cookies, user_id)
        response = ok({"connected": account_data(info)})
    except CallbackError as exc:
        response = error_response(exc.status, exc.code, str(exc))
    if params.get("state"):
        response.del_cookie(binding_cookie_name(params["state"]), path=service.settings.cookie_path)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def setup_callback(app: web.Application) -> None:
    app.router.add_get(CALLBACK_PATH, callback)


ROUTES = [
    Route("GET", "/api/oauth/vendors", "List the OAuth vendors accounts can be connected with", "oauth",
          list_vendors, replies={200: Reply("the vendors (never a client secret)", VENDOR_LIST)}),
    Route("GET", "/api/oauth/vendors/{vendor}", "One OAuth vendor configuration", "oauth", get_vendor,
          access="admin", replies={200: Reply("the vendor", VENDOR)}),
    Route("PUT", "/api/oauth/vendors/{vendor}", "Create or replace an OAuth vendor (the client secret is write-only)",
          "oauth", put_vendor, access="admin", body=VENDOR_BODY,
          replies={200: Reply("replaced", VENDOR), 201: Reply("created", VENDOR)}),
    Route("DELETE", "/api/oauth/vendors/{vendor}", "Delete an OAuth vendor and every account connected with it",
          "oauth", delete_vendor, access="admin", replies={204: Reply("deleted")}),
    Route("POST", "/api/oauth/{vendor}/connect", "Start connecting an account: the URL to open in this browser",
          "oauth", connect, replies={200: Reply("open authorize_url; a binding cookie is set", CONNECT)}),
    Route("GET", "/api/oauth/accounts", "The caller's connected accounts (never a token)", "oauth", list_accounts,
          replies={200: Reply("the accounts", ACCOUNT_LIST)}),
    Route("DELETE", "/api/oauth/accounts/{vendor}", "Disconnect: revoke the tokens at the vendor, delete them",
          "oauth", disconnect, replies={200: Reply("disconnected", DISCONNECTED)}),
    Route("POST", "/api/oauth/accounts/{vendor}/refresh", "Refresh the account's access token now", "oauth",
          refresh, replies={200: Reply("refreshed", ACCOUNT)}),
]
