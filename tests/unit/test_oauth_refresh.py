"""Fresh access tokens: refresh before expiry, coalesced under concurrency, rotation persisted, failures."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.oauth.tokens import needs_refresh
from gateway.store.oauth import REFRESH_TOKEN_SPEC, AccountRow
from tests.support.idp.fake import oauth_env


def _row(obtained: float, expires: float | None) -> AccountRow:
    return AccountRow(1, 1, 1, "v", b"", None, "", obtained, expires, 1, "connected", "", obtained, None)


def test_refresh_margin_is_a_minute_or_half_the_lifetime() -> None:
    gitlab = _row(0.0, 7200.0)
    assert not needs_refresh(gitlab, 7139.0, 60.0) and needs_refresh(gitlab, 7140.0, 60.0)
    short = _row(0.0, 3.0)  # a 3 s token is renewed after 1.5 s, not on every request
    assert not needs_refresh(short, 1.4, 60.0) and needs_refresh(short, 1.5, 60.0)
    assert not needs_refresh(_row(0.0, None), 1e9, 60.0)  # no lifetime given: on demand only


async def test_fresh_tokens_are_not_refreshed(tmp_path: Path) -> None:
    async with oauth_env(tmp_path) as env:
        await env.connect()
        tokens = env.service.tokens
        assert tokens is not None
        assert await tokens.access_token(env.user_id, "fake") == env.fake.access_tokens[0]
        assert env.fake.calls["refresh_token"] == 0
        assert await tokens.access_token(env.user_id, "unknown") is None
        assert await tokens.access_token(env.user_id + 99, "fake") is None


async def test_twenty_concurrent_callers_cause_one_refresh(tmp_path: Path) -> None:
    async with oauth_env(tmp_path, refresh_delay=0.2) as env:
        await env.connect()
        tokens = env.service.tokens
        assert tokens is not None
        first = env.fake.access_tokens[0]
        await env.expire()
        got = await asyncio.gather(*(tokens.access_token(env.user_id, "fake") for _ in range(20)))
        assert env.fake.calls["refresh_token"] == 1
        assert tokens.refreshes.started == 1 and tokens.refreshed == 1
        assert set(got) == {env.fake.access_tokens[-1]} and first not in got
        # Later callers find the refreshed token in the store.
        assert await tokens.access_token(env.user_id, "fake") == got[0]
        assert env.fake.calls["refresh_token"] == 1


async def test_rotated_refresh_tokens_are_persisted(tmp_path: Path) -> None:
    async with oauth_env(tmp_path) as env:
        await env.connect()
        tokens = env.service.tokens
        assert tokens is not None
        for round_ in range(3):
            info = await env.service.refresh_now(env.user_id, "fake")
            assert info is not None and info.status == "connected" and info.last_error == "", info
            assert env.fake.calls["refresh_token"] == round_ + 1
        # The fake refuses reused refresh tokens: three successful rounds mean each rotation was stored.
        account = await env.store.conn.execute("SELECT refresh_token, user_id, vendor_id FROM oauth_accounts")
        sealed, user_id, vendor_id = await account.fetchone()  # type: ignore[misc]
        from gateway.oauth.tokens import Sealer

        sealer = env.service._sealer
        assert isinstance(sealer, Sealer)
        assert sealer.open(REFRESH_TOKEN_SPEC, bytes(sealed), user_id, vendor_id) in env.fake.live_refresh
        assert len(env.fake.used_refresh) == 3
        assert env.fake.access_tokens[-1].encode() not in env.db_bytes()


async def test_a_caller_that_gives_up_does_not_cancel_the_refresh(tmp_path: Path) -> None:
    async with oauth_env(tmp_path, refresh_delay=0.3) as env:
        await env.connect()
        tokens = env.service.tokens
        assert tokens is not None
        await env.expire()
        impatient = asyncio.create_task(tokens.access_token(env.user_id, "fake"))
        await asyncio.sleep(0.05)
        impatient.cancel()
        got = await tokens.access_token(env.user_id, "fake")  # joins the refresh still running
        assert got == env.fake.access_tokens[-1]
        assert env.fake.calls["refresh_token"] == 1 and tokens.refreshed == 1


async def test_a_refused_refresh_token_needs_a_reconnection(tmp_path: Path) -> None:
    async with oauth_env(tmp_path, fail_refresh="invalid_grant") as env:
        await env.connect()
        tokens = env.service.tokens
        assert tokens is not None
        await env.expire()
        assert await tokens.access_token(env.user_id, "fake") is None
        (info,) = await env.service.accounts(env.user_id)
        assert info.status == "reconnect_required" and "invalid_grant" in info.last_error
        assert await tokens.access_token(env.user_id, "fake") is None
        assert env.fake.calls["refresh_token"] == 1  # no retry storm against the vendor
        env.fake.fail_refresh = ""
        assert (await env.connect()).status == "connected"  # reconnecting heals it
        assert await tokens.access_token(env.user_id, "fake") == env.fake.access_tokens[-1]


async def test_an_unreachable_vendor_keeps_a_still_valid_token(tmp_path: Path) -> None:
    async with oauth_env(tmp_path, fail_refresh="unavailable", expires_in=60) as env:
        await env.connect()
        tokens = env.service.tokens
        assert tokens is not None
        current = env.fake.access_tokens[0]
        assert await tokens.access_token(env.user_id, "fake", force=True) == current
        (info,) = await env.service.accounts(env.user_id)
        assert info.status == "connected" and "temporarily_unavailable" in info.last_error
        await env.expire()
        assert await tokens.access_token(env.user_id, "fake") is None
        env.fake.fail_refresh = ""
        assert await tokens.access_token(env.user_id, "fake") == env.fake.access_tokens[-1]
        (info,) = await env.service.accounts(env.user_id)
        assert info.last_error == "" and info.refreshed_at is not None


async def test_disconnect_revokes_and_stops_the_token(tmp_path: Path) -> None:
    async with oauth_env(tmp_path) as env:
        await env.connect()
        tokens = env.service.tokens
        assert tokens is not None
        refresh = next(iter(env.fake.live_refresh))
        assert await env.service.disconnect(env.user_id, "fake") is True
        assert env.fake.revoked == [("refresh_token", refresh), ("access_token", env.fake.access_tokens[0])]
        assert await tokens.access_token(env.user_id, "fake") is None
        assert await env.service.accounts(env.user_id) == []
        assert await env.service.disconnect(env.user_id, "fake") is None


async def test_disconnect_during_a_refresh_revokes_the_new_tokens(tmp_path: Path) -> None:
    async with oauth_env(tmp_path, refresh_delay=0.3) as env:
        await env.connect()
        tokens = env.service.tokens
        assert tokens is not None
        await env.expire()
        refreshing = asyncio.create_task(tokens.access_token(env.user_id, "fake"))
        await asyncio.sleep(0.1)  # the vendor has rotated, its answer is still on the way
        (new_refresh,) = env.fake.live_refresh
        assert await env.service.disconnect(env.user_id, "fake") is True
        assert await refreshing is None
        # The answer arrived for an account that no longer exists: its tokens are revoked, not stored.
        assert env.fake.revoked[-2:] == [("refresh_token", new_refresh), ("access_token", env.fake.access_tokens[-1])]
        assert not env.fake.live_refresh and tokens.refreshed == 0
        assert env.fake.access_tokens[-1].encode() not in env.db_bytes()
