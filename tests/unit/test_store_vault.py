"""The vault at start and the credential store: canary, wrong or missing keys, write-only secrets."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.credentials import Credentials, VaultStartError, VaultUnavailable, master_key_from_env, open_vault
from gateway.store import Store
from vault import MasterKey, generate_key_hex

SECRET = "glpat-super-secret-value-1234567890"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(tmp_path / "gig.db")
    yield s
    await s.close()


def _file_bytes(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(tmp_path.iterdir()) if p.name.startswith("gig.db"))


def test_master_key_from_env() -> None:
    assert master_key_from_env({}) is None
    key = master_key_from_env({"GIG_MASTER_KEY": generate_key_hex()})
    assert isinstance(key, MasterKey)
    with pytest.raises(VaultStartError, match="64 hexadecimal"):
        master_key_from_env({"GIG_MASTER_KEY": "abc"})


async def test_canary_pins_the_key_before_any_credential(store: Store) -> None:
    right, wrong = MasterKey.generate(), MasterKey.generate()
    assert await open_vault(store, right) is right
    canary = await store.secrets.canary()
    assert canary is not None
    assert await open_vault(store, right) is right  # a second start with the same key
    with pytest.raises(VaultStartError, match=f"configured key is {wrong.key_id}"):
        await open_vault(store, wrong)
    assert await store.secrets.canary() == canary
    assert await open_vault(store, None) is None  # no credentials yet: running without a key is allowed


async def test_credentials_round_trip_and_only_ciphertext_at_rest(store: Store, tmp_path: Path) -> None:
    key = MasterKey.generate()
    await open_vault(store, key)
    alice = await store.users.ensure("alice", "user")
    service = Credentials(store, key)
    info = await service.set_secret(alice.id, "gitlab", "token", SECRET)
    assert (info.server, info.credential_id) == ("gitlab", "token")
    assert SECRET not in repr(info)
    assert await service.secret_for(alice.id, "gitlab", "token") == SECRET
    assert await service.secret_for(alice.id, "gitlab", "other") is None
    assert [i.credential_id for i in await service.list(alice.id)] == ["token"]
    assert SECRET.encode() not in _file_bytes(tmp_path)
    profile = await store.profiles.ensure_default(alice)
    assert await service.secret_for_sandbox("gitlab", profile.id, "token") == SECRET
    await service.set_secret(alice.id, "gitlab", "token", "rotated-value")
    assert await service.secret_for_sandbox("gitlab", profile.id, "token") == "rotated-value"
    assert await service.secret_for_sandbox("gitlab", 9999, "token") is None
    assert await service.delete(alice.id, "gitlab", "token")
    assert await service.secret_for(alice.id, "gitlab", "token") is None


async def test_rows_cannot_be_swapped_between_users(store: Store) -> None:
    key = MasterKey.generate()
    alice = await store.users.ensure("alice", "user")
    mallory = await store.users.ensure("mallory", "user")
    service = Credentials(store, key)
    await service.set_secret(alice.id, "gitlab", "token", SECRET)
    await service.set_secret(mallory.id, "gitlab", "token", "mallory's own")
    await store.conn.execute(
        "UPDATE credentials SET sealed = (SELECT sealed FROM credentials WHERE user_id = ?) WHERE user_id = ?",
        (alice.id, mallory.id),
    )
    from vault import TamperedOrMisplaced

    with pytest.raises(TamperedOrMisplaced):
        await service.secret_for(mallory.id, "gitlab", "token")


async def test_a_wrong_or_missing_key_refuses_the_start_and_writes_nothing(store: Store, tmp_path: Path) -> None:
    key = MasterKey.generate()
    await open_vault(store, key)
    alice = await store.users.ensure("alice", "user")
    await Credentials(store, key).set_secret(alice.id, "gitlab", "token", SECRET)
    await store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = hashlib.sha256(_file_bytes(tmp_path)).hexdigest()
    with pytest.raises(VaultStartError, match="sealed with key") as info:
        await open_vault(store, MasterKey.generate())
    assert "\n" not in str(info.value)
    with pytest.raises(VaultStartError, match="1 credentials are stored but no master key"):
        await open_vault(store, None)
    assert hashlib.sha256(_file_bytes(tmp_path)).hexdigest() == before


async def test_without_a_key_nothing_can_be_stored(store: Store) -> None:
    alice = await store.users.ensure("alice", "user")
    service = Credentials(store, None)
    assert not service.available
    with pytest.raises(VaultUnavailable, match="GIG_MASTER_KEY"):
        await service.set_secret(alice.id, "gitlab", "token", SECRET)


def test_placeholders_are_random_per_sandbox_and_credential() -> None:
    service = Credentials(None, None)  # type: ignore[arg-type]  # placeholders need no store
    a = service.placeholder_for(("gitlab", 1), "token")
    assert a == service.placeholder_for(("gitlab", 1), "token")
    assert a != service.placeholder_for(("gitlab", 2), "token")
    assert a != service.placeholder_for(("gitlab", 1), "other")
    assert a.startswith("gigph_") and len(a) >= 16
    service.forget_sandbox(("gitlab", 1))
    assert service.placeholder_for(("gitlab", 1), "token") != a
