"""Plain-data description of one sandbox: what runs, what it sees, as whom, and within which limits.

A `SandboxSpec` is built by the gateway from a manifest and evaluated by pure functions
(`sandbox.bwrap.build_argv`); nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Bind:
    """A host path made visible inside the sandbox. Read-only unless `writable`."""

    source: str
    target: str
    writable: bool = False
    optional: bool = False  # --ro-bind-try / --bind-try: skip when the source is missing


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits. cgroup limits where the host offers them, rlimits always."""

    memory_mb: int = 512
    pids: int = 128
    cpu_percent: int = 100  # of one core; 100 = one full core
    nofile: int = 1024
    fsize_mb: int = 1024
    core_dumps: bool = False


@dataclass(frozen=True, slots=True)
class NetworkPlan:
    """The sandbox side of its veth: set by the network manager, applied before the sandbox is released."""

    sandbox_ip: str
    host_ip: str
    prefixlen: int = 30
    proxy_url: str = ""  # http://host_ip:port, exported as HTTP(S)_PROXY inside


_EMPTY: Mapping[str, str] = MappingProxyType({})
_EMPTY_FILES: Mapping[str, bytes] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """Everything bubblewrap needs to start one server.

    `argv` is the server command as seen inside the sandbox; the bootstrap program runs first and
    execs it. `files` are small generated files (passwd, group, the proxy CA) mounted read-only
    from memory at the given absolute paths.
    """

    name: str
    argv: tuple[str, ...]
    uid: int
    gid: int
    binds: tuple[Bind, ...] = ()
    env: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    files: Mapping[str, bytes] = field(default_factory=lambda: _EMPTY_FILES)
    cwd: str = "/app"
    hostname: str = "sandbox"
    limits: Limits = field(default_factory=Limits)
    seccomp: bool = True
    network: bool = False  # True: the caller sets up a veth (before_release) instead of leaving only lo
