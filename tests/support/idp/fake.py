"""An in-process fake OAuth authorization server for unit tests: token endpoint (code with PKCE, refresh with
rotation and reuse detection), revocation, and counters. Runs on the test's event loop (aiohttp).
`oauth_env` puts it behind a real `OAuthService` over a fresh SQLite store.

Knobs: `expires_in`, `refresh_delay` (to make concurrent refreshes overlap), `fail_refresh` (an error
code to answer, or "unavailable" for a 503), `rotate`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from aiohttp import web

from gateway.oauth import AccountInfo, OAuthService, OAuthSettings, VendorConfig
from gateway.store import Store
from vault import MasterKey, generate_key_hex

CLIENT_ID = "fake-client"
CLIENT_SECRET = "fake-client-secret"


@dataclass
class FakeAuthServer:
    port: int = 0
    expires_in: int = 3600
    refresh_delay: float = 0.0
    fail_refresh: str = ""
    rotate: bool = True
    codes: dict[str, tuple[str, str]] = field(default_factory=dict)  # code -> (challenge, redirect_uri)
    live_refresh: set[str] = field(default_factory=set)
    used_refresh: set[str] = field(default_factory=set)
    access_tokens: list[str] = field(default_factory=list)
    revoked: list[tuple[str, str]] = field(default_factory=list)  # (hint, token)
    calls: dict[str, int] = field(default_factory=lambda: {"authorization_code": 0, "refresh_token": 0})
    verifiers: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def vendor(self, name: str = "fake", **overrides: object) -> VendorConfig:
        values: dict[str, object] = {
            "name": name, "authorize_url": f"{self.base}/oauth/authorize", "token_url": f"{self.base}/oauth/token",
            "client_id": CLIENT_ID, "revoke_url": f"{self.base}/oauth/revoke", "issuer": self.base,
            "scopes": ("api",),
        }
        return VendorConfig(**(values | overrides))  # type: ignore[arg-type]

    def issue_code(self, challenge: str, redirect_uri: str) -> str:
        code = secrets.token_urlsafe(16)
        self.codes[code] = (challenge, redirect_uri)
        return code

    def _tokens(self) -> dict[str, object]:
        access = "at-" + secrets.token_urlsafe(16)
        refresh = "rt-" + secrets.token_urlsafe(16)
        self.access_tokens.append(access)
        self.live_refresh.add(refresh)
        return {"access_token": access, "token_type": "Bearer", "expires_in": self.expires_in,
                "refresh_token": refresh, "scope": "api"}

    def _client_ok(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return unquote(user) == CLIENT_ID and unquote(password) == CLIENT_SECRET

    async def token(self, request: web.Request) -> web.Response:
        if not self._client_ok(request):
            return web.json_response({"error": "invalid_client"}, status=401)
        form = await request.post()
        grant = str(form.get("grant_type", ""))
        self.calls[grant] = self.calls.get(grant, 0) + 1
        if grant == "authorization_code":
            entry = self.codes.pop(str(form.get("code", "")), None)
            verifier = str(form.get("code_verifier", ""))
            self.verifiers.append(verifier)
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if entry is None or entry != (digest, str(form.get("redirect_uri", ""))):
                return web.json_response({"error": "invalid_grant"}, status=400)
            return web.json_response(self._tokens())
        if grant == "refresh_token":
            return await self._refresh(str(form.get("refresh_token", "")))
        return web.json_response({"error": "unsupported_grant_type"}, status=400)

    async def _refresh(self, token: str) -> web.Response:
        # Decided (and rotated) at once, answered after `refresh_delay`: a slow vendor that already rotated.
        body: dict[str, object]
        if self.fail_refresh == "unavailable":
            status, body = 503, {"error": "temporarily_unavailable"}
        elif self.fail_refresh:
            status, body = 400, {"error": self.fail_refresh}
        elif token not in self.live_refresh:
            status, body = 400, {"error": "invalid_grant", "error_description": "reused"}
        else:
            status, body = 200, self._tokens()
            if self.rotate:
                self.live_refresh.discard(token)
                self.used_refresh.add(token)
            else:
                self.live_refresh.discard(str(body["refresh_token"]))
                del body["refresh_token"]
        await asyncio.sleep(self.refresh_delay)
        return web.json_response(body, status=status)

    async def revoke(self, request: web.Request) -> web.Response:
        form = await request.post()
        token = str(form.get("token", ""))
        self.revoked.append((str(form.get("token_type_hint", "")), token))
        self.live_refresh.discard(token)
        return web.Response(status=200)


@asynccontextmanager
async def fake_auth_server(**knobs: object) -> AsyncIterator[FakeAuthServer]:
    server = FakeAuthServer(**knobs)  # type: ignore[arg-type]
    app = web.Application()
    app.router.add_post("/oauth/token", server.token)
    app.router.add_post("/oauth/revoke", server.revoke)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    server.port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        await runner.cleanup()


@dataclass
class OAuthEnv:
    """A store, an `OAuthService` with the fake server as vendor `fake`, and a user."""

    store: Store
    service: OAuthService
    fake: FakeAuthServer
    user_id: int
    path: Path

    def db_bytes(self) -> bytes:
        return b"".join(p.read_bytes() for p in sorted(self.path.parent.iterdir()) if p.name.startswith("gig.db"))

    async def connect(self, user_id: int | None = None) -> AccountInfo:
        """Run the whole authorization: start, the vendor's code for the challenge, the callback."""
        start = await self.service.start(user_id or self.user_id, "fake")
        query = parse_qs(urlsplit(start.authorize_url).query)
        code = self.fake.issue_code(query["code_challenge"][0], query["redirect_uri"][0])
        params = {"state": query["state"][0], "code": code, "iss": self.fake.base}
        return await self.service.complete(params, {start.cookie_name: start.cookie_value}, None)

    async def expire(self, user_id: int | None = None) -> None:
        """Make the account's access token look expired (its lifetime kept)."""
        await self.store.conn.execute(
            "UPDATE oauth_accounts SET obtained_at = obtained_at - expires_at + ?, expires_at = ? WHERE user_id = ?",
            (time.time() - 1, time.time() - 1, user_id or self.user_id),
        )


@asynccontextmanager
async def oauth_env(tmp_path: Path, *, state_ttl_s: float = 600.0, **knobs: object) -> AsyncIterator[OAuthEnv]:
    store = await Store.open(tmp_path / "gig.db")
    try:
        async with fake_auth_server(**knobs) as fake:
            key = MasterKey.from_hex(generate_key_hex())
            service = OAuthService(store, key, OAuthSettings("http://gw.test:8080", state_ttl_s=state_ttl_s))
            try:
                await service.put_vendor(fake.vendor(), CLIENT_SECRET)
                user = await store.users.ensure("alice", "user")
                yield OAuthEnv(store, service, fake, user.id, tmp_path / "gig.db")
            finally:
                await service.close()
    finally:
        await store.close()
