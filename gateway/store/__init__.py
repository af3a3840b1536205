"""Store: SQLite (aiosqlite) connection, versioned migrations and repositories. No SQL lives outside this package."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from gateway.store.db import StoreError, open_db
from gateway.store.repositories import InstalledServer, Profile, Profiles, SandboxEvents, Servers, User, Users

__all__ = ["InstalledServer", "Profile", "Store", "StoreError", "User"]


@dataclass(slots=True)
class Store:
    conn: aiosqlite.Connection
    users: Users
    servers: Servers
    profiles: Profiles
    events: SandboxEvents

    @classmethod
    async def open(cls, path: Path) -> Store:
        conn = await open_db(path)
        return cls(conn, Users(conn), Servers(conn), Profiles(conn), SandboxEvents(conn))

    async def close(self) -> None:
        await self.conn.close()
