"""Calling the REST API's own handlers from the dashboard, so that both share one implementation.

`invoke` finds the route in the API's table, applies the same access rule and body schema, runs the
handler with the viewer as principal, and returns (status, decoded JSON). An API error comes back as
its status and `{"error": {...}}`, which pages show as a message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.api import ROUTES
from gateway.api.core import ApiError, Call, Route, _authorize, state_of
from gateway.api.schema import SchemaError, validate


def _route(method: str, path: str) -> Route:
    for route in ROUTES:
        if route.method == method and route.path == path and route.handler is not None:
            return route
    raise LookupError(f"no API route {method} {path}")


@dataclass(frozen=True, slots=True)
class Result:
    status: int
    data: Any
    response: web.Response | None = None  # the API's own response (its cookies, e.g. an OAuth binding)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


async def invoke(request: web.Request, method: str, path: str, params: dict[str, Any] | None = None,
                 body: dict[str, Any] | None = None, query: dict[str, Any] | None = None) -> Result:
    route = _route(method, path)
    assert route.handler is not None
    try:
        principal = _authorize(route, request)
        if route.body is not None:
            try:
                validate(route.body, body or {})
            except SchemaError as exc:
                raise ApiError(400, "invalid_request", str(exc)) from None
        call = Call(request, state_of(request), principal, dict(params or {}), dict(query or {}), dict(body or {}))
        response = await route.handler(call)
    except ApiError as exc:
        return Result(exc.status, {"error": {"code": exc.code, "message": exc.message}})
    assert isinstance(response, web.Response)
    data = json.loads(response.body) if isinstance(response.body, bytes) and response.body else None
    return Result(response.status, data, response)


def message(data: Any, fallback: str = "the request failed") -> str:
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return str(data["error"].get("message", fallback))
    return fallback
