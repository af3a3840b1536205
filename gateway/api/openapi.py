"""The OpenAPI 3.1 document, generated from the route table (the same one that registers the routes)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from gateway.api.core import ERROR, PATH_PARAMS, Route
from gateway.api.schema import COMPONENTS

ERROR_REPLIES = {
    "400": "the request is malformed: bad JSON, an unknown or invalid field (named in the message)",
    "401": "no valid bearer token",
    "403": "the credential may not do this",
    "404": "no such resource (also: someone else's)",
    "409": "the request conflicts with the current state",
    "413": "the body is too large",
    "415": "the body is not JSON",
}


def _operation(route: Route) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, reply in sorted(route.replies.items()):
        entry: dict[str, Any] = {"description": reply.description}
        if reply.schema is not None:
            entry["content"] = {"application/json": {"schema": reply.schema}}
        responses[str(status)] = entry
    for code, description in ERROR_REPLIES.items():
        responses.setdefault(code, {"description": description, "content": {"application/json": {"schema": ERROR}}})
    # Anything else the front of the gateway may answer (421 wrong Host, 405, 502 failed install) is an Error too.
    responses["default"] = {"description": "an error", "content": {"application/json": {"schema": ERROR}}}
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": PATH_PARAMS[name]} for name in route.path_params
    ]
    parameters += [
        {"name": q.name, "in": "query", "required": False, "schema": q.schema, "description": q.description}
        for q in route.query
    ]
    operation_id = re.sub(r"[^a-z0-9]+", "_", f"{route.method} {route.path}".lower()).strip("_")
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": route.summary,
        "tags": [route.tag],
        "responses": responses,
    }
    if route.access == "admin":
        operation["description"] = "Admin only."
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": bool(route.body.get("required")),
            "content": {"application/json": {"schema": route.body}},
        }
    return operation


def build_document(routes: Sequence[Route], *, version: str, server_url: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "gigmcp control plane",
            "version": version,
            "description": "Users, tokens, profiles, tool toggles, consent, credentials and servers. "
                           'Errors are {"error": {"code", "message"}}; request bodies are strict JSON objects.',
        },
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(COMPONENTS.items())),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
