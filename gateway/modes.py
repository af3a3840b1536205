"""Read-only and safe mode: which tools a profile sees, and which calls are only previewed.

A tool counts as read-only only when its server annotates it `readOnlyHint: true`; anything else
may change the world. Read-only mode (`GIG_READ_ONLY`, or per profile) hides the other tools from
lists and refuses calls to them as unknown. Safe mode (`GIG_SAFE_MODE`, or per profile) lists every
tool but answers a call to a mutating tool with a JSON preview of what would have been sent,
without executing it. The gateway-wide flags and a profile's own flags add up: either turns a mode on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiosqlite


def is_read_only(tool: Mapping[str, Any]) -> bool:
    annotations = tool.get("annotations")
    return isinstance(annotations, Mapping) and annotations.get("readOnlyHint") is True


@dataclass(frozen=True, slots=True)
class ModePolicy:
    """The modes in force for one profile's aggregate."""

    read_only: bool = False
    safe: bool = False

    def __or__(self, other: ModePolicy) -> ModePolicy:
        return ModePolicy(self.read_only or other.read_only, self.safe or other.safe)

    def visible(self, tool: Mapping[str, Any]) -> bool:
        """Does `tools/list` show this tool (as the backend describes it)?"""
        return not self.read_only or is_read_only(tool)

    def preview(self, public_name: str, tool: Mapping[str, Any], arguments: Mapping[str, Any] | None
                ) -> dict[str, Any] | None:
        """The CallToolResult that replaces a mutating call in safe mode; None: run the call."""
        if not self.safe or is_read_only(tool):
            return None
        preview = {"safe_mode": True, "executed": False, "tool": public_name, "arguments": dict(arguments or {})}
        return {
            "content": [{"type": "text", "text": json.dumps(preview, sort_keys=True)}],
            "structuredContent": preview,
            "isError": False,
        }


NORMAL = ModePolicy()


async def profile_modes(conn: aiosqlite.Connection, profile_id: int) -> ModePolicy:
    """The profile's own flags (the last migration's columns); a missing profile has none."""
    async with conn.execute("SELECT read_only, safe_mode FROM profiles WHERE id = ?", (profile_id,)) as cur:
        row = await cur.fetchone()
    return ModePolicy(bool(row[0]), bool(row[1])) if row else NORMAL


async def set_profile_modes(conn: aiosqlite.Connection, profile_id: int, modes: ModePolicy) -> None:
    await conn.execute("UPDATE profiles SET read_only = ?, safe_mode = ? WHERE id = ?",
                       (int(modes.read_only), int(modes.safe), profile_id))
