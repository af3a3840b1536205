"""Per-profile tool toggles: a user's choice to show or hide one tool of one server in one profile.

A toggle overrides the manifest's `default` for that tool; tools without a toggle follow the manifest.
"""

from __future__ import annotations

import time

import aiosqlite


class ToolSettings:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def set(self, profile_id: int, server: str, tool: str, enabled: bool) -> None:
        await self._conn.execute(
            "INSERT INTO tool_settings(profile_id, server_name, tool, enabled, updated_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(profile_id, server_name, tool) DO UPDATE SET enabled = excluded.enabled,"
            " updated_at = excluded.updated_at",
            (profile_id, server, tool, int(enabled), time.time()),
        )

    async def clear(self, profile_id: int, server: str, tool: str) -> bool:
        cur = await self._conn.execute(
            "DELETE FROM tool_settings WHERE profile_id = ? AND server_name = ? AND tool = ?",
            (profile_id, server, tool),
        )
        return cur.rowcount == 1

    async def clear_server(self, profile_id: int, server: str) -> None:
        await self._conn.execute(
            "DELETE FROM tool_settings WHERE profile_id = ? AND server_name = ?", (profile_id, server)
        )

    async def for_profile(self, profile_id: int) -> dict[tuple[str, str], bool]:
        """(server, tool) -> enabled, for every toggle of the profile."""
        async with self._conn.execute(
            "SELECT server_name, tool, enabled FROM tool_settings WHERE profile_id = ?", (profile_id,)
        ) as cur:
            rows = await cur.fetchall()
        return {(str(r[0]), str(r[1])): bool(r[2]) for r in rows}
