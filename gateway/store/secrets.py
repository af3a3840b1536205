"""Sealed secrets at rest: the credentials table and the vault canary, and their rotation specs.

The store only ever holds vault ciphertexts here; sealing and opening happen in `gateway.credentials`
with the associated data built by the same `TableSpec` that `gigmcp vault rotate` uses, so the two
can never disagree about what a row is bound to.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import aiosqlite

from gateway.store.oauth import OAUTH_VAULT_TABLES
from vault import TableSpec

CREDENTIALS_SPEC = TableSpec(
    table="credentials",
    id_column="id",
    blob_column="sealed",
    kind="credential",
    owner_column="user_id",
    server_column="server_name",
    credential_id_column="credential_id",
)
# One row sealed under the master key at first start: it pins the key before any credential exists.
CANARY_SPEC = TableSpec(table="vault_canary", id_column="id", blob_column="sealed", kind="vault-canary")
# Every sealed column: checked against the key at start, rewrapped by `gigmcp vault rotate` (OAuth: migration 4).
VAULT_TABLES: tuple[TableSpec, ...] = (CREDENTIALS_SPEC, CANARY_SPEC, *OAUTH_VAULT_TABLES)


@dataclass(frozen=True, slots=True)
class CredentialRow:
    user_id: int
    server: str
    credential_id: str
    created_at: float
    updated_at: float


def _row(row: Any) -> CredentialRow:
    return CredentialRow(int(row[0]), str(row[1]), str(row[2]), float(row[3]), float(row[4]))


class SealedSecrets:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def put(self, user_id: int, server: str, credential_id: str, sealed: bytes) -> CredentialRow:
        now = time.time()
        await self._conn.execute(
            "INSERT INTO credentials(user_id, server_name, credential_id, sealed, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(user_id, server_name, credential_id) DO UPDATE SET"
            " sealed = excluded.sealed, updated_at = excluded.updated_at",
            (user_id, server, credential_id, sealed, now, now),
        )
        rows = await self.list_for(user_id, server)
        return next(r for r in rows if r.credential_id == credential_id)

    async def sealed(self, user_id: int, server: str, credential_id: str) -> bytes | None:
        async with self._conn.execute(
            "SELECT sealed FROM credentials WHERE user_id = ? AND server_name = ? AND credential_id = ?",
            (user_id, server, credential_id),
        ) as cur:
            row = await cur.fetchone()
        return bytes(row[0]) if row else None

    async def delete(self, user_id: int, server: str, credential_id: str) -> bool:
        cur = await self._conn.execute(
            "DELETE FROM credentials WHERE user_id = ? AND server_name = ? AND credential_id = ?",
            (user_id, server, credential_id),
        )
        return cur.rowcount == 1

    async def list_for(self, user_id: int, server: str | None = None) -> list[CredentialRow]:
        sql = "SELECT user_id, server_name, credential_id, created_at, updated_at FROM credentials WHERE user_id = ?"
        params: tuple[object, ...] = (user_id,)
        if server is not None:
            sql += " AND server_name = ?"
            params += (server,)
        async with self._conn.execute(sql + " ORDER BY server_name, credential_id", params) as cur:
            rows = await cur.fetchall()
        return [_row(r) for r in rows]

    async def count(self) -> int:
        async with self._conn.execute("SELECT count(*) FROM credentials") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def canary(self) -> bytes | None:
        async with self._conn.execute("SELECT sealed FROM vault_canary WHERE id = 1") as cur:
            row = await cur.fetchone()
        return bytes(row[0]) if row else None

    async def set_canary(self, sealed: bytes) -> None:
        await self._conn.execute(
            "INSERT INTO vault_canary(id, sealed, created_at) VALUES (1, ?, ?) ON CONFLICT(id) DO NOTHING",
            (sealed, time.time()),
        )
