"""The SQLite connection: WAL, foreign keys, busy timeout, and the migration runner."""

from __future__ import annotations

import asyncio
import contextlib
import os
import weakref
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite

from gateway.store.migrations import MIGRATIONS


class StoreError(RuntimeError):
    """The database cannot be opened or migrated; the message says what to do."""


async def open_db(path: Path) -> aiosqlite.Connection:
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
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA foreign_keys=ON")
    await conn.execute("PRAGMA busy_timeout=5000")
    await conn.execute("PRAGMA synchronous=NORMAL")
    await migrate(conn)
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
