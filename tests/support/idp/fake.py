"""An in-process fake OAuth authorization server for unit tests: token endpoint (code with PKCE, refresh with
rotation and reuse detection), revocation, and counters. Runs on the test's event loop (aiohttp).

Knobs: `expires_in`, `refresh_delay` (to make concurrent refreshes overlap), `fail_refresh` (an error
code to answer, or "unavailable" for a 503), `rotate`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import unquote

from aiohttp import web

from gateway.oauth import VendorConfig

CLIENT_ID = "fake-client"
CLIENT_SECRET = "fake-client-secret"  # noqa: S105 - a test fixture


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
            await asyncio.sleep(self.refresh_delay)
            if self.fail_refresh == "unavailable":
                return web.json_response({"error": "temporarily_unavailable"}, status=503)
            if self.fail_refresh:
                return web.json_response({"error": self.fail_refresh}, status=400)
            token = str(form.get("refresh_token", ""))
            if token not in self.live_refresh:
                return web.json_response({"error": "invalid_grant", "error_description": "reused"}, status=400)
            body = self._tokens()
            if self.rotate:
                self.live_refresh.discard(token)
                self.used_refresh.add(token)
            else:
                self.live_refresh.discard(str(body["refresh_token"]))
                del body["refresh_token"]
            return web.json_response(body)
        return web.json_response({"error": "unsupported_grant_type"}, status=400)

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
    server.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield server
    finally:
        await runner.cleanup()
