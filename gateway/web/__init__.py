"""The web dashboard (server-rendered Jinja2 from `dashboard/`) and the OIDC sign-in routes.

`setup_web(app)` registers routes and static files at `create_app`; `start_web(state, app, stack)`
fills in the OIDC service, the session manager and the tool-call audit writer once the store is open.

| Module | What it holds |
|---|---|
| `context` | `WebState`, the Jinja2 environment, the viewer, rendering and redirects |
| `auth` | sign-in, callback, sign-out; cookie authentication with CSRF for /api and pages |
| `invoke` | calling the REST API's handlers from pages (one implementation of every rule) |
| `pages` | Overview, Apps, Consent, Credentials, Catalog, Profiles, Sandboxes, Audit, Users, Account |
| `heatmap` | the calendar heatmap of tool calls (pure) |
| `toolaudit` | the per-tool-call audit: a batched writer and the front door observer that feeds it |
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.oidc import OidcService, SessionManager
from gateway.store.toolcalls import ToolCalls
from gateway.web import auth, pages
from gateway.web.auth import cookie_identity
from gateway.web.context import DASHBOARD_DIR, WEB, WebState
from gateway.web.toolaudit import AuditingObserver, ToolCallWriter

if TYPE_CHECKING:
    from gateway.app import GatewayState

DEFAULT_SESSION_TTL_S = 8 * 3600.0

__all__ = ["WEB", "WebState", "cookie_identity", "setup_web", "start_web"]


def setup_web(app: web.Application) -> None:
    app[WEB] = WebState()
    auth.setup(app)
    pages.setup(app)
    app.router.add_static("/static/", DASHBOARD_DIR / "static", append_version=True)


async def start_web(app: web.Application, state: GatewayState, stack: contextlib.AsyncExitStack) -> None:
    web_state = app[WEB]
    config = state.config
    ttl = config.oidc.session_ttl_s if config.oidc else DEFAULT_SESSION_TTL_S
    web_state.sessions = SessionManager(state.store, config.public_url, ttl)
    if config.oidc is not None:
        web_state.oidc = OidcService(config.oidc, state.store)
        stack.push_async_callback(web_state.oidc.close)
    writer = ToolCallWriter(ToolCalls(state.store.conn))
    writer.start()
    stack.push_async_callback(writer.close)
    web_state.tool_calls = writer
    state.frontdoor.call_observer = AuditingObserver(writer, state.frontdoor.call_observer)
