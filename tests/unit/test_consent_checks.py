"""The consent gate: the factory refuses before spawning, and the gated lease refuses before leasing."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Hashable
from pathlib import Path
from typing import Any

import pytest

import gateway.backends as backends
from gateway.access import Access
from gateway.backends import BackendFactory, SandboxSettings
from gateway.consent import ConsentRequired
from gateway.store import InstalledServer, Store

ECHO = InstalledServer("echo", "0.1.0", '{"name": "echo", "tools": [{"name": "add", "default": false}]}',
                       "c" * 64, "/nonexistent")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "gig.db")
    yield s
    await s.close()


async def test_the_factory_refuses_before_anything_is_spawned(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    spawned: list[Any] = []

    async def fake_spawn(spec: Any, **_kwargs: Any) -> Any:
        spawned.append(spec)
        raise AssertionError("spawn must not be reached")

    monkeypatch.setattr(backends, "spawn", fake_spawn)
    alice = await store.users.ensure("alice", "user")
    profile = await store.profiles.ensure_default(alice)

    async def on_notify(*_args: Any) -> None:
        return None

    factory = BackendFactory(lambda name: ECHO if name == "echo" else None, SandboxSettings(65534, 65534, 5.0),
                             on_notify)
    factory.consent_check = Access(store, {"echo": ECHO}).check_spawn
    with pytest.raises(ConsentRequired, match=r"approve server 'echo' 0\.1\.0"):
        await factory(("echo", profile.id))
    with pytest.raises(Exception, match="no profile"):
        await factory(("echo", 9999))
    assert spawned == []


async def test_gated_lease_asks_the_database_every_time(store: Store) -> None:
    alice = await store.users.ensure("alice", "user")
    leased: list[Hashable] = []

    @contextlib.asynccontextmanager
    async def lease(key: Hashable) -> AsyncIterator[str]:
        leased.append(key)
        yield "handle"

    gated = Access(store, {"echo": ECHO}).gated(alice.id, lease)
    with pytest.raises(ConsentRequired):
        async with gated(("echo", 1)):
            pass
    assert leased == []
    await store.consents.grant(alice.id, "echo", ECHO.runtime_hash, "0.1.0", ECHO.manifest_json)
    async with gated(("echo", 1)) as handle:
        assert handle == "handle"
    await store.consents.revoke(alice.id, "echo")
    with pytest.raises(ConsentRequired):
        async with gated(("echo", 1)):
            pass
    assert leased == [("echo", 1)]


async def test_tool_filter_applies_toggles_over_manifest_defaults(store: Store) -> None:
    alice = await store.users.ensure("alice", "user")
    profile = await store.profiles.ensure_default(alice)
    access = Access(store, {"echo": ECHO})
    enabled = await access.tool_filter(profile.id)
    assert not enabled("echo", "add")  # the manifest hides it by default
    assert enabled("echo", "echo") and enabled("other", "x")
    await store.tools.set(profile.id, "echo", "add", True)
    await store.tools.set(profile.id, "echo", "echo", False)
    enabled = await access.tool_filter(profile.id)
    assert enabled("echo", "add") and not enabled("echo", "echo")
