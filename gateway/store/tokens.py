"""API tokens: personal tokens (reach all of a user's profiles) and profile tokens (reach one profile).

Only the SHA-256 of a token is stored, and tokens are found by that hash. A token is never deleted
by revocation (only marked), so its id — which MCP sessions are bound to — is never handed out again
(AUTOINCREMENT keeps ids unique even after a user and their tokens are deleted).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import aiosqlite

from gateway.store.db import bookkeeping
from gateway.store.expiry import CLOCK_SKEW_S, within_lifetime

# last_used_at is bookkeeping, not security: one write per token per minute is plenty.
LAST_USED_RESOLUTION_S = 60.0


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: int
    user_id: int
    profile_id: int | None
    name: str
    prefix: str
    created_at: float
    expires_at: float | None
    last_used_at: float | None
    revoked_at: float | None

    @property
    def kind(self) -> str:
        return "personal" if self.profile_id is None else "profile"

    def active(self, now: float) -> bool:
        # A clock set back to before the token was issued must not lengthen its life (gateway/store/expiry.py).
        return self.revoked_at is None and within_lifetime(now, self.created_at, self.expires_at)


@dataclass(frozen=True, slots=True)
class TokenOwner:
    """What a presented token resolves to: the token and the user it belongs to."""

    token: TokenRecord
    user_name: str
    role: str


_COLUMNS = "t.id, t.user_id, t.profile_id, t.name, t.prefix, t.created_at, t.expires_at, t.last_used_at, t.revoked_at"


def _record(row: Any) -> TokenRecord:
    return TokenRecord(
        id=int(row[0]),
        user_id=int(row[1]),
        profile_id=int(row[2]) if row[2] is not None else None,
        name=str(row[3]),
        prefix=str(row[4]),
        created_at=float(row[5]),
        expires_at=float(row[6]) if row[6] is not None else None,
        last_used_at=float(row[7]) if row[7] is not None else None,
        revoked_at=float(row[8]) if row[8] is not None else None,
    )


class Tokens:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def create(
        self,
        *,
        user_id: int,
        profile_id: int | None,
        name: str,
        token_hash: bytes,
        prefix: str,
        expires_at: float | None,
    ) -> TokenRecord:
        cur = await self._conn.execute(
            "INSERT INTO api_tokens(user_id, profile_id, name, token_hash, prefix, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (user_id, profile_id, name, token_hash, prefix, time.time(), expires_at),
        )
        assert cur.lastrowid is not None
        record = await self.by_id(cur.lastrowid)
        assert record is not None
        return record

    async def by_id(self, token_id: int) -> TokenRecord | None:
        async with self._conn.execute(
            "SELECT " + _COLUMNS + " FROM api_tokens t WHERE t.id = ?", (token_id,)  # noqa: S608 (constant)
        ) as cur:
            row = await cur.fetchone()
        return _record(row) if row else None

    async def active_by_hash(self, token_hash: bytes, now: float) -> TokenOwner | None:
        """The live (not revoked, not expired) token with this hash, and its user."""
        async with self._conn.execute(
            "SELECT " + _COLUMNS + ", u.name, u.role FROM api_tokens t JOIN users u ON u.id = t.user_id"  # noqa: S608
            " WHERE t.token_hash = ? AND t.revoked_at IS NULL"
            " AND (t.expires_at IS NULL OR (t.expires_at > ? AND t.created_at <= ?))",
            (token_hash, now, now + CLOCK_SKEW_S),
        ) as cur:
            row = await cur.fetchone()
        return TokenOwner(_record(row), str(row[9]), str(row[10])) if row else None

    async def list_for(self, user_id: int, *, include_revoked: bool = False) -> list[TokenRecord]:
        sql = "SELECT " + _COLUMNS + " FROM api_tokens t WHERE t.user_id = ?"  # noqa: S608 (constant)
        if not include_revoked:
            sql += " AND t.revoked_at IS NULL"
        async with self._conn.execute(sql + " ORDER BY t.id", (user_id,)) as cur:
            rows = await cur.fetchall()
        return [_record(r) for r in rows]

    async def revoke(self, token_id: int, user_id: int | None = None) -> bool:
        """Revoke one token (of `user_id` when given); False if there is no such live token."""
        sql = "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL"
        params: tuple[object, ...] = (time.time(), token_id)
        if user_id is not None:
            sql += " AND user_id = ?"
            params += (user_id,)
        cur = await self._conn.execute(sql, params)
        return cur.rowcount == 1

    async def revoke_profile_tokens(self, profile_id: int, *, except_id: int | None = None) -> int:
        cur = await self._conn.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE profile_id = ? AND revoked_at IS NULL AND id != ?",
            (time.time(), profile_id, except_id if except_id is not None else -1),
        )
        return cur.rowcount

    async def touch(self, token_id: int, now: float) -> None:
        # The condition keeps concurrent gateways (and a clock step) from writing more than needed.
        await bookkeeping(
            self._conn,
            "UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
            (now, token_id, now - LAST_USED_RESOLUTION_S), "a token's last use",
        )
