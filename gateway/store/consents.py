"""Consent records: a user approved exactly one manifest (by runtime hash) of one server.

Consents are kept per hash, so approving a version once is enough even if the server is later rolled
back to it; revocation marks every hash of the server for that user. The manifest is stored as it was
shown, so a later change can be presented as a difference against what the user actually approved.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import aiosqlite


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    user_id: int
    server: str
    runtime_hash: str
    version: str
    manifest_json: str
    granted_at: float


def _record(row: Any) -> ConsentRecord:
    return ConsentRecord(int(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]), float(row[5]))


class Consents:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def grant(self, user_id: int, server: str, runtime_hash: str, version: str, manifest_json: str) -> None:
        await self._conn.execute(
            "INSERT INTO consents(user_id, server_name, runtime_hash, version, manifest_json, granted_at, revoked_at)"
            " VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT(user_id, server_name, runtime_hash) DO UPDATE SET"
            " granted_at = excluded.granted_at, revoked_at = NULL, manifest_json = excluded.manifest_json",
            (user_id, server, runtime_hash, version, manifest_json, time.time()),
        )

    async def revoke(self, user_id: int, server: str) -> int:
        cur = await self._conn.execute(
            "UPDATE consents SET revoked_at = ? WHERE user_id = ? AND server_name = ? AND revoked_at IS NULL",
            (time.time(), user_id, server),
        )
        return cur.rowcount

    async def has(self, user_id: int, server: str, runtime_hash: str) -> bool:
        async with self._conn.execute(
            "SELECT 1 FROM consents WHERE user_id = ? AND server_name = ? AND runtime_hash = ? AND revoked_at IS NULL",
            (user_id, server, runtime_hash),
        ) as cur:
            return await cur.fetchone() is not None

    async def get(self, user_id: int, server: str, runtime_hash: str) -> ConsentRecord | None:
        async with self._conn.execute(
            "SELECT user_id, server_name, runtime_hash, version, manifest_json, granted_at FROM consents"
            " WHERE user_id = ? AND server_name = ? AND runtime_hash = ? AND revoked_at IS NULL",
            (user_id, server, runtime_hash),
        ) as cur:
            row = await cur.fetchone()
        return _record(row) if row else None

    async def latest(self, user_id: int, server: str) -> ConsentRecord | None:
        """The most recent live consent of the user to any manifest of the server."""
        async with self._conn.execute(
            "SELECT user_id, server_name, runtime_hash, version, manifest_json, granted_at FROM consents"
            " WHERE user_id = ? AND server_name = ? AND revoked_at IS NULL ORDER BY granted_at DESC LIMIT 1",
            (user_id, server),
        ) as cur:
            row = await cur.fetchone()
        return _record(row) if row else None

    async def list_for(self, user_id: int) -> list[ConsentRecord]:
        """The latest live consent per server of the user."""
        async with self._conn.execute(
            "SELECT user_id, server_name, runtime_hash, version, manifest_json, MAX(granted_at) FROM consents"
            " WHERE user_id = ? AND revoked_at IS NULL GROUP BY server_name ORDER BY server_name",
            (user_id,),
        ) as cur:
            rows = await cur.fetchall()
        return [_record(r) for r in rows]
