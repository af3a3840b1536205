"""What every dashboard handler shares: the web state on the app, the Jinja2 environment, the viewer.

Templates are autoescaped; every page gets the viewer (name, role), the session's CSRF token for its
forms, the navigation and a flash message carried in the query (`?ok=` / `?err=`, plain text only).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote, urlencode

import jinja2
from aiohttp import web

from gateway.api.core import principal_of
from gateway.auth import Principal
from gateway.config import REPO_ROOT

if TYPE_CHECKING:
    from gateway.app import GatewayState
    from gateway.oidc import OidcService, SessionManager
    from gateway.web.toolaudit import ToolCallWriter

DASHBOARD_DIR = REPO_ROOT / "dashboard"
SESSION_KEY = "gigmcp.web_session"  # the ResolvedSession of a cookie-authenticated request


@dataclass(slots=True)
class WebState:
    """Filled in at start (`gateway.web.start_web`); the routes exist from `create_app` on."""

    oidc: OidcService | None = None
    sessions: SessionManager | None = None
    tool_calls: ToolCallWriter | None = None
    env: jinja2.Environment = field(default_factory=lambda: _environment())


WEB: web.AppKey[WebState] = web.AppKey("gigmcp.web")

NAV = (
    ("/", "Overview", False),
    ("/apps", "Apps", False),
    ("/profiles", "Profiles", False),
    ("/credentials", "Credentials", False),
    ("/audit", "Audit", False),
    ("/sandboxes", "Sandboxes", False),
    ("/catalog", "Catalog", True),
    ("/users", "Users", True),
    ("/account", "Account", False),
)


def _when(value: float | None) -> str:
    if value is None:
        return "—"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(DASHBOARD_DIR / "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["urlpart"] = lambda v: quote(str(v), safe="")
    return env


def state_of(request: web.Request) -> GatewayState:
    from gateway.app import STATE  # gateway.app imports this package to register the routes

    return request.app[STATE]


def web_of(request: web.Request) -> WebState:
    return request.app[WEB]


def viewer(request: web.Request) -> Principal:
    """The signed-in person; anyone else is sent to the login page (a profile token is not a person)."""
    principal = principal_of(request)
    if principal is None or principal.is_profile_token:
        raise web.HTTPSeeOther("/login?" + urlencode({"next": request.path_qs}))
    return principal


class PageForbidden(Exception):
    """Rendered as a 403 page by `page` (an HTTPException would be turned into JSON by the guard)."""


def require_admin(request: web.Request) -> Principal:
    principal = viewer(request)
    if principal.role != "admin":
        raise PageForbidden("This page is for admins only.")
    return principal


Page = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page(handler: Page) -> Page:
    async def serve(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except PageForbidden as exc:
            return render(request, "error.html", status=403, title="Forbidden", message=str(exc))

    return serve


def csrf_of(request: web.Request) -> str:
    resolved = request.get(SESSION_KEY)
    return str(resolved.csrf) if resolved is not None else ""


def render_text(request: web.Request, template: str, **context: Any) -> str:
    principal = principal_of(request)
    is_admin = principal is not None and principal.role == "admin"
    base = {
        "viewer": principal,
        "is_admin": is_admin,
        "csrf": csrf_of(request),
        "nav": [(href, label) for href, label, admin in NAV if is_admin or not admin],
        "path": request.path,
        "flash_ok": request.query.get("ok", "")[:300],
        "flash_err": request.query.get("err", "")[:300],
        "public_url": state_of(request).config.public_url,
    }
    return web_of(request).env.get_template(template).render(**(base | context))


def render(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    response = web.Response(text=render_text(request, template, **context), status=status,
                            content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def back(location: str, *, ok: str = "", err: str = "") -> NoReturn:
    """Post/redirect/get: back to a page, with a one-line message."""
    params = {"ok": ok} if ok else {"err": err} if err else {}
    sep = "&" if "?" in location else "?"
    raise web.HTTPSeeOther(location + (sep + urlencode(params) if params else ""))


async def form(request: web.Request) -> dict[str, str]:
    data = await request.post()
    return {k: v for k, v in data.items() if isinstance(v, str)}
