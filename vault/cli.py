"""Entry functions behind ``gigmcp vault ...``; the gateway CLI parses arguments and calls these.

Each returns a process exit status: 0 done, 1 the vault refused (wrong key, damaged row; nothing was
changed), 2 bad input (unreadable key file, missing database, unknown table). Everything is printed
to stderr (or ``stream``), one sentence per problem, never a key or a secret.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final, TextIO

import aiosqlite

from vault.envelope import KeySource
from vault.errors import MasterKeyError, RotationError, VaultError
from vault.keys import MasterKey, named, write_new_key_file
from vault.rotation import check, rotate
from vault.sqlite_rotation import SQLiteRowSource, TableSpec

EXIT_OK: Final = 0
EXIT_REFUSED: Final = 1
EXIT_USAGE: Final = 2

_BUSY_TIMEOUT_MS: Final = 5000
_PROGRESS_STEPS: Final = 10
_MAX_FAILURES_SHOWN: Final = 20


class _ProgressPrinter:
    """Prints ``rewrapped done/total`` about ten times over a run, and always at the end."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def __call__(self, done: int, total: int) -> None:
        step = max(1, total // _PROGRESS_STEPS)
        if done % step == 0 or done == total:
            print(f"rewrapped {done}/{total}", file=self._stream, flush=True)


def _database_uri(db_path: str | os.PathLike[str]) -> str | None:
    """A read-write (never create) SQLite URI for an existing file, or None if there is no such file.

    mode=rw: a mistyped path must fail, not create an empty database that "rotates" nothing.
    """
    path = Path(db_path)
    if not path.is_file():
        return None
    return path.resolve().as_uri() + "?mode=rw"


@asynccontextmanager
async def _open_database(uri: str) -> AsyncIterator[aiosqlite.Connection]:
    conn = await aiosqlite.connect(uri, uri=True, isolation_level=None)
    try:
        await conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        yield conn
    finally:
        await conn.close()


def _say(stream: TextIO, message: str) -> None:
    print(message, file=stream, flush=True)


async def rotate_command_async(
    db_path: str | os.PathLike[str],
    table_specs: Sequence[TableSpec],
    old_key: MasterKey,
    new_key_file: str | os.PathLike[str],
    *,
    stream: TextIO | None = None,
) -> int:
    """``rotate_command`` for callers that already run an event loop."""
    out = sys.stderr if stream is None else stream
    try:
        new_key = MasterKey.from_file(new_key_file, source="--new-key-file")
    except MasterKeyError as exc:
        _say(out, f"vault rotate: {exc}")
        return EXIT_USAGE
    uri = _database_uri(db_path)
    if uri is None:
        _say(out, f"vault rotate: the database {named(db_path)} does not exist")
        return EXIT_USAGE
    if not table_specs:
        _say(out, "vault rotate: no tables to rotate were given")
        return EXIT_USAGE
    try:
        async with _open_database(uri) as conn:
            return await _rotate(SQLiteRowSource(conn, table_specs), conn, old_key, new_key, out)
    except sqlite3.Error as exc:
        _say(out, f"vault rotate: database error ({exc}); nothing was changed")
        return EXIT_REFUSED


async def _rotate(
    source: SQLiteRowSource,
    conn: aiosqlite.Connection,
    old_key: MasterKey,
    new_key: MasterKey,
    out: TextIO,
) -> int:
    try:
        total = await source.count()
    except RotationError as exc:  # missing table or column: the caller's table specs are wrong
        _say(out, f"vault rotate: {exc}")
        return EXIT_USAGE
    _say(out, f"rotating {total} secrets from master key {old_key.key_id} to {new_key.key_id}")
    try:
        report = await rotate(source, old_key, new_key, progress=_ProgressPrinter(out))
    except VaultError as exc:
        _say(out, f"vault rotate: {exc}; nothing was changed")
        return EXIT_REFUSED
    # Read everything back under the new key alone before telling the operator to switch to it.
    verified = await check(new_key, source)
    for failure in verified.failures[:_MAX_FAILURES_SHOWN]:
        _say(out, f"vault rotate: after commit: {failure.error}")
    if not verified.ok:
        return EXIT_REFUSED
    # Fold the WAL into the main file so that the old wrapped keys do not linger beside it.
    await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    _say(
        out,
        f"rotation complete in {report.seconds:.2f} s: {report.rewrapped} rewrapped, "
        f"{report.skipped} already under the new key, all {verified.opened} verified with key "
        f"{new_key.key_id}",
    )
    _say(
        out,
        "next: point GIG_MASTER_KEY_FILE at the new key file (or set GIG_MASTER_KEY to its contents) "
        "and restart the gateway; keep the old key for as long as backups taken before now are kept",
    )
    return EXIT_OK


def rotate_command(
    db_path: str | os.PathLike[str],
    table_specs: Sequence[TableSpec],
    old_key: MasterKey,
    new_key_file: str | os.PathLike[str],
    *,
    stream: TextIO | None = None,
) -> int:
    """Rewrap every secret of ``table_specs`` from ``old_key`` to the key in ``new_key_file``.

    One transaction: on any failure nothing is changed. Safe to re-run: rows already under the new
    key are skipped. Run it with the gateway stopped (it waits up to 5 s for the write lock).
    """
    return asyncio.run(rotate_command_async(db_path, table_specs, old_key, new_key_file, stream=stream))


async def check_command_async(
    db_path: str | os.PathLike[str],
    table_specs: Sequence[TableSpec],
    key: KeySource,
    *,
    stream: TextIO | None = None,
) -> int:
    """``check_command`` for callers that already run an event loop."""
    out = sys.stderr if stream is None else stream
    uri = _database_uri(db_path)
    if uri is None:
        _say(out, f"vault check: the database {named(db_path)} does not exist")
        return EXIT_USAGE
    try:
        async with _open_database(uri) as conn:
            report = await check(key, SQLiteRowSource(conn, table_specs))
    except VaultError as exc:
        _say(out, f"vault check: {exc}")
        return EXIT_USAGE
    except sqlite3.Error as exc:
        _say(out, f"vault check: database error ({exc})")
        return EXIT_USAGE
    # A wrong key fails every row; the first few lines say it all, thousands would bury it.
    for failure in report.failures[:_MAX_FAILURES_SHOWN]:
        _say(out, f"vault check: {failure.error}")
    if len(report.failures) > _MAX_FAILURES_SHOWN:
        _say(out, f"vault check: ... and {len(report.failures) - _MAX_FAILURES_SHOWN} more rows that fail")
    by_key = ", ".join(f"{count} under {key_id}" for key_id, count in sorted(report.key_ids.items()))
    _say(
        out,
        f"checked {report.rows} secrets: {report.opened} open, {len(report.failures)} fail "
        f"({by_key or 'no rows'})",
    )
    return EXIT_OK if report.ok else EXIT_REFUSED


def check_command(
    db_path: str | os.PathLike[str],
    table_specs: Sequence[TableSpec],
    key: KeySource,
    *,
    stream: TextIO | None = None,
) -> int:
    """Open every secret read-only and report each one that fails; exit 1 if any does."""
    return asyncio.run(check_command_async(db_path, table_specs, key, stream=stream))


def generate_key_command(out_path: str | os.PathLike[str], *, stream: TextIO | None = None) -> int:
    """Write a fresh master key to ``out_path`` (mode 0600; refuses to overwrite)."""
    out = sys.stderr if stream is None else stream
    try:
        key = write_new_key_file(out_path)
    except MasterKeyError as exc:
        _say(out, f"vault generate-key: {exc}")
        return EXIT_USAGE
    _say(out, f"wrote a new master key to {named(out_path)} (key id {key.key_id})")
    return EXIT_OK
