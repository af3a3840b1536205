"""Repositories of the dashboard login: OIDC identities, browser sessions, pending logins, used codes.

Only SHA-256 digests of session tokens and login states are stored. A pending login is taken exactly
once (`take` deletes the row it returns), so a replayed callback finds nothing.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass

import aiosqlite

from gateway.store.db import bookkeeping, transaction
from gateway.store.expiry import CLOCK_SKEW_S, within_lifetime
from gateway.store.repositories import User


@dataclass(frozen=True, slots=True)
class Identity:
    issuer: str
    subject: str
    user_id: int
    email: str
    display_name: str
    roles: tuple[str, ...]
    last_login_at: float


@dataclass(frozen=True, slots=True)
class WebSession:
    id: int
    user_id: int
    created_at: float
    expires_at: float
    last_seen_at: float
    user_agent: str
    address: str
    revoked_at: float | None

    def active(self, now: float) -> bool:
        return self.revoked_at is None and within_lifetime(now, self.created_at, self.expires_at)


@dataclass(frozen=True, slots=True)
class SessionOwner:
    session: WebSession
    user: User


@dataclass(frozen=True, slots=True)
class PendingLogin:
    binding_hash: str
    nonce: str
    verifier: str
    return_to: str
    expires_at: float


_SESSION_COLUMNS = ("s.id, s.user_id, s.created_at, s.expires_at, s.last_seen_at, s.user_agent, s.address,"
                    " s.revoked_at")


def _session(row: aiosqlite.Row) -> WebSession:
    return WebSession(int(row[0]), int(row[1]), row[2], row[3], row[4], row[5], row[6], row[7])


class Identities:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def get(self, issuer: str, subject: str) -> Identity | None:
        async with self._conn.execute(
            "SELECT issuer, subject, user_id, email, display_name, roles, last_login_at FROM oidc_identities"
            " WHERE issuer = ? AND subject = ?", (issuer, subject),
        ) as cur:
            row = await cur.fetchone()
        return _identity(row) if row else None

    async def for_user(self, user_id: int) -> Identity | None:
        async with self._conn.execute(
            "SELECT issuer, subject, user_id, email, display_name, roles, last_login_at FROM oidc_identities"
            " WHERE user_id = ?", (user_id,),
        ) as cur:
            row = await cur.fetchone()
        return _identity(row) if row else None

    async def link_new_user(self, issuer: str, subject: str, names: list[str], role: str, *, email: str,
                            display_name: str, roles: tuple[str, ...]) -> User:
        """Create a user under the first free name of `names` and link it to (issuer, subject), atomically."""
        now = time.time()
        async with transaction(self._conn):
            user_id = None
            for name in names:
                try:
                    cur = await self._conn.execute(
                        "INSERT INTO users(name, role, created_at) VALUES (?, ?, ?)", (name, role, now))
                except sqlite3.IntegrityError:
                    continue
                user_id = cur.lastrowid
                chosen = name
                break
            if user_id is None:
                raise LookupError("no free user name")
            await self._conn.execute(
                "INSERT INTO oidc_identities(issuer, subject, user_id, email, display_name, roles, created_at,"
                " last_login_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (issuer, subject, user_id, email, display_name, json.dumps(list(roles)), now, now),
            )
        return User(int(user_id), chosen, role, now)

    async def refresh(self, issuer: str, subject: str, role: str, *, email: str, display_name: str,
                      roles: tuple[str, ...]) -> None:
        """Every login refreshes what the IdP says: email, name, roles and so the user's role."""
        now = time.time()
        async with transaction(self._conn):
            await self._conn.execute(
                "UPDATE oidc_identities SET email = ?, display_name = ?, roles = ?, last_login_at = ?"
                " WHERE issuer = ? AND subject = ?",
                (email, display_name, json.dumps(list(roles)), now, issuer, subject),
            )
            await self._conn.execute(
                "UPDATE users SET role = ? WHERE id = (SELECT user_id FROM oidc_identities"
                " WHERE issuer = ? AND subject = ?)", (role, issuer, subject),
            )

    async def all(self) -> dict[int, Identity]:
        async with self._conn.execute(
            "SELECT issuer, subject, user_id, email, display_name, roles, last_login_at FROM oidc_identities"
        ) as cur:
            rows = await cur.fetchall()
        return {int(r[2]): _identity(r) for r in rows}


def _identity(row: aiosqlite.Row) -> Identity:
    roles = json.loads(row[5]) if row[5] else []
    return Identity(row[0], row[1], int(row[2]), row[3], row[4], tuple(str(r) for r in roles), row[6])


class WebSessions:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def create(self, user_id: int, token_hash: bytes, ttl_s: float, *, user_agent: str,
                     address: str) -> WebSession:
        now = time.time()
        cur = await self._conn.execute(
            "INSERT INTO web_sessions(token_hash, user_id, created_at, expires_at, last_seen_at, user_agent, address)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (token_hash, user_id, now, now + ttl_s, now, user_agent[:200], address[:64]),
        )
        assert cur.lastrowid is not None
        return WebSession(cur.lastrowid, user_id, now, now + ttl_s, now, user_agent[:200], address[:64], None)

    async def active_by_hash(self, token_hash: bytes, now: float) -> SessionOwner | None:
        async with self._conn.execute(
            f"SELECT {_SESSION_COLUMNS}, u.name, u.role, u.created_at FROM web_sessions s"  # noqa: S608
            " JOIN users u ON u.id = s.user_id"
            " WHERE s.token_hash = ? AND s.revoked_at IS NULL AND s.expires_at > ? AND s.created_at <= ?",
            (token_hash, now, now + CLOCK_SKEW_S),
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        session = _session(row)
        return SessionOwner(session, User(session.user_id, row[8], row[9], row[10]))

    async def touch(self, session_id: int, now: float) -> None:
        await bookkeeping(self._conn, "UPDATE web_sessions SET last_seen_at = ? WHERE id = ?", (now, session_id),
                          "a session's last visit")

    async def list_for(self, user_id: int, now: float) -> list[WebSession]:
        async with self._conn.execute(
            f"SELECT {_SESSION_COLUMNS} FROM web_sessions s"  # noqa: S608
            " WHERE s.user_id = ? AND s.revoked_at IS NULL AND s.expires_at > ? ORDER BY s.id DESC", (user_id, now),
        ) as cur:
            rows = await cur.fetchall()
        return [_session(r) for r in rows]

    async def revoke(self, session_id: int, user_id: int) -> bool:
        """Revoke one of the user's sessions (someone else's is reported like a missing one)."""
        cur = await self._conn.execute(
            "UPDATE web_sessions SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
            (time.time(), session_id, user_id),
        )
        return cur.rowcount == 1

    async def purge_expired(self, now: float) -> None:
        await self._conn.execute("DELETE FROM web_sessions WHERE expires_at < ? OR revoked_at < ?",
                                 (now, now - 86400))


class LoginFlows:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def add(self, state_hash: str, pending: PendingLogin) -> None:
        now = time.time()
        await self._conn.execute("DELETE FROM oidc_flows WHERE expires_at < ?", (now,))
        await self._conn.execute(
            "INSERT INTO oidc_flows(state_hash, binding_hash, nonce, verifier, return_to, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (state_hash, pending.binding_hash, pending.nonce, pending.verifier, pending.return_to, now,
             pending.expires_at),
        )

    async def take(self, state_hash: str) -> PendingLogin | None:
        """The pending login of this state, deleted in the same statement: a state works once."""
        async with self._conn.execute(
            "DELETE FROM oidc_flows WHERE state_hash = ?"
            " RETURNING binding_hash, nonce, verifier, return_to, expires_at", (state_hash,),
        ) as cur:
            row = await cur.fetchone()
        return PendingLogin(row[0], row[1], row[2], row[3], row[4]) if row else None

    async def mark_code_used(self, code_hash: str, expires_at: float) -> bool:
        """False if this authorization code was presented before (a replay)."""
        await self._conn.execute("DELETE FROM oidc_used_codes WHERE expires_at < ?", (time.time(),))
        try:
            await self._conn.execute("INSERT INTO oidc_used_codes(code_hash, expires_at) VALUES (?, ?)",
                                     (code_hash, expires_at))
        except sqlite3.IntegrityError:
            return False
        return True
