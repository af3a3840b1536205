"""The REST control plane's machinery: one route table, strict JSON bodies, JSON errors, access rules.

A `Route` is everything about an endpoint: method, path, handler, who may call it, the schema of its
body and query, and its responses. The same table registers the aiohttp routes and generates the
OpenAPI document, so the document cannot drift from what is served.

Every error is `{"error": {"code", "message"}}`. Bodies are refused when they are not JSON objects,
carry unknown fields (the message names the field), or exceed `MAX_BODY_BYTES`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from aiohttp import web

from gateway.api.schema import Schema, SchemaError, component, integer, obj, string, validate
from gateway.auth import Principal, bearer_token

if TYPE_CHECKING:
    from gateway.app import GatewayState

# Room for every schema-valid body, even a longest secret written as JSON \u escapes (12 bytes a character).
MAX_BODY_BYTES = 128 * 1024
PRINCIPAL_KEY = "gigmcp.principal"

# ---- shared path parameters and schemas ----------------------------------------------------------
USER_NAME = string(pattern=r"^[a-z][a-z0-9-]{0,31}$", description="lowercase letters, digits, '-'")
SLUG = string(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$", description="lowercase letters, digits, '-'")
SERVER_NAME = string(pattern=r"^[a-z][a-z0-9-]{0,31}$")
CREDENTIAL_ID = string(pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="as the server's manifest declares it")
TOOL_NAME = string(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
ROW_ID = integer(minimum=1, maximum=2**63 - 1)
PATH_PARAMS: dict[str, Schema] = {
    "name": USER_NAME,
    "slug": SLUG,
    "server": SERVER_NAME,
    "credential_id": CREDENTIAL_ID,
    "tool": TOOL_NAME,
    "id": ROW_ID,
    "profile": ROW_ID,
    "vendor": string(pattern=r"^[a-z][a-z0-9-]{0,31}$", description="an OAuth vendor, e.g. gitlab"),
}
ERROR = component(
    "Error",
    obj({"error": obj({"code": string(), "message": string()}, ["code", "message"])}, ["error"]),
)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def not_found(what: str) -> NoReturn:
    raise ApiError(404, "not_found", f"no such {what}")


def conflict(message: str, code: str = "conflict") -> NoReturn:
    raise ApiError(409, code, message)


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


def ok(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


def no_content() -> web.Response:
    return web.Response(status=204)


def timestamp(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def state_of(request: web.Request) -> GatewayState:
    # Imported here: gateway.app imports this package to register the routes.
    from gateway.app import STATE

    return request.app[STATE]


def principal_of(request: web.Request) -> Principal | None:
    """The credential resolved for this request by `identity_middleware` (None: none or invalid)."""
    principal = request.get(PRINCIPAL_KEY)
    return principal if isinstance(principal, Principal) else None


@web.middleware
async def identity_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Resolve the bearer credential once per request, so every handler (and `_principal`) sees it.

    It never rejects by itself: each route decides whether it needs a principal.
    """
    token = bearer_token(request)
    if token:
        state = state_of(request)
        state.store.cache.begin_request()
        request[PRINCIPAL_KEY] = await state.auth.authenticate(token, state.store)
    else:
        # A browser's session cookie (not on /mcp); a state-changing request must pass the CSRF check.
        from gateway.web import cookie_identity

        refused = await cookie_identity(request)
        if refused is not None:
            return refused
    return await handler(request)


# ---- routes ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Reply:
    description: str
    schema: Schema | None = None  # None: no body (204)


@dataclass(slots=True)
class Call:
    """One validated API request, as handlers see it."""

    request: web.Request
    state: GatewayState
    principal: Principal
    path: dict[str, Any]
    query: dict[str, Any]
    body: dict[str, Any]


Handler = Callable[[Call], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class QueryParam:
    name: str
    schema: Schema
    description: str = ""


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str  # OpenAPI form; its {params} must be in PATH_PARAMS
    summary: str
    tag: str
    handler: Handler | None  # None: served elsewhere (gateway.app), listed here for the document only
    access: str = "user"  # "user": a personal or bootstrap token; "admin": and the admin role
    body: Schema | None = None
    query: tuple[QueryParam, ...] = ()
    replies: Mapping[int, Reply] = field(default_factory=dict)

    @property
    def path_params(self) -> list[str]:
        return re.findall(r"{(\w+)}", self.path)


def _authorize(route: Route, request: web.Request) -> Principal:
    principal = principal_of(request)
    if principal is None:
        raise ApiError(401, "unauthorized", "a valid bearer token is required")
    if principal.is_profile_token:
        raise ApiError(403, "forbidden", "a profile token reaches only its MCP endpoint; use a personal token")
    if route.access == "admin" and principal.role != "admin":
        raise ApiError(403, "forbidden", "admin only")
    return principal


def _path_values(route: Route, request: web.Request) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in route.path_params:
        raw = request.match_info[name]
        schema = PATH_PARAMS[name]
        if schema["type"] == "integer":
            if not raw.isascii() or not raw.isdigit() or len(raw) > 19:
                not_found(name)
            value: Any = int(raw)
        else:
            value = raw
        try:
            validate(schema, value, name)
        except SchemaError:
            not_found(name)  # a malformed name or id names nothing
        values[name] = value
    return values


def _query_values(route: Route, request: web.Request) -> dict[str, Any]:
    known = {q.name: q for q in route.query}
    values: dict[str, Any] = {}
    for key in request.query:
        if key not in known:
            raise ApiError(400, "invalid_request", f"unknown query parameter '{key}'")
        if len(request.query.getall(key)) > 1:
            raise ApiError(400, "invalid_request", f"query parameter '{key}' is given more than once")
    for name, param in known.items():
        if name in request.query:
            try:
                validate(param.schema, request.query[name], name)
            except SchemaError as exc:
                raise ApiError(400, "invalid_request", str(exc)) from None
            values[name] = request.query[name]
    return values


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


async def _read_limited(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"the request body exceeds {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "too_large", f"the request body exceeds {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _body(route: Route, request: web.Request) -> dict[str, Any]:
    raw = await _read_limited(request)
    if route.body is None:
        if raw.strip():
            raise ApiError(400, "invalid_request", "this endpoint takes no request body")
        return {}
    if not raw.strip() and not route.body.get("required"):
        return {}  # every field is optional: no body means all defaults
    if request.content_type != "application/json" and not request.content_type.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", "the request body must be application/json")
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
        # Lone surrogates ("\ud800") parse but cannot be stored or encoded: refuse them here.
        json.dumps(data, ensure_ascii=False).encode()
    except (ValueError, UnicodeError, RecursionError):
        raise ApiError(400, "invalid_json", "the request body is not valid JSON") from None
    try:
        validate(route.body, data)
    except SchemaError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    assert isinstance(data, dict)
    return data


def make_handler(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    assert route.handler is not None
    handler = route.handler

    async def serve(request: web.Request) -> web.StreamResponse:
        try:
            principal = _authorize(route, request)
            path = _path_values(route, request)
            query = _query_values(route, request)
            body = await _body(route, request)
            return await handler(Call(request, state_of(request), principal, path, query, body))
        except ApiError as exc:
            headers = {"WWW-Authenticate": 'Bearer realm="gigmcp"'} if exc.status == 401 else None
            return error_response(exc.status, exc.code, exc.message, headers)

    return serve
