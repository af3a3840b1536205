"""The SQLite connection: WAL, foreign keys, busy timeout, the migration runner, and storage failures.

A write that meets another process's write lock waits up to the busy timeout, then fails with
"database is locked"; a write on a full disk fails with "database or disk is full". Neither corrupts
anything (SQLite rolls the transaction back), and `storage_failure` names them so that the HTTP layer
can answer 503 or 507 instead of a bare 500 and the audit writers know to retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import sqlite3
import weakref
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import aiosqlite

from gateway.store.migrations import MIGRATIONS

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
# The audit writers retry on their own (gateway/audit.py): a short wait keeps their thread responsive.
AUDIT_BUSY_TIMEOUT_MS = 1000
StorageFailure = Literal["full", "busy", "io"]


class StoreError(RuntimeError):
    """The database cannot be opened or migrated; the message says what to do."""


def storage_failure(exc: BaseException) -> StorageFailure | None:
    """What kind of storage refusal `exc` is, or None when it is something else (a bug, a constraint).

    "full": no space left; "busy": another process holds the write lock longer than the busy timeout;
    "io": the disk refused a read or write. All three may succeed when retried later.
    """
    if isinstance(exc, OSError):
        return "full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else None
    if not isinstance(exc, sqlite3.DatabaseError):
        return None
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    text = str(exc).lower()
    if name == "SQLITE_FULL" or "disk is full" in text:
        return "full"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "is locked" in text:
        return "busy"
    if name.startswith("SQLITE_IOERR") or "disk i/o error" in text:
        return "io"
    return None


async def open_db(path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS, run_migrations: bool = True,
                  ) -> aiosqlite.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = not path.exists()
    try:
        conn = await aiosqlite.connect(path, isolation_level=None)
    except Exception as exc:
        raise StoreError(f"cannot open database {path}: {exc}") from None
    if fresh:
        # The database holds token hashes and sealed secrets: owner-only from the first byte.
        os.chmod(path, 0o600)
    conn.row_factory = aiosqlite.Row
    try:
        # The busy timeout first: another process holding the lock at our start is waited for too.
        await conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA foreign_keys=ON")
        await conn.execute("PRAGMA synchronous=NORMAL")
        if run_migrations:
            await migrate(conn)
    except BaseException as exc:
        # An open connection keeps its (non-daemon) thread alive: the process would never exit.
        with contextlib.suppress(Exception):
            await conn.close()
        failure = storage_failure(exc) if isinstance(exc, Exception) else None
        if failure is not None:
            hint = {"full": "its disk is full", "busy": "another process holds its write lock",
                    "io": "its disk refused a read or write (is it full?)"}[failure]
            raise StoreError(f"cannot open database {path}: {exc}; {hint}") from None
        raise
    return conn


async def schema_version(conn: aiosqlite.Connection) -> int:
    await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    async with conn.execute("SELECT MAX(version) FROM schema_version") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


async def migrate(conn: aiosqlite.Connection) -> int:
    current = await schema_version(conn)
    latest = MIGRATIONS[-1][0] if MIGRATIONS else 0
    if current > latest:
        raise StoreError(
            f"database schema {current} is newer than this gigmcp ({latest}); upgrade gigmcp or restore a backup"
        )
    for version, sql in MIGRATIONS:
        if version <= current:
            continue
        # executescript would COMMIT implicitly; run statements one by one inside our own transaction.
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(sql):
                await conn.execute(statement)
            await conn.execute("INSERT INTO schema_version(version) VALUES (?)", (version,))
            await conn.execute("COMMIT")
        except Exception:
            await conn.execute("ROLLBACK")
            raise
    return latest


def _statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]


# Each store connection's dedicated audit connection (see `writer_for`).
_WRITERS: weakref.WeakKeyDictionary[aiosqlite.Connection, aiosqlite.Connection] = weakref.WeakKeyDictionary()


def register_writer(conn: aiosqlite.Connection, writer: aiosqlite.Connection) -> None:
    _WRITERS[conn] = writer


def writer_for(conn: aiosqlite.Connection) -> aiosqlite.Connection:
    """The connection that audit batches of `conn`'s store go through: its dedicated one, if it has one.

    Audit inserts are the gateway's most frequent writes. On their own connection (so their own
    thread) they never queue in front of the reads and writes of requests, and when another process
    holds the write lock only the audit writer waits for it and retries, not every request.
    """
    return _WRITERS.get(conn, conn)


async def bookkeeping(conn: aiosqlite.Connection, sql: str, args: tuple[object, ...], what: str) -> None:
    """A write that only keeps a record (a token's last use, a session's last visit) for `conn`'s store.

    It goes through the audit connection (short busy timeout, its own thread), and when the storage
    refuses it the request it rides on carries on: a locked or full database must not fail a read.
    """
    writer = writer_for(conn)
    try:
        async with transaction(writer):
            await writer.execute(sql, args)
    except Exception as exc:
        if storage_failure(exc) is None:
            raise
        log.warning("%s not recorded: %s", what, exc)


_TX_LOCKS: weakref.WeakKeyDictionary[aiosqlite.Connection, asyncio.Lock] = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def transaction(conn: aiosqlite.Connection) -> AsyncIterator[None]:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any error), one at a time per connection.

    The gateway shares one connection between coroutines; without the lock a second BEGIN would fail
    ("cannot start a transaction within a transaction") or one writer's statements would land inside
    another's transaction.
    """
    lock = _TX_LOCKS.setdefault(conn, asyncio.Lock())
    async with lock:
        await conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
        await conn.execute("COMMIT")


async def insert_spooled(conn: aiosqlite.Connection, table: str, columns: Sequence[str],
                         rows: Sequence[Mapping[str, Any]]) -> None:
    """Append audit rows in one transaction on the audit writer's connection.

    A row replayed from the spool that is already in the table (same `spool_id`) is skipped; any
    other constraint violation still fails the batch. `table` and `columns` are the caller's constants.
    """
    if not rows:
        return
    writer = writer_for(conn)
    sql = (f"INSERT INTO {table}({', '.join(columns)}, spool_id) VALUES ({', '.join('?' for _ in columns)}, ?)"  # noqa: S608
           " ON CONFLICT (spool_id) WHERE spool_id IS NOT NULL DO NOTHING")
    values = [(*(row[c] for c in columns), row.get("spool_id")) for row in rows]
    async with transaction(writer):
        await writer.executemany(sql, values)

