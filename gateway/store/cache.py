"""A read cache that is exactly as fresh as the database's identity data.

Every MCP request needs the caller's token, profile and consent: a few small reads that would each
cost a round trip through aiosqlite's thread. The cache keeps their results until one of the tables
they come from changes. Triggers installed here bump a one-row generation counter on every insert,
update or delete of any table except the append-only ones (audit, tool calls, sandbox events, flow
state) and a token's last-used stamp; a second plain connection reads the counter, microseconds on
the event loop's thread, no lock taken in WAL mode. Triggers fire for every writer — the gateway
itself, or a `gigmcp` CLI in another process — so a revocation takes effect on the very next request.

Why not `PRAGMA data_version`: it changes on *every* commit, and the audit log commits a batch every
few calls, so under load the cache was emptied almost per request (seen in a py-spy profile: the
reloads cost more than the rest of the call).
"""

from __future__ import annotations

import contextvars
import sqlite3
from collections.abc import Awaitable, Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
MAX_ENTRIES = 10_000
GENERATION_TABLE = "cache_generation"
# Written on most calls and never read through the cache: their writes must not empty it.
UNCACHED_TABLES = frozenset({
    GENERATION_TABLE, "schema_version", "tool_calls", "egress_audit", "sandbox_events", "oauth_states",
    "oidc_flows", "oidc_used_codes", "web_sessions"})
UNCACHED_COLUMNS = {"api_tokens": frozenset({"last_used_at"})}
# The generation read at the start of the current request (aiohttp runs each request in its own
# context): one probe per request instead of one per lookup, with the same guarantee — a request
# that starts after a commit sees it.
_request_generation: contextvars.ContextVar[int | None] = contextvars.ContextVar("cache_generation", default=None)


def install_generation_triggers(db_path: Path) -> None:
    """Idempotent: run at every start, so tables added by later migrations are covered too."""
    conn = sqlite3.connect(db_path, timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TABLE IF NOT EXISTS cache_generation "
                     "(id INTEGER PRIMARY KEY CHECK (id = 1), value INTEGER NOT NULL)")
        conn.execute("INSERT OR IGNORE INTO cache_generation (id, value) VALUES (1, 0)")
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        bump = "UPDATE cache_generation SET value = value + 1 WHERE id = 1"
        for table in tables:
            if table in UNCACHED_TABLES:
                continue
            columns = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
            watched = [c for c in columns if c not in UNCACHED_COLUMNS.get(table, frozenset())]
            update_of = f" OF {', '.join(f'"{c}"' for c in watched)}" if table in UNCACHED_COLUMNS else ""
            for event, clause in (("insert", "INSERT"), ("delete", "DELETE"), ("update", f"UPDATE{update_of}")):
                conn.execute(f'CREATE TRIGGER IF NOT EXISTS "gen_{table}_{event}" AFTER {clause} ON "{table}" '
                             f"BEGIN {bump}; END")
        conn.execute("COMMIT")
    finally:
        conn.close()


class VersionedCache:
    def __init__(self, db_path: Path) -> None:
        install_generation_triggers(db_path)
        self._probe = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, check_same_thread=False)
        self._version: int | None = None
        self._entries: dict[Hashable, Any] = {}
        self.hits = 0
        self.misses = 0

    def _data_version(self) -> int:
        row = self._probe.execute("SELECT value FROM cache_generation WHERE id = 1").fetchone()
        return int(row[0]) if row else -1

    def begin_request(self) -> None:
        """Read the generation once for the request running in this context."""
        version = self._data_version()
        self._sync(version)
        _request_generation.set(version)

    def _sync(self, version: int) -> None:
        if version != self._version:
            self._entries.clear()
            self._version = version

    async def get(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        # Inside a request the cache is at least as fresh as the request's own start: no probe.
        if _request_generation.get() is None:
            self._sync(self._data_version())
        if key in self._entries:
            self.hits += 1
            return self._entries[key]  # type: ignore[no-any-return]
        self.misses += 1
        version = self._version
        value = await load()
        # Keep it only if nothing was committed while it loaded: otherwise it may already be stale.
        if self._data_version() == version == self._version:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = value
        return value

    def close(self) -> None:
        self._probe.close()
