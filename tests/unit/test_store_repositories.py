"""Repositories of issue 4: users, profiles (default, slugs), tool toggles, consents, cascades."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.store import Store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "gig.db")
    yield s
    await s.close()


async def test_users_create_list_delete(store: Store) -> None:
    alice = await store.users.create("alice", "user")
    assert alice is not None and alice.role == "user"
    assert await store.users.create("alice", "admin") is None
    assert [u.name for u in await store.users.list()] == ["alice"]
    assert await store.users.by_id(alice.id) == alice
    assert await store.users.delete(alice.id)
    assert await store.users.by_name("alice") is None


async def test_one_default_profile_and_free_default_slugs(store: Store) -> None:
    bob = await store.users.ensure("bob", "user")
    alice = await store.users.ensure("alice", "user")
    # Someone else already took "bob-default" as a named profile.
    assert await store.profiles.create(alice.id, "bob-default") is not None
    default = await store.profiles.ensure_default(bob)
    assert default.slug == "bob-default-2" and default.is_default
    second = await store.profiles.create(bob.id, "bob-work", default=True)
    assert second is not None and second.is_default
    profiles = await store.profiles.list_for(bob.id)
    assert [p.slug for p in profiles if p.is_default] == ["bob-work"]
    assert await store.profiles.create(bob.id, "bob-work") is None


async def test_profile_servers_and_tool_toggles(store: Store) -> None:
    alice = await store.users.ensure("alice", "user")
    profile = await store.profiles.ensure_default(alice)
    await store.profiles.add_server(profile.id, "echo")
    await store.profiles.add_server(profile.id, "echo")
    assert await store.profiles.server_names(profile.id) == ["echo"]
    await store.tools.set(profile.id, "echo", "add", False)
    await store.tools.set(profile.id, "echo", "add", True)
    await store.tools.set(profile.id, "echo", "crash", False)
    assert await store.tools.for_profile(profile.id) == {("echo", "add"): True, ("echo", "crash"): False}
    assert await store.tools.clear(profile.id, "echo", "add")
    assert not await store.tools.clear(profile.id, "echo", "add")
    assert await store.profiles.remove_server(profile.id, "echo")
    assert not await store.profiles.remove_server(profile.id, "echo")


async def test_consent_is_per_runtime_hash(store: Store) -> None:
    alice = await store.users.ensure("alice", "user")
    await store.consents.grant(alice.id, "echo", "a" * 64, "0.1.0", "{}")
    assert await store.consents.has(alice.id, "echo", "a" * 64)
    assert not await store.consents.has(alice.id, "echo", "b" * 64)
    await store.consents.grant(alice.id, "echo", "b" * 64, "0.1.1", "{}")
    latest = await store.consents.latest(alice.id, "echo")
    assert latest is not None and latest.version == "0.1.1"
    assert [c.runtime_hash for c in await store.consents.list_for(alice.id)] == ["b" * 64]
    assert await store.consents.revoke(alice.id, "echo") == 2
    assert not await store.consents.has(alice.id, "echo", "a" * 64)
    assert await store.consents.latest(alice.id, "echo") is None
    await store.consents.grant(alice.id, "echo", "a" * 64, "0.1.0", "{}")  # re-grant after a revocation
    assert await store.consents.has(alice.id, "echo", "a" * 64)


async def test_deleting_a_user_takes_everything_of_theirs(store: Store) -> None:
    alice = await store.users.ensure("alice", "user")
    profile = await store.profiles.ensure_default(alice)
    await store.consents.grant(alice.id, "echo", "a" * 64, "0.1.0", "{}")
    await store.secrets.put(alice.id, "echo", "token", b"GIGV-sealed")
    await store.tools.set(profile.id, "echo", "add", False)
    await store.users.delete(alice.id)
    for table in ("profiles", "consents", "credentials", "tool_settings", "api_tokens"):
        async with store.conn.execute(f"SELECT count(*) FROM {table}") as cur:
            assert tuple(await cur.fetchone()) == (0,), table
