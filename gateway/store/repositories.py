"""Repositories: the only place that writes SQL against the gateway's tables.

Each method is one small query; callers get plain dataclasses back, never rows.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

import aiosqlite

from gateway.store.db import StoreError, transaction


@dataclass(frozen=True, slots=True)
class User:
    id: int
    name: str
    role: str
    created_at: float = 0.0


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

    async def create(self, name: str, role: str) -> User | None:
        """A new user, or None if the name is taken."""
        try:
            await self._conn.execute(
                "INSERT INTO users(name, role, created_at) VALUES (?, ?, ?)", (name, role, time.time())
            )
        except sqlite3.IntegrityError:
            return None
        return await self.by_name(name)

    async def by_name(self, name: str) -> User | None:
        async with self._conn.execute(
            "SELECT id, name, role, created_at FROM users WHERE name = ?", (name,)
        ) as cur:
            row = await cur.fetchone()
        return User(row[0], row[1], row[2], row[3]) if row else None

    async def by_id(self, user_id: int) -> User | None:
        async with self._conn.execute(
            "SELECT id, name, role, created_at FROM users WHERE id = ?", (user_id,)
        ) as cur:
            row = await cur.fetchone()
        return User(row[0], row[1], row[2], row[3]) if row else None

    async def list(self) -> list[User]:
        async with self._conn.execute("SELECT id, name, role, created_at FROM users ORDER BY name") as cur:
            rows = await cur.fetchall()
        return [User(r[0], r[1], r[2], r[3]) for r in rows]

    async def delete(self, user_id: int) -> bool:
        # Tokens, profiles, consents and credentials go with the user (ON DELETE CASCADE).
        cur = await self._conn.execute("DELETE FROM users WHERE id = ?", (user_id,))
        return cur.rowcount == 1


class Servers:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def record_install(self, server: InstalledServer) -> None:
        async with transaction(self._conn):
            await self._conn.execute("UPDATE servers SET active = 0 WHERE name = ?", (server.name,))
            await self._conn.execute(
                "INSERT INTO servers(name, version, manifest_json, runtime_hash, install_dir, installed_at, active)"
                " VALUES (?, ?, ?, ?, ?, ?, 1)"
                " ON CONFLICT(name, version) DO UPDATE SET manifest_json = excluded.manifest_json,"
                " runtime_hash = excluded.runtime_hash, install_dir = excluded.install_dir, active = 1",
                (server.name, server.version, server.manifest_json, server.runtime_hash, server.install_dir,
                 time.time()),
            )

    async def uninstall(self, name: str) -> bool:
        """Remove a server from the instance, with everything that only made sense while installed:
        profile memberships, tool toggles, consents and users' stored credentials for it."""
        async with transaction(self._conn):
            cur = await self._conn.execute("UPDATE servers SET active = 0 WHERE name = ? AND active = 1", (name,))
            if cur.rowcount == 0:
                return False
            for table in ("profile_servers", "tool_settings", "consents", "credentials"):
                await self._conn.execute(f"DELETE FROM {table} WHERE server_name = ?", (name,))  # noqa: S608
        return True

    async def active(self) -> list[InstalledServer]:
        async with self._conn.execute(
            "SELECT name, version, manifest_json, runtime_hash, install_dir FROM servers WHERE active = 1"
            " ORDER BY name"
        ) as cur:
            rows = await cur.fetchall()
        return [InstalledServer(r[0], r[1], r[2], r[3], r[4]) for r in rows]


def _profile(row: Any) -> Profile | None:
    return Profile(int(row[0]), int(row[1]), str(row[2]), bool(row[3])) if row is not None else None


class Profiles:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def ensure_default(self, user: User) -> Profile:
        existing = await self.default_for(user.id)
        if existing:
            return existing
        # `<user>-default` may already be someone's named profile: take the first free suffix.
        for attempt in range(100):
            slug = f"{user.name}-default" if attempt == 0 else f"{user.name}-default-{attempt + 1}"
            created = await self.create(user.id, slug, default=True)
            if created is not None:
                return created
        raise StoreError(f"no free slug for the default profile of {user.name!r}")

    async def create(self, user_id: int, slug: str, *, default: bool = False) -> Profile | None:
        """A new profile, or None if the slug is taken. A new default replaces the previous one."""
        try:
            cur = await self._conn.execute(
                "INSERT INTO profiles(user_id, slug, is_default, created_at) VALUES (?, ?, 0, ?)",
                (user_id, slug, time.time()),
            )
        except sqlite3.IntegrityError:
            return None
        profile_id = cur.lastrowid
        assert profile_id is not None
        if default:
            await self.set_default(user_id, profile_id)
        return await self.by_id(profile_id)

    async def set_default(self, user_id: int, profile_id: int) -> None:
        # One statement, so there is never a moment with two defaults or none.
        await self._conn.execute(
            "UPDATE profiles SET is_default = (id = ?) WHERE user_id = ?", (profile_id, user_id)
        )

    async def default_for(self, user_id: int) -> Profile | None:
        async with self._conn.execute(
            "SELECT id, user_id, slug, is_default FROM profiles WHERE user_id = ? AND is_default = 1", (user_id,)
        ) as cur:
            return _profile(await cur.fetchone())

    async def by_slug(self, slug: str) -> Profile | None:
        async with self._conn.execute(
            "SELECT id, user_id, slug, is_default FROM profiles WHERE slug = ?", (slug,)
        ) as cur:
            return _profile(await cur.fetchone())

    async def by_id(self, profile_id: int) -> Profile | None:
        async with self._conn.execute(
            "SELECT id, user_id, slug, is_default FROM profiles WHERE id = ?", (profile_id,)
        ) as cur:
            return _profile(await cur.fetchone())

    async def list_for(self, user_id: int) -> list[Profile]:
        async with self._conn.execute(
            "SELECT id, user_id, slug, is_default FROM profiles WHERE user_id = ? ORDER BY slug", (user_id,)
        ) as cur:
            rows = await cur.fetchall()
        return [p for p in map(_profile, rows) if p is not None]

    async def delete(self, profile_id: int) -> bool:
        cur = await self._conn.execute("DELETE FROM profiles WHERE id = ?", (profile_id,))
        return cur.rowcount == 1

    async def add_server(self, profile_id: int, server_name: str) -> None:
        await self._conn.execute(
            "INSERT INTO profile_servers(profile_id, server_name) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (profile_id, server_name),
        )

    async def remove_server(self, profile_id: int, server_name: str) -> bool:
        cur = await self._conn.execute(
            "DELETE FROM profile_servers WHERE profile_id = ? AND server_name = ?", (profile_id, server_name)
        )
        return cur.rowcount == 1

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
