"""The relying party's ID token checks against an in-process provider that can lie.

A wrong nonce, another audience, an expired token, a forged signature, another issuer and a userinfo
answer for another subject are each refused; a good token passes, and a rotated signing key is found
by fetching the JWKS again.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import RSAKey

from gateway.config import OidcConfig
from gateway.oidc import OidcClient, OidcError

CLIENT = "dashboard"


@dataclass
class Provider:
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    issuer: str = ""
    userinfo_sub: str = "alice"

    def sign(self, key: RSAKey | None = None, **overrides: Any) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": "alice", "aud": CLIENT, "iat": now, "exp": now + 300, "nonce": "n-1"}
        claims |= overrides
        signer = key or self.key
        return jwt.encode({"alg": "RS256", "kid": signer.kid}, claims, signer)


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    p = Provider()

    async def discovery(_: web.Request) -> web.Response:
        return web.json_response({
            "issuer": p.issuer, "authorization_endpoint": f"{p.issuer}/auth", "token_endpoint": f"{p.issuer}/token",
            "jwks_uri": f"{p.issuer}/jwks", "userinfo_endpoint": f"{p.issuer}/me",
            "code_challenge_methods_supported": ["S256"]})

    async def jwks(_: web.Request) -> web.Response:
        return web.json_response({"keys": [p.key.as_dict(private=False)]})

    async def me(_: web.Request) -> web.Response:
        return web.json_response({"sub": p.userinfo_sub, "groups": ["x"]})

    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", discovery)
    app.router.add_get("/jwks", jwks)
    app.router.add_get("/me", me)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    p.issuer = f"http://127.0.0.1:{port}"
    yield p
    await runner.cleanup()


def _client(provider: Provider) -> OidcClient:
    return OidcClient(OidcConfig(issuer=provider.issuer, client_id=CLIENT, client_secret="s",
                                 redirect_url="http://127.0.0.1:1/auth/callback"))


async def _refused(provider: Provider, token: str, nonce: str = "n-1") -> str:
    client = _client(provider)
    try:
        with pytest.raises(OidcError) as caught:
            await client.verify_id_token(token, nonce)
    finally:
        await client.close()
    return str(caught.value)


async def test_a_good_token_passes(provider: Provider) -> None:
    client = _client(provider)
    try:
        claims = await client.verify_id_token(provider.sign(), "n-1")
        assert claims["sub"] == "alice"
        url = await client.authorization_url(state="s", nonce="n", verifier="v" * 64)
        assert "code_challenge_method=S256" in url and "nonce=n" in url and "state=s" in url
    finally:
        await client.close()


async def test_wrong_nonce_is_refused(provider: Provider) -> None:
    assert "nonce" in await _refused(provider, provider.sign(), nonce="another")


async def test_token_for_another_audience_is_refused(provider: Provider) -> None:
    assert "aud" in await _refused(provider, provider.sign(aud="other-app"))
    # Several audiences including ours, but issued to another party (azp).
    assert "azp" in await _refused(provider, provider.sign(aud=[CLIENT, "other-app"], azp="other-app"))


async def test_expired_token_is_refused(provider: Provider) -> None:
    past = int(time.time()) - 3600
    assert "exp" in await _refused(provider, provider.sign(iat=past - 300, exp=past))


async def test_forged_signature_and_other_issuer_are_refused(provider: Provider) -> None:
    forger = RSAKey.generate_key(2048, parameters={"kid": "k1"})  # same kid, another key
    assert "signature" in await _refused(provider, provider.sign(key=forger))
    assert "iss" in await _refused(provider, provider.sign(iss="https://evil.example"))


async def test_rotated_key_is_fetched_again(provider: Provider) -> None:
    client = _client(provider)
    try:
        await client.verify_id_token(provider.sign(), "n-1")
        provider.key = RSAKey.generate_key(2048, parameters={"kid": "k2"})
        assert (await client.verify_id_token(provider.sign(), "n-1"))["sub"] == "alice"
    finally:
        await client.close()


async def test_userinfo_for_another_subject_is_refused(provider: Provider) -> None:
    client = _client(provider)
    try:
        assert (await client.userinfo("at", "alice"))["groups"] == ["x"]
        provider.userinfo_sub = "mallory"
        with pytest.raises(OidcError, match="another subject"):
            await client.userinfo("at", "alice")
    finally:
        await client.close()
