"""OIDC login and browser sessions against the real oidc-provider test IdP (headless, aiohttp).

Refused: a forged state, a replayed authorization code, a callback in another browser, an expired
session, a cross-site POST without the CSRF token (and with it from another origin); each user sees
only their own profiles, credentials and audit; admin pages answer 403 to a user. Logout ends the
session and sends the browser to the IdP's end-session endpoint; a login started before a gateway
restart completes after it (the pending login lives in the store).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from tests.support.api import db_path
from tests.support.gateway import Gateway, RawSession
from tests.support.idp import Idp, IdpUnavailable, dashboard_login, headless_authorize, oidc_gateway

pytestmark = [pytest.mark.root, pytest.mark.node]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, Idp]]:
    try:
        with oidc_gateway(tmp_path_factory.mktemp("oidc")) as pair:
            yield pair
    except IdpUnavailable as exc:
        pytest.skip(str(exc))


def _jar() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


@pytest.fixture
async def admin(world: tuple[Gateway, Idp]) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    async with _jar() as session:
        yield session, await dashboard_login(session, world[0], "admin-alice")


@pytest.fixture
async def user(world: tuple[Gateway, Idp]) -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    async with _jar() as session:
        yield session, await dashboard_login(session, world[0], "bob")


async def _start(session: aiohttp.ClientSession, gw: Gateway) -> str:
    async with session.post(f"{gw.url}/auth/login", data={"next": "/"}, headers={"Origin": gw.url},
                            allow_redirects=False) as resp:
        assert resp.status == 303
        return resp.headers["Location"]


async def test_login_sets_a_hardened_session_cookie_and_roles_from_the_claim(world: tuple[Gateway, Idp]) -> None:
    gw, _ = world
    async with _jar() as session:
        authorize = await _start(session, gw)
        query = parse_qs(urlsplit(authorize).query)
        assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
        callback = await headless_authorize(session, authorize, f"{gw.url}/auth/callback", user="admin-carol")
        async with session.get(callback, allow_redirects=False) as resp:
            assert resp.status == 303
            cookie = resp.cookies["gig_session"]
            assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
            assert not cookie["secure"]  # the public URL is http here; https sets Secure and __Host-
        async with session.get(f"{gw.url}/api/me") as resp:
            me = await resp.json()
        assert me["name"] == "admin-carol" and me["role"] == "admin"
    async with _jar() as session:
        await dashboard_login(session, gw, "dave")
        async with session.get(f"{gw.url}/api/me") as resp:
            assert (await resp.json())["role"] == "user"


async def test_forged_state_is_refused(world: tuple[Gateway, Idp]) -> None:
    gw, _ = world
    async with _jar() as session:
        await _start(session, gw)
        async with session.get(f"{gw.url}/auth/callback?code=abc&state=forged-state-value") as resp:
            assert resp.status == 400
            assert "bad_state" in await resp.text()
            assert "gig_session" not in resp.cookies
        async with session.get(f"{gw.url}/api/me") as resp:
            assert resp.status == 401


async def test_replayed_code_and_callback_in_another_browser_are_refused(world: tuple[Gateway, Idp]) -> None:
    gw, _ = world
    async with _jar() as victim, _jar() as attacker:
        authorize = await _start(attacker, gw)
        callback = await headless_authorize(attacker, authorize, f"{gw.url}/auth/callback", user="mallory")
        # Login CSRF: the attacker's callback URL opened in the victim's browser (no binding cookie).
        await _start(victim, gw)
        async with victim.get(callback, allow_redirects=False) as resp:
            assert resp.status == 400 and "bad_binding" in await resp.text()
        async with victim.get(f"{gw.url}/api/me") as resp:
            assert resp.status == 401
    async with _jar() as session:
        authorize = await _start(session, gw)
        callback = await headless_authorize(session, authorize, f"{gw.url}/auth/callback", user="erin")
        async with session.get(callback, allow_redirects=False) as resp:
            assert resp.status == 303
        async with session.get(callback, allow_redirects=False) as resp:  # the same URL again: state used
            assert resp.status == 400 and "bad_state" in await resp.text()
        # The same code under a fresh, valid state of this browser: the code itself is refused.
        fresh = parse_qs(urlsplit(await _start(session, gw)).query)["state"][0]
        code = parse_qs(urlsplit(callback).query)["code"][0]
        async with session.get(f"{gw.url}/auth/callback", params={"code": code, "state": fresh},
                               allow_redirects=False) as resp:
            assert resp.status == 400 and "code_replayed" in await resp.text()


async def test_cross_site_post_without_csrf_token_is_refused(
        world: tuple[Gateway, Idp], user: tuple[aiohttp.ClientSession, str]) -> None:
    gw, _ = world
    session, csrf = user
    body = {"slug": "bob-side"}
    async with session.post(f"{gw.url}/api/profiles", json=body) as resp:
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "csrf_failed"
    # A sibling port on the same host is the same *site* for SameSite: the Origin check stops it.
    async with session.post(f"{gw.url}/api/profiles", json=body,
                            headers={"X-CSRF-Token": csrf, "Origin": "http://127.0.0.1:1"}) as resp:
        assert resp.status == 403
    async with session.post(f"{gw.url}/profiles", data={"slug": "bob-form"}, headers={"Origin": gw.url},
                            allow_redirects=False) as resp:
        assert resp.status == 403
    async with session.post(f"{gw.url}/api/profiles", json=body, headers={"X-CSRF-Token": csrf}) as resp:
        assert resp.status == 201, await resp.text()
    # Bearer tokens keep working for automation, without any CSRF token.
    status, _, _ = gw.request("GET", "/api/me")
    assert status == 200


async def test_users_see_only_their_own_and_admin_pages_are_403(
        world: tuple[Gateway, Idp], user: tuple[aiohttp.ClientSession, str],
        admin: tuple[aiohttp.ClientSession, str]) -> None:
    gw, _ = world
    # The bootstrap admin calls a tool: an audit row of user "admin".
    raw = RawSession(gw).open()
    assert "result" in raw.call("echo_echo", {"message": "secret-ish"})
    session, csrf = user
    for path in ("/catalog", "/users"):
        async with session.get(f"{gw.url}{path}") as resp:
            assert resp.status == 403, path
    async with session.post(f"{gw.url}/catalog/echo/install", data={"csrf_token": csrf}, headers={"Origin": gw.url},
                            allow_redirects=False) as resp:
        assert resp.status == 403
    async with session.get(f"{gw.url}/api/users") as resp:
        assert resp.status == 403
    async with session.get(f"{gw.url}/profiles/admin-default", allow_redirects=False) as resp:
        assert resp.status == 303 and "err=" in resp.headers["Location"]
    async with session.get(f"{gw.url}/api/profiles") as resp:
        assert all(p["slug"].startswith("bob") for p in (await resp.json())["profiles"])
    async with session.get(f"{gw.url}/api/credentials") as resp:
        assert (await resp.json())["credentials"] == []
    admin_session, _ = admin
    deadline = time.monotonic() + 5
    while True:
        async with admin_session.get(f"{gw.url}/audit?user=admin") as resp:
            if "echo_echo" in await resp.text():
                break
        assert time.monotonic() < deadline, "the tool call never reached the audit"
    async with session.get(f"{gw.url}/audit?user=admin") as resp:  # a user cannot look at another's audit
        assert "echo_echo" not in await resp.text()
    async with session.get(f"{gw.url}/audit?kind=egress") as resp:
        assert resp.status == 200


async def test_expired_session_is_refused(world: tuple[Gateway, Idp]) -> None:
    gw, _ = world
    async with _jar() as session:
        await dashboard_login(session, gw, "frank")
        async with session.get(f"{gw.url}/api/me") as resp:
            assert resp.status == 200
        with sqlite3.connect(db_path(gw)) as conn:
            conn.execute("UPDATE web_sessions SET expires_at = ? WHERE user_id ="
                         " (SELECT id FROM users WHERE name = 'frank')", (time.time() - 1,))
        async with session.get(f"{gw.url}/api/me") as resp:
            assert resp.status == 401
        async with session.get(f"{gw.url}/", allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"].startswith("/login")


async def test_sessions_are_listed_and_revocable_and_logout_ends_the_idp_session(world: tuple[Gateway, Idp]) -> None:
    gw, idp = world
    async with _jar() as first, _jar() as second:
        await dashboard_login(first, gw, "grace")
        csrf = await dashboard_login(second, gw, "grace")
        async with second.get(f"{gw.url}/account") as resp:
            html = await resp.text()
        assert html.count('name="session"') == 1  # the other session, with an End button
        other = html.split('name="session" value="')[1].split('"')[0]
        async with second.post(f"{gw.url}/account/sessions", data={"session": other, "csrf_token": csrf},
                               headers={"Origin": gw.url}, allow_redirects=False) as resp:
            assert resp.status == 303 and "ok=" in resp.headers["Location"]
        async with first.get(f"{gw.url}/api/me") as resp:
            assert resp.status == 401
        async with second.post(f"{gw.url}/auth/logout", data={"csrf_token": csrf}, headers={"Origin": gw.url},
                               allow_redirects=False) as resp:
            assert resp.status == 303
            assert resp.headers["Location"].startswith(f"{idp.issuer}/session/end")
        async with second.get(f"{gw.url}/api/me") as resp:
            assert resp.status == 401


async def test_a_login_started_before_a_restart_completes_after_it(world: tuple[Gateway, Idp]) -> None:
    gw, _ = world
    async with _jar() as session:
        authorize = await _start(session, gw)
        callback = await headless_authorize(session, authorize, f"{gw.url}/auth/callback", user="heidi")
        gw.stop()
        gw.start()
        async with session.get(callback, allow_redirects=False) as resp:
            assert resp.status == 303, await resp.text()
        async with session.get(f"{gw.url}/api/me") as resp:
            assert (await resp.json())["name"] == "heidi"
