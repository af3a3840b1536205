"""Dashboard sign-in and sign-out routes, and cookie authentication for /api and the dashboard.

- `GET /login`: the sign-in page (a POST form: starting a login is a state change).
- `POST /auth/login`: strict Origin check (there is no session, hence no CSRF token yet), then a
  pending login in the store, the browser-binding cookie, and a redirect to the IdP.
- `GET /auth/callback`: the IdP's redirect; on success a fresh session cookie and a redirect home.
- `POST /auth/logout`: CSRF-checked; the session is revoked, the cookie cleared, and the browser sent
  to the IdP's end-session endpoint when the provider has one (RP-initiated logout).
"""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.api.core import PRINCIPAL_KEY, error_response
from gateway.oidc import CSRF_FIELD, CSRF_HEADER, FLOW_COOKIE, SAFE_METHODS, OidcError, csrf_ok, origin_ok
from gateway.web.context import SESSION_KEY, page, render, state_of, web_of

log = logging.getLogger(__name__)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


async def cookie_identity(request: web.Request) -> web.StreamResponse | None:
    """Resolve the session cookie (for a request without a bearer token). A 403 response when a
    state-changing request lacks a valid CSRF token or comes from another origin; else None."""
    if request.path == "/mcp" or request.path.startswith("/mcp/"):
        return None  # the data plane takes bearer tokens only
    web_state = web_of(request)
    sessions = web_state.sessions
    if sessions is None:
        return None
    resolved = await sessions.resolve(request.cookies.get(sessions.cookie))
    if resolved is None:
        return None
    # Starting a login has its own strict Origin check (it must work before any session exists).
    if request.method not in SAFE_METHODS and request.path != "/auth/login":
        presented = request.headers.get(CSRF_HEADER)
        if presented is None and request.content_type in FORM_TYPES:
            presented = str((await request.post()).get(CSRF_FIELD, ""))
        public_url = state_of(request).config.public_url
        if not origin_ok(request, public_url) or not csrf_ok(request, resolved.token, presented):
            return error_response(403, "csrf_failed",
                                  "cross-site request refused: a valid CSRF token from this origin is required")
    request[PRINCIPAL_KEY] = resolved.principal
    request[SESSION_KEY] = resolved
    return None


@page
async def login_page(request: web.Request) -> web.StreamResponse:
    oidc = web_of(request).oidc
    return render(request, "login.html", title="Sign in", configured=oidc is not None,
                  issuer=oidc.config.issuer if oidc else "", next=request.query.get("next", "/"),
                  error=request.query.get("err", ""))


async def login_start(request: web.Request) -> web.StreamResponse:
    oidc = web_of(request).oidc
    if oidc is None:
        return error_response(404, "oidc_not_configured", "OIDC login is not configured (GIG_OIDC_ISSUER)")
    if not origin_ok(request, state_of(request).config.public_url):
        return error_response(403, "csrf_failed", "cross-site login start refused")
    data = await request.post()
    try:
        start = await oidc.start(str(data.get("next", "/")))
    except OidcError as exc:
        raise web.HTTPSeeOther("/login?err=" + exc.code)
    response = see_other(start.url)
    sessions = web_of(request).sessions
    response.set_cookie(FLOW_COOKIE, start.binding, max_age=600, path=oidc.cookie_path, httponly=True,
                        samesite="Lax", secure=bool(sessions and sessions.secure))
    response.headers["Cache-Control"] = "no-store"
    return response


async def callback(request: web.Request) -> web.StreamResponse:
    web_state = web_of(request)
    oidc, sessions = web_state.oidc, web_state.sessions
    if oidc is None or sessions is None:
        return error_response(404, "oidc_not_configured", "OIDC login is not configured (GIG_OIDC_ISSUER)")
    names = ("code", "state", "iss", "error")
    if any(len(request.query.getall(name, [])) > 1 for name in names):
        return _failed(request, OidcError("bad_request", "a login parameter is given more than once"))
    params = {k: request.query[k] for k in names if k in request.query}
    try:
        result = await oidc.complete(params, request.cookies.get(FLOW_COOKIE))
    except OidcError as exc:
        log.info("login refused: %s", exc.code)
        return _failed(request, exc)
    await state_of(request).store.profiles.ensure_default(result.user)
    token = await sessions.create(result.user.id, request)
    response = see_other(result.return_to)
    sessions.set_cookie(response, token)
    response.del_cookie(FLOW_COOKIE, path=oidc.cookie_path)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _failed(request: web.Request, exc: OidcError) -> web.StreamResponse:
    response = render(request, "error.html", status=400, title="Sign-in failed",
                      message=f"{exc} ({exc.code})", retry=True)
    oidc = web_of(request).oidc
    if oidc is not None:
        response.del_cookie(FLOW_COOKIE, path=oidc.cookie_path)
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    """Reached only through `cookie_identity`, so the CSRF token has been checked already."""
    web_state = web_of(request)
    sessions = web_state.sessions
    resolved = request.get(SESSION_KEY)
    if sessions is None or resolved is None:
        raise web.HTTPSeeOther("/login")
    await sessions.repo.revoke(resolved.session.id, resolved.session.user_id)
    public_url = state_of(request).config.public_url
    target = "/login?ok=signed+out"
    if web_state.oidc is not None:
        target = await web_state.oidc.client.logout_url(f"{public_url}/login") or target
    response = see_other(target)
    sessions.clear_cookie(response)
    return response


def setup(app: web.Application) -> None:
    app.router.add_get("/login", login_page)
    app.router.add_post("/auth/login", login_start)
    app.router.add_get("/auth/callback", callback)
    app.router.add_post("/auth/logout", logout)
