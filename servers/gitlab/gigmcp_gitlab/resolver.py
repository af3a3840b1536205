"""Resolve project and group paths (and URLs) to numeric ids once, then cache them.

Numeric ids keep later request paths free of `%2F`, which some reverse and egress proxies decode or
reject. If the encoded-path lookup itself is mangled (404), a search by name is tried as a fallback.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .client import GitLabClient
from .errors import GitLabAPIError, ToolError
from .urls import encode_segment


class Resolver:
    def __init__(self, client: GitLabClient) -> None:
        self._client = client
        self._projects: dict[str, int] = {}
        self._groups: dict[str, int] = {}
        self._project_data: dict[int, dict[str, Any]] = {}
        self._lock = asyncio.Lock()

    async def project(self, ref: int | str) -> int:
        if isinstance(ref, int):
            return ref
        key = ref.strip("/").lower()
        if key in self._projects:
            return self._projects[key]
        async with self._lock:
            if key not in self._projects:
                data = await self._lookup(
                    "projects",
                    ref,
                    "path_with_namespace",
                    [("search_namespaces", "true"), ("simple", "true")],
                )
                pid = int(data["id"])
                self._projects[key] = pid
                self._project_data[pid] = data
        return self._projects[key]

    async def group(self, ref: int | str) -> int:
        if isinstance(ref, int):
            return ref
        key = ref.strip("/").lower()
        if key in self._groups:
            return self._groups[key]
        async with self._lock:
            if key not in self._groups:
                data = await self._lookup(
                    "groups", ref, "full_path", [("all_available", "true")], [("with_projects", "false")]
                )
                self._groups[key] = int(data["id"])
        return self._groups[key]

    async def default_branch(self, pid: int) -> str:
        data = self._project_data.get(pid)
        if data is None or "default_branch" not in data:
            data = (await self._client.request("GET", f"/projects/{pid}")).data or {}
            self._project_data[pid] = data
        branch = data.get("default_branch")
        if not branch:
            raise ToolError(f"Project {pid} has no default branch (empty repository?); pass `ref` explicitly.")
        return str(branch)

    async def _lookup(
        self,
        kind: str,
        path: str,
        path_field: str,
        search_extra: list[tuple[str, str]],
        get_extra: list[tuple[str, str]] | None = None,
    ) -> dict[str, Any]:
        try:
            resp = await self._client.request("GET", f"/{kind}/{encode_segment(path.strip('/'))}", params=get_extra)
            if isinstance(resp.data, dict) and "id" in resp.data:
                return resp.data
        except GitLabAPIError as exc:
            if exc.status != 404:
                raise
        name = path.strip("/").rsplit("/", 1)[-1]
        resp = await self._client.request(
            "GET", f"/{kind}", params=[("search", name), ("per_page", "100"), *search_extra]
        )
        for item in resp.data or []:
            if isinstance(item, dict) and str(item.get(path_field, "")).lower() == path.strip("/").lower():
                return item
        singular = kind[:-1]
        raise ToolError(
            f"{singular.capitalize()} `{path}` was not found or is not visible to this token.",
            hint=f"Use the full path as shown in the URL (e.g. group/subgroup/{singular}) or the numeric id; "
            f'list candidates with {singular}_list search="{name}".',
        )
