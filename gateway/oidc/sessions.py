"""Browser sessions: opaque tokens in an HttpOnly cookie, only their SHA-256 in the store, and CSRF.

A session token is 32 random bytes. Its CSRF token is derived from it (a keyed digest), so it needs
no storage, is the same for the life of the session, and cannot be computed by a page that cannot
read the HttpOnly cookie. A state-changing request authenticated by the cookie must carry that token
(`X-CSRF-Token` header or `csrf_token` form field) *and*, when the browser sends one, an Origin equal
to the gateway's public origin: `SameSite=Lax` alone does not stop a sibling port on the same host,
which browsers count as the same site.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from gateway.auth import Principal
from gateway.store import Store
from gateway.store.websessions import WebSession, WebSessions

SESSION_BYTES = 32
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOUCH_RESOLUTION_S = 60.0


def cookie_name(public_url: str) -> str:
    # __Host- binds the cookie to this exact host, path / and Secure: no subdomain can plant one.
    return "__Host-gig_session" if public_url.startswith("https://") else "gig_session"


def session_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def csrf_token(session_token: str) -> str:
    return hmac.new(session_token.encode(), b"gigmcp-csrf-v1", hashlib.sha256).hexdigest()


def public_origin(public_url: str) -> str:
    parts = urlsplit(public_url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def origin_ok(request: web.Request, public_url: str) -> bool:
    """Strict: the request comes from a page of the gateway itself (or the browser says nothing)."""
    origin = request.headers.get("Origin")
    if origin is not None:
        return origin.lower().rstrip("/") == public_origin(public_url)
    # No Origin (older browsers, some same-origin requests): Sec-Fetch-Site still tells a cross-site one.
    return request.headers.get("Sec-Fetch-Site", "same-origin") in ("same-origin", "none")


def csrf_ok(request: web.Request, session_token: str, presented: str | None) -> bool:
    if not presented:
        return False
    return hmac.compare_digest(presented.encode(), csrf_token(session_token).encode())


@dataclass(frozen=True, slots=True)
class ResolvedSession:
    principal: Principal
    session: WebSession
    token: str

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


class SessionManager:
    def __init__(self, store: Store, public_url: str, ttl_s: float) -> None:
        self.repo = WebSessions(store.conn)
        self.public_url = public_url
        self.ttl_s = ttl_s
        self.cookie = cookie_name(public_url)
        self._touched: dict[int, float] = {}

    @property
    def secure(self) -> bool:
        return self.public_url.startswith("https://")

    async def create(self, user_id: int, request: web.Request) -> str:
        token = secrets.token_urlsafe(SESSION_BYTES)
        await self.repo.purge_expired(time.time())
        await self.repo.create(user_id, session_hash(token), self.ttl_s,
                               user_agent=request.headers.get("User-Agent", ""), address=request.remote or "")
        return token

    async def resolve(self, token: str | None) -> ResolvedSession | None:
        if not token or len(token) > 100:
            return None
        now = time.time()
        owner = await self.repo.active_by_hash(session_hash(token), now)
        if owner is None:
            return None
        # A duration, so the monotonic clock: a wall-clock step must not stop (or flood) the touches.
        ticks = time.monotonic()
        last = self._touched.get(owner.session.id)
        if last is None or ticks - last >= TOUCH_RESOLUTION_S:
            self._touched[owner.session.id] = ticks
            if len(self._touched) > 10_000:
                self._touched.clear()
            await self.repo.touch(owner.session.id, now)
        principal = Principal(user=owner.user.name, role=owner.user.role, token_id=f"ses-{owner.session.id}",
                              user_id=owner.user.id)
        return ResolvedSession(principal, owner.session, token)

    def set_cookie(self, response: web.StreamResponse, token: str) -> None:
        response.set_cookie(self.cookie, token, max_age=int(self.ttl_s), path="/", httponly=True,
                            samesite="Lax", secure=self.secure)

    def clear_cookie(self, response: web.StreamResponse) -> None:
        response.del_cookie(self.cookie, path="/", secure=self.secure, httponly=True, samesite="Lax")
