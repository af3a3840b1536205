"""Live backends: a sandboxed server process plus its MCP session, and the factory that starts one.

The factory turns an installed manifest into a `SandboxSpec` (what the sandbox sees and within
which limits), spawns it, and completes the MCP handshake before anyone may call it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from egress import CredentialInjection
from gateway.credentials import Credentials
from gateway.installer import InstalledLayout
from gateway.manifest import CredentialEntry, Manifest, parse_manifest
from gateway.mcp.backend import JSON, BackendSession, NotificationFn
from gateway.sandbox_net import CA_PATH, SandboxNetworking, policy_for, sandbox_env
from gateway.store import InstalledServer
from sandbox.process import SandboxProcess, spawn
from sandbox.spec import Bind, Limits, NetworkPlan, SandboxSpec

log = logging.getLogger(__name__)

NODE_RUNTIME_MOUNT = "/opt/gigmcp-node"
SANDBOX_ENV = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}


def exit_reason(process: SandboxProcess) -> str:
    """A sentence for the supervisor's `last_error`: how the server ended, and why if we know."""
    code = process.returncode
    stats = process.cgroup_stats()
    if stats is not None and stats.oom_kills:
        return "killed: out of memory (the sandbox's memory limit)"
    if code is None:
        return "ended"
    if code > 128:  # bwrap reports a server killed by signal N as 128+N
        return f"killed by signal {code - 128}"
    if code < 0:
        return f"killed by signal {-code}"
    tail = _stderr_tail(process)
    return f"exited with status {code}" + (f": {tail}" if tail and code else "")


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
    on_exit: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    network: dict[str, str] = field(default_factory=dict)
    runtime_hash: str = ""  # of the manifest this process runs: a staged upgrade tells versions apart by it
    # Calls running on this process (counted by the gateway's lease), and how long a retiring process
    # waits for them before it closes: a switch to a new version never drops an in-flight call.
    inflight: int = 0
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    drain_timeout_s: float = 0.0
    _watch: asyncio.Task[None] | None = None

    def enter(self) -> None:
        self.inflight += 1
        self.idle.clear()

    def leave(self) -> None:
        self.inflight -= 1
        if self.inflight == 0:
            self.idle.set()

    def watch(self) -> None:
        self._watch = asyncio.create_task(self._watch_loop(), name=f"live-{self.server}")

    async def _watch_loop(self) -> None:
        proc_exit = asyncio.create_task(self.process.wait())
        closed = asyncio.create_task(self.session.closed.wait())
        await asyncio.wait({proc_exit, closed}, return_when=asyncio.FIRST_COMPLETED)
        if not proc_exit.done():
            # stdout usually closes a moment before the process is reaped: wait for the real cause.
            await asyncio.wait({proc_exit}, timeout=1.0)
        if proc_exit.done():
            self.exit_reason = exit_reason(self.process)
        else:
            self.exit_reason = self.session.close_reason or "session closed"
        for task in (proc_exit, closed):
            task.cancel()
        await self._run_exit_hooks()
        self.done.set()

    async def _run_exit_hooks(self) -> None:
        hooks, self.on_exit = self.on_exit, []
        for hook in hooks:
            with contextlib.suppress(Exception):
                await hook()

    async def aclose(self) -> None:
        if self.drain_timeout_s and self.inflight:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.idle.wait(), self.drain_timeout_s)
        await self.session.aclose()
        # Closing stdin asks a well-behaved stdio server to exit; terminate() is the backstop.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.process.wait(), 1.0)
        await self.process.terminate(grace=1.0)
        if self._watch:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._watch, 1.0)
        await self._run_exit_hooks()
        self.done.set()

    @property
    def alive(self) -> bool:
        """False as soon as the server's stdout closed or the process ended, before the exit is reaped."""
        return not self.session.closed.is_set() and self.process.returncode is None

    def describe(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "network": self.network,
            "pid": self.process.pid,
            "sandbox_pid": self.process.child_pid,
            "memory_bytes": self.process.memory_bytes(),
        }


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    uid: int
    gid: int
    spawn_timeout_s: float
    node_runtime_dir: str | None = None  # undici + preload, mounted so Node's fetch() uses the proxy
    profiles_dir: str | None = None  # per-(profile, server) writable data dirs for manifests with `data_dir`


def prepare_data_dir(settings: SandboxSettings, profile_key: Hashable, server: str) -> str:
    """`<profiles_dir>/<profile>/<server>/`, owned by the sandbox uid: the one writable path a server gets."""
    assert settings.profiles_dir is not None
    parent = Path(settings.profiles_dir) / str(profile_key)
    path = parent / server
    path.mkdir(parents=True, exist_ok=True)
    # The sandbox uid may traverse the parents but list nothing: other profiles' names stay hidden.
    for directory in (parent.parent, parent):
        directory.chmod(0o711)
    os.chown(path, settings.uid, settings.gid)
    path.chmod(0o700)
    return str(path)


def build_spec(manifest: Manifest, layout: InstalledLayout, settings: SandboxSettings, name: str,
               plan: NetworkPlan | None = None, ca_pem: bytes = b"",
               extra_env: dict[str, str] | None = None, data_dir: str | None = None) -> SandboxSpec:
    argv = layout.resolve_command(manifest)
    env = {**SANDBOX_ENV, **manifest.env, **(extra_env or {})}
    files: dict[str, bytes] = {}
    root = str(layout.root)
    binds = [Bind(root, root)]
    if manifest.data_dir and data_dir:
        binds.append(Bind(data_dir, manifest.data_dir, writable=True))
    if plan is not None:
        env.update(sandbox_env(plan))
        files[CA_PATH] = ca_pem
        if settings.node_runtime_dir:
            binds.append(Bind(settings.node_runtime_dir, NODE_RUNTIME_MOUNT))
            env["NODE_OPTIONS"] = f"--require={NODE_RUNTIME_MOUNT}/proxy-preload.cjs"
    return SandboxSpec(
        name=name,
        argv=argv,
        uid=settings.uid,
        gid=settings.gid,
        binds=tuple(binds),
        env=env,
        cwd=root,
        hostname=manifest.name,
        files=files,
        network=plan is not None,
        limits=Limits(
            memory_mb=manifest.limits.memory_mb,
            pids=manifest.limits.pids,
            cpu_percent=manifest.limits.cpu_percent,
        ),
    )


ServerLookup = Callable[[str], InstalledServer | None]
NotifyHook = Callable[[str, Hashable, str, JSON | None], Awaitable[None]]
# Raises (e.g. `gateway.consent.ConsentRequired`) when the profile's owner may not run this manifest.
ConsentCheck = Callable[[InstalledServer, Hashable], Awaitable[None]]
# The version a profile runs while a staged upgrade waits for its owner's consent (default: the current one).
VersionSelect = Callable[[InstalledServer, Hashable], Awaitable[InstalledServer]]
# (profile id, OAuth vendor) -> a fresh access token of the profile owner's connected account, or None.
OAuthTokenSource = Callable[[int, str], Awaitable[str | None]]


class BackendFactory:
    """Starts a `LiveBackend` for a (server, profile) key."""

    def __init__(self, lookup: ServerLookup, settings: SandboxSettings, on_notify: NotifyHook,
                 networking: SandboxNetworking | None = None) -> None:
        self._lookup = lookup
        self._settings = settings
        self._on_notify = on_notify
        self._networking = networking
        self.consent_check: ConsentCheck | None = None
        self.credentials: Credentials | None = None
        self.oauth_token: OAuthTokenSource | None = None
        self.select_version: VersionSelect | None = None
        # sandbox id -> (server, profile, credential id -> entry): what the proxy's resolver needs.
        self._sandboxes: dict[str, tuple[str, Hashable, dict[str, CredentialEntry]]] = {}
        # Starts in turn beyond a few at once: 100 cold starts together on 2 cores starved each other
        # past the handshake timeout (seen in the soak); queued, each start gets the CPU it needs.
        self._starting = asyncio.Semaphore(max(2, 2 * (os.cpu_count() or 1)))

    async def resolve_secret(self, sandbox_id: str, credential_id: str) -> str | None:
        """The egress proxy asks this per request: the real secret behind a sandbox's placeholder."""
        entry = self._sandboxes.get(sandbox_id)
        if entry is None or self.credentials is None:
            return None
        server, profile_key, entries = entry
        if not isinstance(profile_key, int) or credential_id not in entries:
            return None
        cred = entries[credential_id]
        if cred.type == "oauth2":
            # The owner's connected account, refreshed when due. Without one, a token the owner stored
            # for this credential (a GitLab personal access token, say) serves instead; neither -> 503.
            token = await self.oauth_token(profile_key, cred.vendor) if self.oauth_token else None
            if token is not None:
                return token
        secret = await self.credentials.secret_for_sandbox(server, profile_key, credential_id)
        if secret is not None and cred.type == "basic":
            # Stored as "user:password"; the proxy sends it as RFC 7617 credentials.
            secret = base64.b64encode(secret.encode()).decode()
        return secret

    def _injections(self, manifest: Manifest, key: tuple[str, Hashable]) -> tuple[
            dict[str, str], tuple[CredentialInjection, ...]]:
        env: dict[str, str] = {}
        injections = []
        for cred in manifest.credentials:
            if cred.type == "none" or self.credentials is None:
                continue
            placeholder = self.credentials.placeholder_for(key, cred.id)
            if cred.env:
                env[cred.env] = placeholder
            header = cred.header or ("Authorization" if cred.type == "basic" else None)
            fmt = cred.format if cred.type != "basic" or cred.format != "{secret}" else "Basic {secret}"
            injections.append(CredentialInjection(cred.id, cred.hosts, placeholder, header or None, fmt,
                                                  cred.query or None))
        return env, tuple(injections)

    async def __call__(self, key: Hashable) -> LiveBackend:
        async with self._starting:
            return await self._start(key)

    async def _start(self, key: Hashable) -> LiveBackend:
        assert isinstance(key, tuple)
        server_name, profile_key = key
        installed = self._lookup(server_name)
        if installed is None:
            raise RuntimeError(f"server {server_name} is not installed")
        if self.select_version is not None:
            installed = await self.select_version(installed, profile_key)
        if self.consent_check is not None:
            # Before anything is spawned: no consent, no process (the message says what to approve).
            await self.consent_check(installed, profile_key)
        manifest = parse_manifest(json.loads(installed.manifest_json))
        layout = InstalledLayout(Path(installed.install_dir))
        sandbox_id = f"{server_name}-{profile_key}"
        networking = self._networking
        cred_env, injections = self._injections(manifest, (server_name, profile_key))
        self._sandboxes[sandbox_id] = (server_name, profile_key, {c.id: c for c in manifest.credentials})
        plan = networking.reserve() if networking else None
        data_dir = (prepare_data_dir(self._settings, profile_key, server_name)
                    if manifest.data_dir and self._settings.profiles_dir else None)
        spec = build_spec(manifest, layout, self._settings, sandbox_id, plan,
                          networking.ca_pem if networking else b"", extra_env=cred_env, data_dir=data_dir)

        async def attach(child_pid: int) -> None:
            assert networking is not None and plan is not None
            policy = policy_for(manifest, sandbox_id=sandbox_id, profile=str(profile_key), user=str(profile_key),
                                credentials=injections, settings=networking.settings)
            await networking.attach(plan, child_pid, policy)

        try:
            process = await spawn(spec, before_release=attach if plan else None)
        except BaseException:
            if networking and plan:
                await networking.detach(plan)
            raise
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
            if networking and plan:
                await networking.detach(plan)
            if isinstance(exc, Exception):
                detail = _stderr_tail(process)
                raise RuntimeError(
                    f"{server_name} did not complete the MCP handshake: {exc}"
                    + (f" (stderr: {detail})" if detail else "")
                ) from None
            raise
        live = LiveBackend(server_name, process, session, runtime_hash=installed.runtime_hash)
        if networking and plan:
            live.network = {"sandbox_ip": plan.sandbox_ip, "host_ip": plan.host_ip}
            live.on_exit.append(lambda: networking.detach(plan))

        async def forget() -> None:
            self._sandboxes.pop(sandbox_id, None)
            if self.credentials is not None:
                self.credentials.forget_sandbox((server_name, profile_key))

        live.on_exit.append(forget)
        live.watch()
        return live
