"""The authorization-code flow against a fake vendor: PKCE, single-use states bound to the browser or the
user, expiry, RFC 9207 issuer check, sealed tokens."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.oauth import CallbackError, ReadOnlyVendor, UnknownVendor, vendors_from_env
from gateway.oauth.service import MAX_PENDING_PER_USER
from tests.support.idp.fake import CLIENT_SECRET, OAuthEnv, oauth_env


async def _start(env: OAuthEnv, user_id: int | None = None) -> tuple[dict[str, str], dict[str, str]]:
    start = await env.service.start(user_id or env.user_id, "fake")
    query = {k: v[0] for k, v in parse_qs(urlsplit(start.authorize_url).query).items()}
    code = env.fake.issue_code(query["code_challenge"], query["redirect_uri"])
    return {"state": query["state"], "code": code, "iss": env.fake.base}, {start.cookie_name: start.cookie_value}


async def _refused(env: OAuthEnv, params: dict[str, str], cookies: dict[str, str], user_id: int | None = None,
                   ) -> CallbackError:
    with pytest.raises(CallbackError) as caught:
        await env.service.complete(params, cookies, user_id)
    return caught.value


async def _pending(env: OAuthEnv) -> int:
    async with env.store.conn.execute("SELECT count(*) FROM oauth_states") as cur:
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_connect_uses_pkce_and_seals_every_secret(tmp_path: Path) -> None:
    async with oauth_env(tmp_path) as env:
        start = await env.service.start(env.user_id, "fake")
        query = parse_qs(urlsplit(start.authorize_url).query)
        assert query["code_challenge_method"] == ["S256"] and query["response_type"] == ["code"]
        assert query["redirect_uri"] == ["http://gw.test:8080/oauth/callback"] and query["scope"] == ["api"]
        code = env.fake.issue_code(query["code_challenge"][0], query["redirect_uri"][0])
        info = await env.service.complete({"state": query["state"][0], "code": code, "iss": env.fake.base},
                                          {start.cookie_name: start.cookie_value}, None)
        assert (info.vendor, info.status, info.scopes, info.has_refresh_token) == ("fake", "connected", ("api",), True)
        (verifier,) = env.fake.verifiers
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        assert challenge == query["code_challenge"][0]
        assert await env.service.accounts(env.user_id) == [info]
        raw = env.db_bytes()
        for secret in (env.fake.access_tokens[0], *env.fake.live_refresh, CLIENT_SECRET, verifier,
                       query["state"][0], start.cookie_value):
            assert secret.encode() not in raw


async def test_a_state_is_used_once(tmp_path: Path) -> None:
    async with oauth_env(tmp_path) as env:
        params, cookies = await _start(env)
        first, second = await asyncio.gather(env.service.complete(params, cookies, None),
                                             env.service.complete(params, cookies, None), return_exceptions=True)
        outcomes = sorted([type(first).__name__, type(second).__name__])
        assert outcomes == ["AccountInfo", "CallbackError"]
        refused = first if isinstance(first, CallbackError) else second
        assert isinstance(refused, CallbackError) and refused.code == "invalid_state" and refused.status == 400
        assert env.fake.calls["authorization_code"] == 1
        assert (await _refused(env, {"state": "never-issued", "code": "x"}, {})).code == "invalid_state"
        assert (await _refused(env, {"code": "x"}, {})).code == "invalid_request"


async def test_a_state_expires(tmp_path: Path) -> None:
    async with oauth_env(tmp_path, state_ttl_s=0.2) as env:
        params, cookies = await _start(env)
        await asyncio.sleep(0.3)
        refused = await _refused(env, params, cookies)
        assert (refused.status, refused.code) == (400, "state_expired")
        assert env.fake.calls["authorization_code"] == 0
        await _start(env)
        await asyncio.sleep(0.3)
        await _start(env)  # starting purges the expired ones
        assert await _pending(env) == 1


async def test_a_state_is_bound_to_the_browser_or_the_user(tmp_path: Path) -> None:
    async with oauth_env(tmp_path) as env:
        mallory = (await env.store.users.ensure("mallory", "user")).id
        # A link started by someone else, opened in the victim's browser: no binding cookie.
        params, _ = await _start(env, mallory)
        refused = await _refused(env, params, {})
        assert (refused.status, refused.code) == (403, "state_not_bound")
        params, cookies = await _start(env, mallory)
        assert (await _refused(env, params, {k: "forged" for k in cookies})).code == "state_not_bound"
        # Logged in as another user: refused even with the right cookie.
        params, cookies = await _start(env, mallory)
        assert (await _refused(env, params, cookies, user_id=env.user_id)).code == "state_not_bound"
        # The same authenticated user needs no cookie.
        params, _ = await _start(env)
        info = await env.service.complete(params, {}, env.user_id)
        assert info.status == "connected"
        assert await env.service.accounts(mallory) == []
        assert env.fake.calls["authorization_code"] == 1


async def test_issuer_mismatch_and_denial_are_refused(tmp_path: Path) -> None:
    async with oauth_env(tmp_path) as env:
        params, cookies = await _start(env)
        refused = await _refused(env, params | {"iss": "http://127.0.0.1:1"}, cookies)
        assert (refused.status, refused.code) == (400, "issuer_mismatch")
        params, cookies = await _start(env)
        refused = await _refused(env, {"state": params["state"], "error": "access_denied"}, cookies)
        assert refused.code == "authorization_denied" and "access_denied" in str(refused)
        params, cookies = await _start(env)
        refused = await _refused(env, params | {"code": "wrong"}, cookies)
        assert (refused.status, refused.code) == (502, "token_exchange_failed") and "invalid_grant" in str(refused)
        params, cookies = await _start(env)
        del params["iss"]  # iss is optional (RFC 9207 is checked when present)
        assert (await env.service.complete(params, cookies, None)).status == "connected"


async def test_pending_states_per_user_are_capped(tmp_path: Path) -> None:
    async with oauth_env(tmp_path) as env:
        for _ in range(MAX_PENDING_PER_USER + 5):
            await env.service.start(env.user_id, "fake")
        assert await _pending(env) == MAX_PENDING_PER_USER
        with pytest.raises(UnknownVendor):
            await env.service.start(env.user_id, "nope")


async def test_vendors_from_the_environment_are_read_only(tmp_path: Path) -> None:
    async with oauth_env(tmp_path) as env:
        env_vendors = vendors_from_env({"GIG_OAUTH_GITLAB_CLIENT_ID": "app", "GIG_OAUTH_GITLAB_CLIENT_SECRET": "s"})
        await env.service.load_env(env_vendors)
        row = await env.service.vendor("gitlab")
        assert row is not None and row.source == "env" and row.client_secret is not None
        with pytest.raises(ReadOnlyVendor):
            await env.service.put_vendor(env_vendors[0].config)
        with pytest.raises(ReadOnlyVendor):
            await env.service.delete_vendor("gitlab")
        await env.service.load_env([])  # gone from the environment: editable again, nothing lost
        row = await env.service.vendor("gitlab")
        assert row is not None and row.source == "api" and row.client_secret is not None
        assert await env.service.delete_vendor("gitlab")
