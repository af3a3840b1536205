"""Tokens and authentication against a real (temporary) store: formats, hashes, scopes, revocation."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.auth import (
    TOKEN_LENGTH,
    Authenticator,
    issue_token,
    new_token,
    resolve_profile,
    rotate_profile_token,
    token_hash,
)
from gateway.store import Store

ADMIN_TOKEN = "bootstrap-token-0123456789abcdef"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "gig.db")
    await s.users.ensure("admin", "admin")
    yield s
    await s.close()


def test_token_format() -> None:
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50
    for token in tokens:
        assert token.startswith("gig_") and len(token) == TOKEN_LENGTH
        assert set(token[4:]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


async def test_only_the_hash_is_stored(store: Store, tmp_path: Path) -> None:
    user = await store.users.ensure("alice", "user")
    issued = await issue_token(store, user_id=user.id, name="laptop")
    async with store.conn.execute("SELECT token_hash, prefix FROM api_tokens") as cur:
        rows = list(await cur.fetchall())
    assert [bytes(r[0]) for r in rows] == [token_hash(issued.secret)]
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("gig.db"))
    assert issued.secret.encode() not in raw


async def test_bootstrap_personal_and_unknown_tokens(store: Store) -> None:
    auth = Authenticator(ADMIN_TOKEN)
    admin = await auth.authenticate(ADMIN_TOKEN, store)
    assert admin is not None and admin.user == "admin" and admin.role == "admin" and admin.profile_id is None
    alice = await store.users.ensure("alice", "user")
    issued = await issue_token(store, user_id=alice.id, name="t")
    principal = await auth.authenticate(issued.secret, store)
    assert principal is not None and principal.user == "alice" and principal.role == "user"
    assert principal.token_id == f"tok-{issued.record.id}"
    for bad in (None, "", "gig_" + "A" * 43, issued.secret[:-1] + "x", "not-a-token", ADMIN_TOKEN + "x"):
        assert await auth.authenticate(bad, store) is None


async def test_revoked_and_expired_tokens_stop_at_once(store: Store) -> None:
    auth = Authenticator(ADMIN_TOKEN)
    alice = await store.users.ensure("alice", "user")
    issued = await issue_token(store, user_id=alice.id, name="t")
    assert await auth.authenticate(issued.secret, store) is not None
    assert await store.tokens.revoke(issued.record.id, alice.id)
    assert await auth.authenticate(issued.secret, store) is None
    assert not await store.tokens.revoke(issued.record.id)  # already revoked
    expired = await issue_token(store, user_id=alice.id, name="old", expires_at=time.time() - 1)
    assert await auth.authenticate(expired.secret, store) is None


async def test_a_user_cannot_revoke_someone_elses_token(store: Store) -> None:
    alice = await store.users.ensure("alice", "user")
    bob = await store.users.ensure("bob", "user")
    issued = await issue_token(store, user_id=alice.id, name="t")
    assert not await store.tokens.revoke(issued.record.id, bob.id)
    assert await Authenticator(ADMIN_TOKEN).authenticate(issued.secret, store) is not None


async def test_last_used_is_written_at_most_once_a_minute(store: Store) -> None:
    auth = Authenticator(ADMIN_TOKEN)
    alice = await store.users.ensure("alice", "user")
    issued = await issue_token(store, user_id=alice.id, name="t")
    await auth.authenticate(issued.secret, store)
    first = (await store.tokens.by_id(issued.record.id)).last_used_at  # type: ignore[union-attr]
    assert first is not None
    await auth.authenticate(issued.secret, store)
    assert (await store.tokens.by_id(issued.record.id)).last_used_at == first  # type: ignore[union-attr]


async def test_profile_scopes(store: Store) -> None:
    auth = Authenticator(ADMIN_TOKEN)
    alice = await store.users.ensure("alice", "user")
    bob = await store.users.ensure("bob", "user")
    home = await store.profiles.ensure_default(alice)
    work = await store.profiles.create(alice.id, "alice-work")
    bobs = await store.profiles.ensure_default(bob)
    assert work is not None
    personal = await auth.authenticate((await issue_token(store, user_id=alice.id, name="p")).secret, store)
    assert personal is not None
    assert await resolve_profile(store, personal, None) == home
    assert await resolve_profile(store, personal, "alice-work") == work
    assert await resolve_profile(store, personal, bobs.slug) is None  # someone else's: like a missing one
    assert await resolve_profile(store, personal, "nope") is None
    scoped = await rotate_profile_token(store, work)
    principal = await auth.authenticate(scoped.secret, store)
    assert principal is not None and principal.profile_id == work.id
    assert await resolve_profile(store, principal, None) == work
    assert await resolve_profile(store, principal, "alice-work") == work
    assert await resolve_profile(store, principal, home.slug) is None


async def test_rotating_a_profile_token_revokes_the_old_one(store: Store) -> None:
    auth = Authenticator(ADMIN_TOKEN)
    alice = await store.users.ensure("alice", "user")
    profile = await store.profiles.ensure_default(alice)
    old = await rotate_profile_token(store, profile)
    personal = await issue_token(store, user_id=alice.id, name="personal")
    new = await rotate_profile_token(store, profile)
    assert await auth.authenticate(old.secret, store) is None
    assert await auth.authenticate(new.secret, store) is not None
    assert await auth.authenticate(personal.secret, store) is not None  # personal tokens are untouched
