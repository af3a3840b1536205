"""OAuth connected accounts end to end, against a real oidc-provider IdP with 3-second access tokens.

A user connects an account (authorization code + PKCE + state, headless login and consent); a sandboxed
fetch server whose manifest declares an `oauth2` credential reaches a TLS upstream through the egress
proxy, which injects the account's access token per request. After the token expired, 20 concurrent tool
calls cause exactly one refresh at the IdP and all carry the new token; the rotated refresh token survives
a gateway restart; disconnecting revokes the tokens at the IdP and the next call shows the proxy's 503
`credential_unavailable`.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.conftest_egress import Pki, Upstream, make_pki, start_upstream
from tests.support.api import api, db_path
from tests.support.gateway import REPO, TOKEN, Gateway, RawSession
from tests.support.idp import Idp, IdpUnavailable, headless_authorize, running_idp

pytestmark = [pytest.mark.root]
VENDOR = "testidp"
ACCESS_TTL = 3


@dataclass
class World:
    gw: Gateway
    idp: Idp
    upstream: Upstream

    def url(self, path: str) -> str:
        return f"https://allowed.test:{self.upstream.https_port}{path}"

    def seen(self, prefix: str) -> list[dict[str, Any]]:
        return [r for r in self.upstream.seen if r["path"].startswith(prefix)]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
async def upstream(pki: Pki) -> AsyncIterator[Upstream]:
    up, runners = await start_upstream(pki)
    yield up
    for runner in runners:
        await runner.cleanup()


@pytest.fixture(scope="module")
def world(upstream: Upstream, pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("oauth")
    servers = root / "registry" / "servers"
    servers.mkdir(parents=True)
    (servers / "fetch.yaml").write_text(textwrap.dedent(f"""\
        name: fetch
        version: 0.1.0
        description: fetch, with a connected OAuth account for allowed.test
        runtime: python
        package: {{path: {REPO / 'servers' / 'fetch'}}}
        command: [gigmcp-fetch]
        egress:
          - {{host: allowed.test, ports: [{upstream.https_port}]}}
        credentials:
          - id: account
            type: oauth2
            vendor: {VENDOR}
            hosts: [allowed.test]
            env: FETCH_TOKEN
            header: Authorization
            format: "Bearer {{secret}}"
        """))
    gw = Gateway(install="fetch", env={
        "GIG_REGISTRY_DIR": str(servers.parent),
        "GIG_TEST_EGRESS_OVERRIDES": "allowed.test=127.0.0.1",
        "GIG_UPSTREAM_CA_FILE": str(pki.ca_pem),
        "GIG_MASTER_KEY": secrets.token_hex(32),
    })
    try:
        idp_context = running_idp(f"{gw.url}/oauth/callback", access_ttl=ACCESS_TTL, log_dir=root)
        idp = idp_context.__enter__()
    except IdpUnavailable as exc:
        pytest.skip(str(exc))
    try:
        gw.start()
        try:
            status, body = api(gw, "PUT", f"/api/oauth/vendors/{VENDOR}", {
                "authorize_url": f"{idp.issuer}/auth", "token_url": f"{idp.issuer}/token",
                "revoke_url": f"{idp.issuer}/token/revocation", "issuer": idp.issuer,
                "client_id": idp.client_id, "client_secret": idp.client_secret, "scopes": "api",
            })
            assert status == 201, body
            yield World(gw, idp, upstream)
        finally:
            gw.stop()
    finally:
        idp_context.__exit__(None, None, None)


async def _fetch(raw: RawSession, url: str) -> dict[str, Any]:
    reply = await asyncio.to_thread(raw.call, "fetch_fetch", {"url": url, "bearer_from_env": "FETCH_TOKEN"})
    assert "result" in reply, reply
    structured = reply["result"].get("structuredContent") or {}
    return dict(structured.get("result", structured))


def _bearer(record: dict[str, Any]) -> str:
    return str(record["headers"]["authorization"]).removeprefix("Bearer ")


def _live_tokens_in(data: bytes, idp: Idp) -> list[str]:
    """Every token-shaped string in `data` that the IdP says is active (there must be none)."""
    candidates = {m.decode() for m in re.findall(rb"[A-Za-z0-9_-]{43}", data)}
    return [c for c in candidates if idp.introspect(c).get("active")]


async def _authorized_callback(gw: Gateway, browser: aiohttp.ClientSession, token: str = TOKEN) -> str:
    """Connect from `browser`: the API call, then the IdP's login and consent; the redirect back to the gateway."""
    headers = {"Authorization": f"Bearer {token}"}
    async with browser.post(f"{gw.url}/api/oauth/{VENDOR}/connect", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        start = await resp.json()
        cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "Path=/oauth/callback" in cookie and "SameSite=Lax" in cookie
    return await headless_authorize(browser, start["authorize_url"], start["redirect_uri"])


async def test_vendor_api_and_access(world: World) -> None:
    gw, idp = world.gw, world.idp
    status, vendor = api(gw, "GET", f"/api/oauth/vendors/{VENDOR}")
    assert status == 200 and vendor["has_client_secret"] is True and "client_secret" not in vendor
    assert idp.client_secret not in json.dumps(vendor)
    assert idp.client_secret not in json.dumps(api(gw, "GET", "/api/oauth/vendors"))
    assert vendor["redirect_uri"] == f"{gw.url}/oauth/callback" and vendor["source"] == "api"
    assert api(gw, "POST", "/api/users", {"name": "bob"})[0] == 201
    bob = api(gw, "POST", "/api/tokens", {"name": "t", "user": "bob"})[1]["token"]
    assert api(gw, "GET", "/api/oauth/vendors", token=bob)[0] == 200
    for method in ("GET", "DELETE"):
        assert api(gw, method, f"/api/oauth/vendors/{VENDOR}", token=bob)[0] == 403
    assert api(gw, "PUT", f"/api/oauth/vendors/{VENDOR}", {"authorize_url": "https://x/a", "token_url": "https://x/t",
                                                           "client_id": "c"}, token=bob)[0] == 403
    status, refused = api(gw, "PUT", "/api/oauth/vendors/other", {"authorize_url": "http://example.com/a",
                                                                  "token_url": "https://x/t", "client_id": "c"})
    assert status == 400 and "authorize_url" in refused["error"]["message"]
    assert api(gw, "POST", "/api/oauth/nope/connect")[1]["error"]["code"] == "not_found"
    # A connection started by bob, finished in another browser (the admin's), is refused and used up.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as bobs_browser:
        callback = await _authorized_callback(gw, bobs_browser, bob)
    async with aiohttp.ClientSession() as other_browser, other_browser.get(callback) as resp:
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "state_not_bound"
    assert api(gw, "GET", "/api/oauth/accounts", token=bob)[1] == {"accounts": []}


async def test_connect_an_account(world: World) -> None:
    gw, idp = world.gw, world.idp
    exchanges = idp.stats()["token"].get("authorization_code", {}).get("ok", 0)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        callback = await _authorized_callback(gw, browser)
        assert "iss=" in callback and "code=" in callback
        async with browser.get(callback) as resp:
            body = await resp.json()
            assert resp.status == 200, body
        assert body["connected"]["vendor"] == VENDOR and body["connected"]["status"] == "connected"
        async with browser.get(callback) as resp:  # the state was used up
            assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_state"
    status, accounts = api(gw, "GET", "/api/oauth/accounts")
    assert status == 200 and [a["vendor"] for a in accounts["accounts"]] == [VENDOR]
    assert accounts["accounts"][0]["has_refresh_token"] is True
    assert idp.stats()["token"]["authorization_code"]["ok"] == exchanges + 1


async def test_refresh_happens_once_under_twenty_concurrent_calls(world: World) -> None:
    gw, idp = world.gw, world.idp
    raw = RawSession(gw).open()
    warm = await _fetch(raw, world.url("/warm"))  # spawns the sandbox (and refreshes if the token aged meanwhile)
    assert warm["status"] == 200, warm
    before = _bearer(world.seen("/warm")[-1])
    assert idp.introspect(before)["active"]
    await asyncio.sleep(ACCESS_TTL + 0.3)  # every token issued so far has expired
    refreshes = idp.refreshes()
    started = time.monotonic()
    results = await asyncio.gather(*(_fetch(raw, world.url(f"/burst/{i}")) for i in range(20)))
    elapsed = time.monotonic() - started
    assert [r["status"] for r in results] == [200] * 20, results
    assert idp.refreshes() == refreshes + 1, idp.stats()
    burst = world.seen("/burst/")
    assert len(burst) == 20
    tokens = {_bearer(r) for r in burst}
    assert len(tokens) == 1 and before not in tokens, "all 20 requests carry the one new token"
    (after,) = tokens
    assert idp.introspect(after)["active"]
    assert after not in json.dumps(results)  # echoed back by the upstream, scrubbed by the proxy
    refresh_events = [e for e in idp.token_log() if e["grant_type"] == "refresh_token"]
    print(f"\n20 concurrent calls after expiry: {elapsed:.2f} s, 1 refresh at the IdP "
          f"(refreshes so far: {len(refresh_events)}, all ok: {all(e['status'] == 200 for e in refresh_events)})")
    assert idp.stats()["token"]["refresh_token"]["error"] == 0
    raw_db = b"".join(p.read_bytes() for p in db_path(gw).parent.glob(db_path(gw).name + "*"))
    assert after.encode() not in raw_db and before.encode() not in raw_db
    assert _live_tokens_in(raw_db, idp) == []  # sealed: no live access or refresh token in the database


async def test_rotated_refresh_token_survives_a_restart(world: World) -> None:
    gw, idp = world.gw, world.idp
    refreshes = idp.refreshes()
    gw.stop()
    gw.start()
    status, account = api(gw, "POST", f"/api/oauth/accounts/{VENDOR}/refresh")
    assert status == 200, account
    assert account["status"] == "connected" and account["last_error"] == ""
    assert idp.refreshes() == refreshes + 1
    assert idp.stats()["token"]["refresh_token"]["error"] == 0  # the stored refresh token was the current one
    got = await _fetch(RawSession(gw).open(), world.url("/after-restart"))
    assert got["status"] == 200, got
    assert idp.introspect(_bearer(world.seen("/after-restart")[-1]))["active"]


async def test_disconnect_revokes_and_the_next_call_says_why(world: World) -> None:
    gw, idp = world.gw, world.idp
    raw = RawSession(gw).open()
    assert (await _fetch(raw, world.url("/before-revoke")))["status"] == 200
    token = _bearer(world.seen("/before-revoke")[-1])
    revocations = idp.stats()["revocation"]
    status, body = api(gw, "DELETE", f"/api/oauth/accounts/{VENDOR}")
    assert status == 200 and body == {"vendor": VENDOR, "revoked_at_vendor": True}
    assert idp.stats()["revocation"] == revocations + 2  # the refresh token and the access token
    assert idp.introspect(token) == {"active": False}
    got = await _fetch(raw, world.url("/after-revoke"))
    assert got["status"] == 503, got
    assert json.loads(got["body"]) == {"error": "egress_denied", "reason": "credential_unavailable"}
    assert got["headers"].get("X-Gig-Deny-Reason") == "credential_unavailable"
    assert world.seen("/after-revoke") == []  # refused at the proxy: the upstream saw nothing
    assert api(gw, "GET", "/api/oauth/accounts")[1] == {"accounts": []}
    assert api(gw, "DELETE", f"/api/oauth/accounts/{VENDOR}")[0] == 404
    log = Path(str(gw.log_path)).read_text()
    assert token not in log and idp.client_secret not in log
