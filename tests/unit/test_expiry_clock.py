"""Expiry under a jumping wall clock (gateway/store/expiry.py) and where the gateway applies it."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.oauth.tokens import needs_refresh
from gateway.store import Store
from gateway.store.expiry import CLOCK_SKEW_S, clock_went_back, within_lifetime
from gateway.store.oauth import AccountRow
from gateway.store.tokens import TokenRecord
from gateway.store.websessions import WebSessions

T0 = 1_800_000_000.0
DAY = 86400.0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "gig.db")
    yield s
    await s.close()


def test_within_lifetime_follows_the_clock_forward() -> None:
    assert within_lifetime(T0 + 10, T0, T0 + DAY)
    assert not within_lifetime(T0 + DAY, T0, T0 + DAY)  # the expiry instant itself is expired
    assert not within_lifetime(T0 + 2 * DAY, T0, T0 + DAY)


def test_a_clock_set_back_neither_revives_nor_lengthens() -> None:
    # Expired at T0+1d; the clock is then set back to a day before T0: still refused.
    assert not within_lifetime(T0 - DAY, T0, T0 + DAY)
    # Issued "in the future" (clock ahead), then the clock is corrected: refused until it catches up.
    issued = T0 + 2 * DAY
    assert not within_lifetime(T0, issued, issued + DAY)
    assert within_lifetime(issued - CLOCK_SKEW_S + 1, issued, issued + DAY)  # a small skew is tolerated
    # However the clock moves, the usable window is at most lifetime + skew.
    usable = [t for t in range(int(T0 - 3 * DAY), int(T0 + 3 * DAY), 60) if within_lifetime(t, T0, T0 + DAY)]
    assert max(usable) - min(usable) <= DAY + CLOCK_SKEW_S


def test_no_expiry_means_no_clock_rule() -> None:
    assert within_lifetime(T0 - 10 * DAY, T0, None)
    assert within_lifetime(T0 + 10 * DAY, T0, None)


def test_clock_went_back() -> None:
    assert clock_went_back(T0 - CLOCK_SKEW_S - 1, T0)
    assert not clock_went_back(T0 - CLOCK_SKEW_S + 1, T0)
    assert not clock_went_back(T0 + DAY, T0)


def test_token_record_applies_the_rule() -> None:
    record = TokenRecord(1, 1, None, "t", "gig_x", T0, T0 + DAY, None, None)
    assert record.active(T0 + 1)
    assert not record.active(T0 - DAY)
    assert not record.active(T0 + DAY)
    forever = TokenRecord(2, 1, None, "t", "gig_y", T0, None, None, None)
    assert forever.active(T0 - DAY) and forever.active(T0 + 100 * DAY)


def _account(obtained_at: float, expires_at: float | None) -> AccountRow:
    return AccountRow(1, 1, 1, "gitlab", b"", None, "", obtained_at, expires_at, 1, "connected", "", obtained_at, None)


def test_oauth_token_is_refreshed_when_the_clock_went_back() -> None:
    account = _account(T0, T0 + 7200)
    assert not needs_refresh(account, T0 + 60, 60)
    assert needs_refresh(account, T0 + 7200 - 30, 60)  # close to expiry
    # The clock was set back an hour: the token would look fresh for three hours; it is refreshed instead.
    assert needs_refresh(account, T0 - 3600, 60)
    assert not needs_refresh(_account(T0, None), T0 - 3600, 60)  # no lifetime: on demand only


async def test_stored_tokens_and_sessions_obey_the_rule(store: Store) -> None:
    user = await store.users.ensure("dora", "user")
    digest = hashlib.sha256(b"secret").digest()
    record = await store.tokens.create(user_id=user.id, profile_id=None, name="t", token_hash=digest,
                                       prefix="gig_", expires_at=None)
    await store.conn.execute("UPDATE api_tokens SET created_at = ?, expires_at = ? WHERE id = ?",
                             (T0, T0 + DAY, record.id))
    assert await store.tokens.active_by_hash(digest, T0 + 60) is not None
    assert await store.tokens.active_by_hash(digest, T0 - DAY) is None  # set back before its issue
    assert await store.tokens.active_by_hash(digest, T0 + 2 * DAY) is None

    await store.conn.execute("INSERT INTO web_sessions(token_hash, user_id, created_at, expires_at, last_seen_at)"
                             " VALUES (?, ?, ?, ?, ?)", (digest, user.id, T0, T0 + 3600, T0))
    repo = WebSessions(store.conn)
    assert await repo.active_by_hash(digest, T0 + 60) is not None
    assert await repo.active_by_hash(digest, T0 - DAY) is None
    assert await repo.active_by_hash(digest, T0 + 3600) is None
