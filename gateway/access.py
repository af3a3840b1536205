"""Data-plane access policy: consent before a server runs for a user, and per-profile tool toggles.

Consent is checked in two places on purpose:
- `gated` wraps a profile's lease, so a call for a server whose manifest the profile's owner has not
  approved fails at once with a message saying what to approve — without touching the supervisor,
  which would otherwise count the refusal as a crash and back off;
- `check_spawn` is the `BackendFactory` hook that runs right before a sandbox would be spawned: the
  guarantee that no process ever starts without consent, whatever path asked for it.
Both read the database each time, so a grant or a revocation applies to the very next call.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Hashable, Mapping
from typing import Any

from gateway.consent import ConsentRequired
from gateway.mcp.aggregator import Lease
from gateway.store import InstalledServer, Store
from sandbox.supervisor import Unavailable

ToolFilter = Callable[[str, str], bool]


def declared_tools(server: InstalledServer) -> dict[str, bool]:
    """Tool name -> shown by default, as the server's manifest declares them."""
    data = json.loads(server.manifest_json)
    return {
        tool["name"]: bool(tool.get("default", True))
        for tool in data.get("tools") or []
        if isinstance(tool, dict) and isinstance(tool.get("name"), str)
    }


class Access:
    def __init__(self, store: Store, installed: Mapping[str, InstalledServer]) -> None:
        self._store = store
        self._installed = installed  # the gateway's live map: installs and upgrades show up at once

    async def require_consent(self, user_id: int, server: InstalledServer) -> None:
        """Raise `ConsentRequired` unless the user approved exactly this manifest of the server."""
        name, digest = server.name, server.runtime_hash
        if await self._store.cache.get(("consent", user_id, name, digest),
                                       lambda: self._store.consents.has(user_id, name, digest)):
            return
        approved = await self._store.consents.latest(user_id, server.name)
        raise ConsentRequired(
            server.name, server.version, server.runtime_hash, approved_version=approved.version if approved else None
        )

    async def check_spawn(self, server: InstalledServer, profile_key: Hashable) -> None:
        """The `BackendFactory` hook: called with the exact manifest about to be spawned."""
        profile = await self._store.profiles.by_id(profile_key) if isinstance(profile_key, int) else None
        if profile is None:
            raise Unavailable(f"no profile {profile_key!r} to start {server.name} for")
        await self.require_consent(profile.user_id, server)

    def gated(self, user_id: int, lease: Lease) -> Lease:
        """`lease`, refusing (before the supervisor is asked) servers the user has not approved."""

        @contextlib.asynccontextmanager
        async def gated_lease(key: Hashable) -> AsyncIterator[Any]:
            name = key[0] if isinstance(key, tuple) else key
            installed = self._installed.get(str(name))
            if installed is not None:  # a missing server is reported by the lease itself
                await self.require_consent(user_id, installed)
            async with lease(key) as handle:
                yield handle

        return gated_lease

    async def tool_filter(self, profile_id: int) -> ToolFilter:
        """A snapshot of which tools the profile shows: its toggles over the manifests' defaults.

        A snapshot, because the aggregator asks synchronously for every tool of every list; callers
        rebuild the profile's aggregate whenever toggles or installs change.
        """
        overrides = await self._store.tools.for_profile(profile_id)
        defaults = {(name, tool): on for name, server in self._installed.items()
                    for tool, on in declared_tools(server).items()}

        def enabled(server: str, tool: str) -> bool:
            return overrides.get((server, tool), defaults.get((server, tool), True))

        return enabled
