"""The REST control plane under /api: one module per resource, all routes in one table.

`setup_api_routes(app)` registers the routes, `GET /api/openapi.json` (generated from the same table)
and the middleware that resolves each request's bearer credential (so `gateway.app._principal` and
every handler read the same, freshly authenticated principal).
"""

from __future__ import annotations

from aiohttp import web

from gateway.api import consent, credentials, oauth, profiles, servers, tokens, users
from gateway.api.core import Route, identity_middleware, make_handler, principal_of, state_of
from gateway.api.openapi import build_document

ROUTES: tuple[Route, ...] = (
    *users.ROUTES,
    *tokens.ROUTES,
    *profiles.ROUTES,
    *credentials.ROUTES,
    *consent.ROUTES,
    *servers.ROUTES,
    *oauth.ROUTES,
)
API_VERSION = "1"

__all__ = ["ROUTES", "principal_of", "setup_api_routes"]


async def openapi_document(request: web.Request) -> web.Response:
    # Public: the document describes the API's shape, nothing about its data.
    public_url = state_of(request).config.public_url
    return web.json_response(build_document(ROUTES, version=API_VERSION, server_url=public_url))


def setup_api_routes(app: web.Application) -> None:
    app.middlewares.append(identity_middleware)
    app.router.add_get("/api/openapi.json", openapi_document)
    oauth.setup_callback(app)  # GET /oauth/callback: public, reached by the vendor's redirect
    for route in ROUTES:
        if route.handler is not None:
            app.router.add_route(route.method, route.path, make_handler(route))
