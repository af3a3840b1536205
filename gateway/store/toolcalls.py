"""Repository of per-tool-call audit records: batched inserts, keyset pages, counts per day.

Arguments and results are never stored: only who called which tool, how long it took and how it ended.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiosqlite

from gateway.store.db import insert_spooled

COLUMNS = ("at", "user", "profile_id", "server", "tool", "duration_ms", "outcome", "error_class")


class ToolCalls:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        await insert_spooled(self._conn, "tool_calls", COLUMNS, rows)

    async def page(self, *, before_id: int | None = None, limit: int = 50, user: str | None = None,
                   server: str | None = None, outcome: str | None = None, since: float | None = None,
                   until: float | None = None) -> list[dict[str, Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        for clause, value in (("id < ?", before_id), ("user = ?", user), ("server = ?", server),
                              ("outcome = ?", outcome), ("at >= ?", since), ("at < ?", until)):
            if value is not None and value != "":
                clauses.append(clause)
                args.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT id, {', '.join(COLUMNS)} FROM tool_calls {where} ORDER BY id DESC LIMIT ?"  # noqa: S608
        async with self._conn.execute(sql, (*args, limit)) as cur:
            rows = await cur.fetchall()
        return [dict(zip(("id", *COLUMNS), tuple(r), strict=True)) for r in rows]

    async def per_day(self, since: float, user: str | None = None) -> dict[str, int]:
        """'YYYY-MM-DD' (UTC) -> number of calls, from `since` on."""
        sql = "SELECT date(at, 'unixepoch'), count(*) FROM tool_calls WHERE at >= ?"
        args: list[Any] = [since]
        if user is not None:
            sql += " AND user = ?"
            args.append(user)
        async with self._conn.execute(sql + " GROUP BY 1", args) as cur:
            rows = await cur.fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    async def count(self, user: str | None = None) -> int:
        sql, args = ("SELECT count(*) FROM tool_calls", ()) if user is None else (
            "SELECT count(*) FROM tool_calls WHERE user = ?", (user,))
        async with self._conn.execute(sql, args) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0


EGRESS_COLUMNS = ("at", "server", "profile", "user", "method", "host", "port", "path", "status", "decision", "reason")


async def egress_page(conn: aiosqlite.Connection, *, before_id: int | None = None, limit: int = 50,
                      profiles: list[str] | None = None, server: str | None = None, decision: str | None = None,
                      since: float | None = None, until: float | None = None) -> list[dict[str, Any]]:
    """Egress decisions, newest first; `profiles` restricts to those sandboxes' profiles (a user's own)."""
    clauses: list[str] = []
    args: list[Any] = []
    for clause, value in (("id < ?", before_id), ("server = ?", server), ("decision = ?", decision),
                          ("at >= ?", since), ("at < ?", until)):
        if value is not None and value != "":
            clauses.append(clause)
            args.append(value)
    if profiles is not None:
        clauses.append(f"profile IN ({', '.join('?' for _ in profiles)})" if profiles else "0")
        args.extend(profiles)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    sql = f"SELECT id, {', '.join(EGRESS_COLUMNS)} FROM egress_audit {where} ORDER BY id DESC LIMIT ?"  # noqa: S608
    async with conn.execute(sql, (*args, limit)) as cur:
        rows = await cur.fetchall()
    return [dict(zip(("id", *EGRESS_COLUMNS), tuple(r), strict=True)) for r in rows]


