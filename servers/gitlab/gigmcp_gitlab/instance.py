"""GitLab version and edition (CE/EE) detection, done lazily once and degrading to "unknown"."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from .client import GitLabClient
from .errors import GitLabAPIError, ToolError, TransportError


@dataclass(frozen=True)
class InstanceInfo:
    version: str = ""
    edition: str = "unknown"
    revision: str = ""
    raw: dict[str, Any] | None = None

    @property
    def version_tuple(self) -> tuple[int, int] | None:
        return parse_version(self.version)


def parse_version(text: str) -> tuple[int, int] | None:
    m = re.match(r"^(\d+)\.(\d+)", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


class Instance:
    def __init__(self, client: GitLabClient) -> None:
        self._client = client
        self._info: InstanceInfo | None = None
        self._lock = asyncio.Lock()

    async def info(self, refresh: bool = False) -> InstanceInfo:
        async with self._lock:
            if self._info is None or refresh:
                self._info = await self._detect()
            return self._info

    async def _detect(self) -> InstanceInfo:
        try:
            data = (await self._client.request("GET", "/version")).data or {}
        except (GitLabAPIError, TransportError):
            return InstanceInfo()
        version = str(data.get("version", ""))
        edition = "ee" if version.endswith("-ee") else "unknown"
        if isinstance(data.get("enterprise"), bool):
            edition = "ee" if data["enterprise"] else "ce"
        if edition == "unknown":
            try:
                meta = (await self._client.request("GET", "/metadata")).data or {}
                if isinstance(meta.get("enterprise"), bool):
                    edition = "ee" if meta["enterprise"] else "ce"
                    data = {**data, **{k: v for k, v in meta.items() if k not in data}}
            except (GitLabAPIError, TransportError):
                pass
        if edition == "unknown" and parse_version(version) is not None and not version.endswith("-ee"):
            edition = "ce"
        return InstanceInfo(version=version, edition=edition, revision=str(data.get("revision", "")), raw=data)

    async def check(self, name: str, min_version: str, tier: str) -> None:
        """Refuse early when the instance is known not to support the action; unknown passes."""
        if not min_version and not tier:
            return
        info = await self.info()
        need = parse_version(min_version)
        have = info.version_tuple
        if need and have and have < need:
            raise ToolError(f"`{name}` needs GitLab {min_version} or newer; this instance runs {info.version}.")
        if tier == "premium" and info.edition == "ce":
            raise ToolError(
                f"`{name}` needs GitLab Premium (EE); this instance is the Community Edition.",
                hint="Use a CE alternative where one exists (e.g. mr_approvals).",
            )
