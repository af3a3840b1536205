"""Store: SQLite (aiosqlite) connection, versioned migrations and repositories. No SQL lives outside this package."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from gateway.store.cache import VersionedCache
from gateway.store.consents import ConsentRecord, Consents
from gateway.store.db import AUDIT_BUSY_TIMEOUT_MS, StoreError, open_db, register_writer
from gateway.store.repositories import InstalledServer, Profile, Profiles, SandboxEvents, Servers, User, Users
from gateway.store.secrets import CANARY_SPEC, CREDENTIALS_SPEC, VAULT_TABLES, CredentialRow, SealedSecrets
from gateway.store.tokens import TokenOwner, TokenRecord, Tokens
from gateway.store.tools import ToolSettings

__all__ = [
    "CANARY_SPEC",
    "CREDENTIALS_SPEC",
    "VAULT_TABLES",
    "ConsentRecord",
    "CredentialRow",
    "InstalledServer",
    "Profile",
    "Store",
    "StoreError",
    "TokenOwner",
    "TokenRecord",
    "User",
]


@dataclass(slots=True)
class Store:
    conn: aiosqlite.Connection
    users: Users
    servers: Servers
    profiles: Profiles
    events: SandboxEvents
    tokens: Tokens
    tools: ToolSettings
    consents: Consents
    secrets: SealedSecrets
    cache: VersionedCache
    audit_conn: aiosqlite.Connection | None = None  # audit batches go through it (`db.writer_for`)

    @classmethod
    async def open(cls, path: Path) -> Store:
        conn = await open_db(path)
        try:
            audit_conn = await open_db(path, busy_timeout_ms=AUDIT_BUSY_TIMEOUT_MS, run_migrations=False)
        except BaseException:
            await conn.close()
            raise
        register_writer(conn, audit_conn)
        return cls(
            conn,
            Users(conn),
            Servers(conn),
            Profiles(conn),
            SandboxEvents(conn),
            Tokens(conn),
            ToolSettings(conn),
            Consents(conn),
            SealedSecrets(conn),
            VersionedCache(path),
            audit_conn,
        )

    async def close(self) -> None:
        self.cache.close()
        # Both, whatever the first does: a connection left open keeps the process from exiting.
        try:
            if self.audit_conn is not None:
                await self.audit_conn.close()
        finally:
            await self.conn.close()
