"""Repository of egress audit records: batched inserts and keyset-paginated reads."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiosqlite

from gateway.store.db import insert_spooled

COLUMNS = ("at", "sandbox_id", "server", "profile", "user", "method", "host", "port", "path", "status",
           "bytes_up", "bytes_down", "decision", "reason")


class EgressAudit:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        await insert_spooled(self._conn, "egress_audit", COLUMNS, rows)

    async def page(self, *, before_id: int | None = None, after_id: int | None = None, limit: int = 100,
                   server: str | None = None, decision: str | None = None) -> list[dict[str, Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if before_id is not None:
            clauses.append("id < ?")
            args.append(before_id)
        if after_id is not None:
            clauses.append("id > ?")
            args.append(after_id)
        if server:
            clauses.append("server = ?")
            args.append(server)
        if decision:
            clauses.append("decision = ?")
            args.append(decision)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "ASC" if after_id is not None else "DESC"
        sql = f"SELECT id, {', '.join(COLUMNS)} FROM egress_audit {where} ORDER BY id {order} LIMIT ?"  # noqa: S608
        async with self._conn.execute(sql, (*args, limit)) as cur:
            rows = await cur.fetchall()
        return [dict(zip(("id", *COLUMNS), tuple(r), strict=True)) for r in rows]
