"""Live backends: a sandboxed server process plus its MCP session, and the factory that starts one.

The factory turns an installed manifest into a `SandboxSpec` (what the sandbox sees and within
which limits), spawns it, and completes the MCP handshake before anyone may call it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.installer import InstalledLayout
from gateway.manifest import Manifest, parse_manifest
from gateway.mcp.backend import JSON, BackendSession, NotificationFn
from gateway.store import InstalledServer
from sandbox.process import SandboxProcess, spawn
from sandbox.spec import Bind, Limits, SandboxSpec

log = logging.getLogger(__name__)

SANDBOX_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}


def _stderr_tail(process: SandboxProcess) -> str:
    lines = process.last_stderr().decode(errors="replace").strip().splitlines()
    return lines[-1][:200] if lines else ""


@dataclass(slots=True)
class LiveBackend:
    """One running sandboxed server: what the supervisor manages and the aggregator calls."""

    server: str
    process: SandboxProcess
    session: BackendSession
    cache: dict[str, list[JSON]] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    exit_reason: str = ""
    started: float = field(default_factory=time.monotonic)
    _watch: asyncio.Task[None] | None = None

    def watch(self) -> None:
        self._watch = asyncio.create_task(self._watch_loop(), name=f"live-{self.server}")

    async def _watch_loop(self) -> None:
        proc_exit = asyncio.create_task(self.process.wait())
        closed = asyncio.create_task(self.session.closed.wait())
        await asyncio.wait({proc_exit, closed}, return_when=asyncio.FIRST_COMPLETED)
        if proc_exit.done():
            code = self.process.returncode
            self.exit_reason = f"exited with status {code}" if code is not None and code >= 0 else (
                f"killed by signal {-(code or 0)}"
            )
            tail = _stderr_tail(self.process)
            if tail and code:
                self.exit_reason += f": {tail}"
        else:
            self.exit_reason = self.session.close_reason or "session closed"
        for task in (proc_exit, closed):
            task.cancel()
        self.done.set()

    async def aclose(self) -> None:
        await self.session.aclose()
        # Closing stdin asks a well-behaved stdio server to exit; terminate() is the backstop.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.process.wait(), 1.0)
        await self.process.terminate(grace=1.0)
        if self._watch:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._watch, 1.0)
        self.done.set()

    def describe(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "pid": self.process.pid,
            "sandbox_pid": self.process.child_pid,
            "memory_bytes": self.process.memory_bytes(),
        }


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    uid: int
    gid: int
    spawn_timeout_s: float


def build_spec(manifest: Manifest, layout: InstalledLayout, settings: SandboxSettings, name: str) -> SandboxSpec:
    argv = layout.resolve_command(manifest)
    env = {**SANDBOX_ENV, **manifest.env}
    root = str(layout.root)
    return SandboxSpec(
        name=name,
        argv=argv,
        uid=settings.uid,
        gid=settings.gid,
        binds=(Bind(root, root),),
        env=env,
        cwd=root,
        hostname=manifest.name,
        limits=Limits(
            memory_mb=manifest.limits.memory_mb,
            pids=manifest.limits.pids,
            cpu_percent=manifest.limits.cpu_percent,
        ),
    )


ServerLookup = Callable[[str], InstalledServer | None]
NotifyHook = Callable[[str, Hashable, str, JSON | None], Awaitable[None]]


class BackendFactory:
    """Starts a `LiveBackend` for a (server, profile) key."""

    def __init__(self, lookup: ServerLookup, settings: SandboxSettings, on_notify: NotifyHook) -> None:
        self._lookup = lookup
        self._settings = settings
        self._on_notify = on_notify

    async def __call__(self, key: Hashable) -> LiveBackend:
        assert isinstance(key, tuple)
        server_name, profile_key = key
        installed = self._lookup(server_name)
        if installed is None:
            raise RuntimeError(f"server {server_name} is not installed")
        manifest = parse_manifest(json.loads(installed.manifest_json))
        layout = InstalledLayout(Path(installed.install_dir))
        spec = build_spec(manifest, layout, self._settings, f"{server_name}-{profile_key}")
        process = await spawn(spec)
        session: BackendSession | None = None
        try:
            assert process.stdout is not None and process.stdin is not None

            async def on_notification(method: str, params: JSON | None) -> None:
                await self._on_notify(server_name, profile_key, method, params)

            notify: NotificationFn = on_notification
            session = BackendSession(server_name, process.stdout, process.stdin, on_notification=notify)
            await session.start(timeout=self._settings.spawn_timeout_s)
        except BaseException as exc:
            if session is not None:
                await session.aclose()
            await process.terminate(grace=0.5)
            if isinstance(exc, Exception):
                detail = _stderr_tail(process)
                raise RuntimeError(
                    f"{server_name} did not complete the MCP handshake: {exc}"
                    + (f" (stderr: {detail})" if detail else "")
                ) from None
            raise
        live = LiveBackend(server_name, process, session)
        live.watch()
        return live
