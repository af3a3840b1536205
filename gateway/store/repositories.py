"""Repositories: the only place that writes SQL against the gateway's tables.

Each method is one small query; callers get plain dataclasses back, never rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import aiosqlite


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: str


@dataclass(frozen=True, slots=True)
class InstalledServer:
    name: str
    version: str
    manifest_json: str
    runtime_hash: str
    install_dir: str


@dataclass(frozen=True, slots=True)
class Profile:
    id: int
    user_id: int
    slug: str
    is_default: bool


class Users:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def ensure(self, name: str, role: str) -> User:
        await self._conn.execute(
            "INSERT INTO users(name, role, created_at) VALUES (?, ?, ?) ON CONFLICT(name) DO NOTHING",
            (name, role, time.time()),
        )
        user = await self.by_name(name)
        assert user is not None
        return user

    async def by_name(self, name: str) -> User | None:
        async with self._conn.execute("SELECT id, name, role FROM users WHERE name = ?", (name,)) as cur:
            row = await cur.fetchone()
        return User(row["id"], row["name"], row["role"]) if row else None


class Servers:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def record_install(self, server: InstalledServer) -> None:
        await self._conn.execute("BEGIN IMMEDIATE")
        try:
            await self._conn.execute("UPDATE servers SET active = 0 WHERE name = ?", (server.name,))
            await self._conn.execute(
                "INSERT INTO servers(name, version, manifest_json, runtime_hash, install_dir, installed_at, active)"
                " VALUES (?, ?, ?, ?, ?, ?, 1)"
                " ON CONFLICT(name, version) DO UPDATE SET manifest_json = excluded.manifest_json,"
                " runtime_hash = excluded.runtime_hash, install_dir = excluded.install_dir, active = 1",
                (server.name, server.version, server.manifest_json, server.runtime_hash, server.install_dir,
                 time.time()),
            )
            await self._conn.execute("COMMIT")
        except Exception:
            await self._conn.execute("ROLLBACK")
            raise

    async def active(self) -> list[InstalledServer]:
        async with self._conn.execute(
            "SELECT name, version, manifest_json, runtime_hash, install_dir FROM servers WHERE active = 1"
            " ORDER BY name"
        ) as cur:
            rows = await cur.fetchall()
        return [InstalledServer(r[0], r[1], r[2], r[3], r[4]) for r in rows]


class Profiles:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def ensure_default(self, user: User) -> Profile:
        existing = await self.default_for(user.id)
        if existing:
            return existing
        await self._conn.execute(
            "INSERT INTO profiles(user_id, slug, is_default, created_at) VALUES (?, ?, 1, ?)",
            (user.id, f"{user.name}-default", time.time()),
        )
        created = await self.default_for(user.id)
        assert created is not None
        return created

    async def default_for(self, user_id: int) -> Profile | None:
        async with self._conn.execute(
            "SELECT id, user_id, slug, is_default FROM profiles WHERE user_id = ? AND is_default = 1", (user_id,)
        ) as cur:
            row = await cur.fetchone()
        return Profile(row[0], row[1], row[2], bool(row[3])) if row else None

    async def by_slug(self, slug: str) -> Profile | None:
        async with self._conn.execute(
            "SELECT id, user_id, slug, is_default FROM profiles WHERE slug = ?", (slug,)
        ) as cur:
            row = await cur.fetchone()
        return Profile(row[0], row[1], row[2], bool(row[3])) if row else None

    async def add_server(self, profile_id: int, server_name: str) -> None:
        await self._conn.execute(
            "INSERT INTO profile_servers(profile_id, server_name) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (profile_id, server_name),
        )

    async def server_names(self, profile_id: int) -> list[str]:
        async with self._conn.execute(
            "SELECT server_name FROM profile_servers WHERE profile_id = ? ORDER BY server_name", (profile_id,)
        ) as cur:
            rows = await cur.fetchall()
        return [r[0] for r in rows]


class SandboxEvents:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def record(self, server: str, profile_id: int | None, event: str, detail: str = "") -> None:
        await self._conn.execute(
            "INSERT INTO sandbox_events(at, server, profile_id, event, detail) VALUES (?, ?, ?, ?, ?)",
            (time.time(), server, profile_id, event, detail[:2000]),
        )

    async def recent(self, limit: int = 100) -> list[dict[str, object]]:
        async with self._conn.execute(
            "SELECT at, server, profile_id, event, detail FROM sandbox_events ORDER BY id DESC LIMIT ?", (limit,)
        ) as cur:
            rows = await cur.fetchall()
        return [dict(zip(("at", "server", "profile_id", "event", "detail"), r, strict=True)) for r in rows]
