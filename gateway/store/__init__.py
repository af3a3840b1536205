"""Store: SQLite (aiosqlite) connection, versioned migrations and repositories. No SQL lives outside this package."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from gateway.store.cache import VersionedCache
from gateway.store.consents import ConsentRecord, Consents
from gateway.store.db import StoreError, open_db
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

    @classmethod
    async def open(cls, path: Path) -> Store:
        conn = await open_db(path)
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
        )

    async def close(self) -> None:
        self.cache.close()
        await self.conn.close()
