"""Rotation over real SQLite files: 1,000 secrets, a process SIGKILLed mid-rotation, the CLI entry.

The kill test runs the rotation in a child interpreter whose progress callback prints each row
count and sleeps a little, so the parent can SIGKILL it at a known point inside the transaction.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiosqlite
import pytest

from vault.cli import check_command, generate_key_command, rotate_command
from vault.envelope import AssociatedData, Keyring, key_id_of, open_, rewrap, seal
from vault.errors import RotationError, TamperedOrMisplaced, WrongKey
from vault.keys import MasterKey
from vault.rotation import check, rotate, verify_key_against_rows
from vault.sqlite_rotation import SQLiteRowRef, SQLiteRowSource, TableSpec, quote_identifier

REPO_ROOT = Path(__file__).resolve().parents[2]
OLD = MasterKey.from_hex("0f" * 32)
NEW = MasterKey.from_hex("f0" * 32)
ROWS = 1000

CREDENTIALS = TableSpec(
    table="credentials",
    id_column="rowid",
    blob_column="encrypted_key",
    kind="credential",
    owner_column="tenant",
    server_column="server",
    credential_id_column="credential_id",
)
ACCOUNTS = ("connected_accounts", "rowid")
REFRESH = TableSpec(*ACCOUNTS, "encrypted_refresh_token", "oauth_refresh", "user_id", "vendor")
ACCESS = TableSpec(*ACCOUNTS, "encrypted_access_token", "oauth_access", "user_id", "vendor")
ALL_SPECS = (CREDENTIALS, REFRESH, ACCESS)


@dataclass
class Fixture:
    path: Path
    secrets: dict[tuple[str, str, str], bytes]
    """(server, tenant, credential_id) -> plaintext of every credential row."""


def make_database(path: Path, journal_mode: str = "wal", rows: int = ROWS) -> Fixture:
    secrets: dict[tuple[str, str, str], bytes] = {}
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA journal_mode = {journal_mode}")
    conn.executescript(
        """
        CREATE TABLE credentials (
            server TEXT NOT NULL, tenant TEXT NOT NULL, credential_id TEXT NOT NULL,
            encrypted_key BLOB, PRIMARY KEY (server, tenant, credential_id));
        CREATE TABLE connected_accounts (
            user_id INTEGER NOT NULL, vendor TEXT NOT NULL,
            encrypted_refresh_token BLOB, encrypted_access_token BLOB, PRIMARY KEY (user_id, vendor));
        """
    )
    batch = []
    for index in range(rows):
        key = (f"server{index % 10}", f"user{index // 10}", "token")
        secrets[key] = os.urandom(24).hex().encode()
        blob = seal(OLD, secrets[key], CREDENTIALS.associated_data(key[1], key[0], key[2]))
        batch.append((*key, blob))
    conn.executemany(
        "INSERT INTO credentials (server, tenant, credential_id, encrypted_key) VALUES (?, ?, ?, ?)", batch
    )
    accounts = []
    for user_id in range(20):
        refresh = seal(OLD, f"refresh-{user_id}".encode(), REFRESH.associated_data(user_id, "gitlab"))
        # Every other account has no access token cached: a NULL blob holds no secret.
        access = seal(OLD, f"access-{user_id}".encode(), ACCESS.associated_data(user_id, "gitlab"))
        accounts.append((user_id, "gitlab", refresh, access if user_id % 2 else None))
    conn.executemany("INSERT INTO connected_accounts VALUES (?, ?, ?, ?)", accounts)
    conn.commit()
    conn.close()
    return Fixture(path, secrets)


def credential_rows(path: Path) -> Iterator[tuple[tuple[str, str, str], bytes]]:
    conn = sqlite3.connect(path)
    try:
        for server, tenant, credential_id, blob in conn.execute(
            "SELECT server, tenant, credential_id, encrypted_key FROM credentials"
        ):
            yield (server, tenant, credential_id), blob
    finally:
        conn.close()


def assert_every_secret_opens(fixture: Fixture, keys: MasterKey | Keyring) -> set[str]:
    """Every credential opens to its original plaintext; returns the key ids seen."""
    seen_ids: set[str] = set()
    count = 0
    for key, blob in credential_rows(fixture.path):
        ad = CREDENTIALS.associated_data(key[1], key[0], key[2])
        assert open_(keys, blob, ad) == fixture.secrets[key]
        seen_ids.add(key_id_of(blob))
        count += 1
    assert count == len(fixture.secrets)
    return seen_ids


@pytest.fixture
def database(tmp_path: Path) -> Fixture:
    return make_database(tmp_path / "gig.db")


@pytest.fixture
async def conn(database: Fixture) -> AsyncIterator[aiosqlite.Connection]:
    connection = await aiosqlite.connect(database.path, isolation_level=None)
    yield connection
    await connection.close()


async def test_rotating_1000_secrets_keeps_every_one(database: Fixture, conn: aiosqlite.Connection) -> None:
    source = SQLiteRowSource(conn, ALL_SPECS)
    assert await source.count() == ROWS + 20 + 10
    progress: list[int] = []
    report = await rotate(source, OLD, NEW, progress=lambda done, total: progress.append(done))
    assert (report.total, report.rewrapped, report.skipped) == (ROWS + 30, ROWS + 30, 0)
    assert progress == list(range(1, ROWS + 31))
    assert not conn.in_transaction
    assert assert_every_secret_opens(database, NEW) == {NEW.key_id}
    after = await check(NEW, source)
    assert (after.rows, after.opened, after.ok) == (ROWS + 30, ROWS + 30, True)
    assert after.key_ids == {NEW.key_id: ROWS + 30}


async def test_the_two_tokens_of_one_account_cannot_be_swapped(conn: aiosqlite.Connection) -> None:
    await conn.execute(
        "UPDATE connected_accounts SET encrypted_access_token = encrypted_refresh_token WHERE user_id = 1"
    )
    report = await check(OLD, SQLiteRowSource(conn, ALL_SPECS))
    assert [failure.row for failure in report.failures] == [
        "connected_accounts.encrypted_access_token[rowid=2]"
    ]


async def test_a_moved_row_aborts_rotation_and_changes_nothing(
    database: Fixture, conn: aiosqlite.Connection
) -> None:
    await conn.execute(
        "UPDATE credentials SET encrypted_key = (SELECT encrypted_key FROM credentials WHERE rowid = 1) "
        "WHERE rowid = 700"
    )
    with pytest.raises(TamperedOrMisplaced, match=r"^row credentials\.encrypted_key\[rowid=700\]: "):
        await rotate(SQLiteRowSource(conn, CREDENTIALS), OLD, NEW)
    assert not conn.in_transaction
    assert {key_id_of(blob) for _, blob in credential_rows(database.path)} == {OLD.key_id}


async def test_rerun_after_partial_commit_skips_finished_rows(
    database: Fixture, conn: aiosqlite.Connection
) -> None:
    # A source without one transaction (or an operator's manual fix) can leave a mixed table; a
    # re-run must finish it rather than fail on the rows already done.
    source = SQLiteRowSource(conn, CREDENTIALS, batch_size=64)
    async with source.rewrite() as writer:
        async for row in writer.rows():
            assert isinstance(row.row_id, SQLiteRowRef)
            if isinstance(row.row_id.key, int) and row.row_id.key % 2:
                await writer.write(row.row_id, rewrap(OLD, NEW, row.blob, row.ad))
    assert assert_every_secret_opens(database, Keyring(NEW, OLD)) == {OLD.key_id, NEW.key_id}
    report = await rotate(source, OLD, NEW)
    assert (report.rewrapped, report.skipped) == (ROWS // 2, ROWS // 2)
    assert assert_every_secret_opens(database, NEW) == {NEW.key_id}


async def test_text_keys_and_small_batches(tmp_path: Path) -> None:
    # Keyset pagination over a TEXT primary key, with batches smaller than the table.
    spec = TableSpec("auth_configs", "vendor", "client_secret", "oauth_client_secret", None, "vendor")
    async with aiosqlite.connect(tmp_path / "t.db", isolation_level=None) as conn:
        await conn.execute("CREATE TABLE auth_configs (vendor TEXT PRIMARY KEY, client_secret BLOB)")
        vendors = [f"vendor-{n:02d}" for n in range(10)]
        for vendor in vendors:
            blob = seal(OLD, vendor.encode()[::-1], spec.associated_data(server=vendor))
            await conn.execute("INSERT INTO auth_configs VALUES (?, ?)", (vendor, blob))
        source = SQLiteRowSource(conn, spec, batch_size=3)
        report = await rotate(source, OLD, NEW)
        assert report.rewrapped == 10
        async with conn.execute("SELECT vendor, client_secret FROM auth_configs") as cursor:
            rows = list(await cursor.fetchall())
    assert sorted(vendor for vendor, _ in rows) == vendors
    for vendor, blob in rows:
        assert open_(NEW, blob, spec.associated_data(server=vendor)) == vendor.encode()[::-1]


ROTATE_SLOWLY = """
import asyncio, os, sys, time
import aiosqlite
from vault.keys import MasterKey
from vault.rotation import rotate
from vault.sqlite_rotation import SQLiteRowSource, TableSpec

def progress(done, total):
    print(done, flush=True)
    time.sleep(0.001)

async def main():
    conn = await aiosqlite.connect(os.environ["VAULT_TEST_DB"], isolation_level=None)
    # A tiny page cache makes SQLite spill uncommitted pages to disk mid-transaction (into the WAL,
    # or into the database file itself with the old pages saved in the rollback journal), so the
    # kill leaves a real hot journal for recovery to undo, not just lost memory.
    await conn.execute("PRAGMA cache_size = 2")
    spec = TableSpec("credentials", "rowid", "encrypted_key", "credential",
                     "tenant", "server", "credential_id")
    old = MasterKey.from_hex(os.environ["VAULT_TEST_OLD"])
    new = MasterKey.from_hex(os.environ["VAULT_TEST_NEW"])
    await rotate(SQLiteRowSource(conn, spec), old, new, progress=progress)
    await conn.close()
    print("committed", flush=True)

asyncio.run(main())
"""


def rotate_in_child_and_kill(db: Path, kill_at: int) -> list[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "VAULT_TEST_DB": str(db),
        "VAULT_TEST_OLD": OLD._key.hex(),
        "VAULT_TEST_NEW": NEW._key.hex(),
    }
    child = subprocess.Popen(
        [sys.executable, "-c", ROTATE_SLOWLY],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    assert child.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 20
    for line in child.stdout:
        lines.append(line.strip())
        if lines[-1] == str(kill_at):
            child.send_signal(signal.SIGKILL)
            break
        assert time.monotonic() < deadline, "the child rotation did not reach the kill point in time"
    child.wait(timeout=10)
    assert child.stderr is not None
    errors = child.stderr.read()
    child.stdout.close()
    child.stderr.close()
    assert child.returncode == -signal.SIGKILL, f"child ended on its own ({child.returncode}): {errors}"
    return lines


@pytest.mark.parametrize(
    ("journal_mode", "kill_at"),
    [("wal", 1), ("wal", 500), ("delete", 500), ("wal", ROWS)],
)
async def test_rotation_killed_halfway_loses_nothing(tmp_path: Path, journal_mode: str, kill_at: int) -> None:
    fixture = make_database(tmp_path / "gig.db", journal_mode=journal_mode)
    lines = rotate_in_child_and_kill(fixture.path, kill_at)
    assert "committed" not in lines
    if kill_at > 1:
        suffix = "-wal" if journal_mode == "wal" else "-journal"
        assert (tmp_path / f"gig.db{suffix}").stat().st_size > 0, "the kill left no journal to recover"
    # Opening the file recovers it. Killed inside the one transaction, the table is entirely under
    # one key; killed at the very last row, it may have committed just before the signal landed.
    ids = assert_every_secret_opens(fixture, Keyring(NEW, OLD))
    assert len(ids) == 1
    if kill_at < ROWS:
        assert ids == {OLD.key_id}
    async with aiosqlite.connect(fixture.path, isolation_level=None) as conn:
        report = await rotate(SQLiteRowSource(conn, CREDENTIALS), OLD, NEW)
    assert report.rewrapped + report.skipped == ROWS
    assert assert_every_secret_opens(fixture, NEW) == {NEW.key_id}


async def test_row_factory_of_the_connection_does_not_matter(conn: aiosqlite.Connection) -> None:
    conn.row_factory = aiosqlite.Row
    report = await rotate(SQLiteRowSource(conn, CREDENTIALS), OLD, NEW)
    assert report.rewrapped == ROWS


async def test_an_open_transaction_is_refused(conn: aiosqlite.Connection) -> None:
    await conn.execute("BEGIN")
    with pytest.raises(RotationError, match="already has an open transaction"):
        await rotate(SQLiteRowSource(conn, CREDENTIALS), OLD, NEW)
    await conn.execute("ROLLBACK")


async def test_a_busy_database_is_refused_clearly(database: Fixture, conn: aiosqlite.Connection) -> None:
    blocker = sqlite3.connect(database.path)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        await conn.execute("PRAGMA busy_timeout = 50")
        with pytest.raises(RotationError, match="is the gateway still running"):
            await rotate(SQLiteRowSource(conn, CREDENTIALS), OLD, NEW)
    finally:
        blocker.rollback()
        blocker.close()


@pytest.mark.parametrize(
    "name",
    ['credentials"; DROP TABLE credentials; --', "a b", "", "1abc", "tëst", "a" * 65, "x.y", "t\x00", "[x]"],
)
def test_unsafe_identifiers_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not an allowed SQL identifier"):
        quote_identifier(name)
    with pytest.raises(ValueError, match="not an allowed SQL identifier"):
        TableSpec(name, "rowid", "encrypted_key", "credential")
    with pytest.raises(ValueError, match="not an allowed SQL identifier"):
        TableSpec("credentials", "rowid", "encrypted_key", "credential", owner_column=name)


async def test_unknown_names_fail_clearly_instead_of_reading_literals(conn: aiosqlite.Connection) -> None:
    # SQLite reads "tenantt" (no such column) as the string 'tenantt'; the source must refuse it.
    cases = [
        (TableSpec("credential", "rowid", "encrypted_key", "credential"), "no table 'credential'"),
        (TableSpec("credentials", "rowid", "encrypted_keys", "credential"), "no column 'encrypted_keys'"),
        (TableSpec("credentials", "rowid", "encrypted_key", "credential", "tenantt"), "no column 'tenantt'"),
        (TableSpec("credentials", "idd", "encrypted_key", "credential"), "no column 'idd'"),
    ]
    for spec, message in cases:
        with pytest.raises(RotationError, match=message):
            await rotate(SQLiteRowSource(conn, spec), OLD, NEW)


def test_spec_associated_data_mirrors_rotation() -> None:
    assert CREDENTIALS.associated_data("user1", "server1", "token") == AssociatedData(
        "credential", "user1", "server1", "token"
    )
    assert REFRESH.associated_data(7, "gitlab") == AssociatedData("oauth_refresh", "7", "gitlab", "")
    with pytest.raises(ValueError, match="has no column for credential_id"):
        REFRESH.associated_data(7, "gitlab", "oops")
    with pytest.raises(TypeError, match="TEXT or INTEGER"):
        REFRESH.associated_data(7.0, "gitlab")
    with pytest.raises(ValueError, match="same blob column"):
        SQLiteRowSource(None, [REFRESH, REFRESH])  # type: ignore[arg-type]


async def test_start_check_reads_without_writing(database: Fixture, conn: aiosqlite.Connection) -> None:
    await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = hashlib.sha256(database.path.read_bytes()).hexdigest()
    source = SQLiteRowSource(conn, ALL_SPECS)
    report = await verify_key_against_rows(OLD, source, sample=32)
    assert (report.rows, report.opened) == (ROWS + 30, 32)
    message = f"the vault was sealed with key {OLD.key_id}, the configured key is {NEW.key_id}"
    with pytest.raises(WrongKey, match=message):
        await verify_key_against_rows(NEW, source, sample=32)
    assert hashlib.sha256(database.path.read_bytes()).hexdigest() == before
    assert (
        not (database.path.parent / "gig.db-wal").exists()
        or (database.path.parent / "gig.db-wal").stat().st_size == 0
    )


def test_cli_rotate_prints_progress_and_can_be_rerun(database: Fixture, tmp_path: Path) -> None:
    key_file = tmp_path / "new.key"
    out = io.StringIO()
    assert generate_key_command(key_file, stream=out) == 0
    new_key = MasterKey.from_file(key_file)
    assert new_key.key_id in out.getvalue()
    assert new_key._key.hex() not in out.getvalue()

    out = io.StringIO()
    assert rotate_command(database.path, ALL_SPECS, OLD, key_file, stream=out) == 0
    text = out.getvalue()
    assert f"rotating {ROWS + 30} secrets from master key {OLD.key_id} to {new_key.key_id}" in text
    progress = [line for line in text.splitlines() if line.startswith("rewrapped")]
    assert progress == [f"rewrapped {n}/1030" for n in range(103, 1031, 103)]
    assert f"{ROWS + 30} rewrapped, 0 already under the new key, all {ROWS + 30} verified" in text
    for material in (OLD._key.hex(), new_key._key.hex()):
        assert material not in text
    assert assert_every_secret_opens(database, new_key) == {new_key.key_id}

    out = io.StringIO()
    assert rotate_command(database.path, ALL_SPECS, OLD, key_file, stream=out) == 0
    assert f"0 rewrapped, {ROWS + 30} already under the new key" in out.getvalue()

    out = io.StringIO()
    assert check_command(database.path, ALL_SPECS, new_key, stream=out) == 0
    assert f"checked {ROWS + 30} secrets: {ROWS + 30} open, 0 fail" in out.getvalue()


def test_cli_rotate_prints_every_tenth(tmp_path: Path) -> None:
    fixture = make_database(tmp_path / "gig.db", journal_mode="delete")
    key_file = tmp_path / "new.key"
    key_file.write_text(NEW._key.hex() + "\n")
    out = io.StringIO()
    assert rotate_command(fixture.path, [CREDENTIALS], OLD, key_file, stream=out) == 0
    progress = [line for line in out.getvalue().splitlines() if line.startswith("rewrapped")]
    assert progress == [f"rewrapped {n}/1000" for n in range(100, 1001, 100)]


def test_cli_rotate_refusals(database: Fixture, tmp_path: Path) -> None:
    key_file = tmp_path / "new.key"
    key_file.write_text(NEW._key.hex())
    stranger = MasterKey.generate()

    out = io.StringIO()
    assert rotate_command(database.path, ALL_SPECS, stranger, key_file, stream=out) == 1
    assert f"the configured keys are {stranger.key_id} (old) and {NEW.key_id} (new)" in out.getvalue()
    assert "nothing was changed" in out.getvalue()
    assert assert_every_secret_opens(database, OLD) == {OLD.key_id}

    out = io.StringIO()
    assert rotate_command(database.path, ALL_SPECS, OLD, tmp_path / "missing.key", stream=out) == 2
    assert "--new-key-file names" in out.getvalue()

    out = io.StringIO()
    missing_db = tmp_path / "typo.db"
    assert rotate_command(missing_db, ALL_SPECS, OLD, key_file, stream=out) == 2
    assert "does not exist" in out.getvalue()
    assert not missing_db.exists()

    out = io.StringIO()
    bad_spec = TableSpec("credentials", "rowid", "nope", "credential")
    assert rotate_command(database.path, [bad_spec], OLD, key_file, stream=out) == 2
    assert "has no column 'nope'" in out.getvalue()

    out = io.StringIO()
    assert rotate_command(database.path, ALL_SPECS, OLD, key_file, stream=out) == 0
    out = io.StringIO()
    same = tmp_path / "same.key"
    same.write_text(NEW._key.hex())
    assert rotate_command(database.path, ALL_SPECS, NEW, same, stream=out) == 1
    assert "same as the current one" in out.getvalue()

    out = io.StringIO()
    assert check_command(database.path, ALL_SPECS, OLD, stream=out) == 1
    lines = out.getvalue().splitlines()
    assert len(lines) == 22
    assert lines[0].startswith("vault check: row credentials.encrypted_key[rowid=1]: the vault was sealed")
    assert lines[20] == f"vault check: ... and {ROWS + 10} more rows that fail"
    total = ROWS + 30
    assert lines[21] == f"checked {total} secrets: 0 open, {total} fail ({total} under {NEW.key_id})"
