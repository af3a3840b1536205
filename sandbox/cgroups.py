"""Per-sandbox cgroups: memory, pids and CPU limits, statistics, and removal.

cgroup v2 is used when the process sits in a subtree whose `cgroup.controllers` offers memory, pids and
cpu (a systemd service with `Delegate=yes`, a container with its own cgroup namespace). Otherwise the
v1 hierarchies are used (hybrid hosts such as the development VM: v2 mounted without controllers).
Groups live under `gigmcp/<sandbox>-<random>`, below this process's own cgroup of each hierarchy so
that they stay inside whatever the host delegated or limited. Without any usable hierarchy a single
warning is logged and sandboxes rely on rlimits alone.

All methods do blocking file I/O on cgroupfs (attach takes milliseconds on v1): call them from a thread
when on the event loop.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import secrets
import signal
import threading
import time
from dataclasses import dataclass
from typing import Literal

from sandbox import limits as limits_mod
from sandbox.spec import Limits

log = logging.getLogger(__name__)

GROUP_DIR = "gigmcp"
STALE_AFTER_S = 60.0
_V2_CONTROLLERS = ("memory", "pids", "cpu")
_V1_CONTROLLERS = ("memory", "pids", "cpu")
# v2 forbids processes in a cgroup that distributes controllers to children (except at the root):
# when our own cgroup holds processes, they move to this leaf first.
_V2_LEAF = "gigmcp-supervisor"
_NAME_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True, slots=True)
class CgroupStats:
    """A snapshot of one sandbox's counters; None where the host does not provide the value."""

    memory_bytes: int | None = None
    memory_peak_bytes: int | None = None
    pids: int | None = None
    oom_kills: int = 0
    limit_hits: int = 0  # times memory hit the limit (v1 memory[.memsw].failcnt, v2 memory.events max)
    cpu_throttled: int | None = None  # CFS periods in which the group was throttled


@dataclass(frozen=True, slots=True)
class Layout:
    """Where sandbox groups are created: one parent directory per controller (v1) or one (v2)."""

    version: Literal["v1", "v2"]
    parents: dict[str, str]  # controller -> parent directory ("gigmcp" under our own cgroup)

    @property
    def limits_pids(self) -> bool:
        return self.version == "v2" or "pids" in self.parents


def _read(path: str) -> str:
    with open(path, encoding="ascii") as fh:
        return fh.read()


def _write(path: str, value: str) -> None:
    # O_CREAT is harmless on cgroupfs (the file exists) and lets tests use a plain directory tree.
    with open(path, "w", encoding="ascii") as fh:
        fh.write(value)


def _read_int(path: str) -> int | None:
    try:
        text = _read(path).strip()
    except OSError:
        return None
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _read_keyed(path: str) -> dict[str, int]:
    """`key value` lines (memory.events, memory.oom_control, cpu.stat)."""
    values: dict[str, int] = {}
    try:
        text = _read(path)
    except OSError:
        return values
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            values[parts[0]] = int(parts[1])
    return values


def _read_pids(directory: str) -> list[int]:
    try:
        return [int(line) for line in _read(os.path.join(directory, "cgroup.procs")).split()]
    except (OSError, ValueError):
        return []


def _parse_mounts(text: str) -> tuple[list[str], dict[str, str]]:
    """cgroup2 mount points, and v1 controller -> mount point."""
    v2: list[str] = []
    v1: dict[str, str] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        mountpoint = fields[1].replace("\\040", " ")
        if fields[2] == "cgroup2":
            v2.append(mountpoint)
        elif fields[2] == "cgroup":
            for option in fields[3].split(","):
                v1.setdefault(option, mountpoint)
    return v2, v1


def _parse_own(text: str) -> tuple[str | None, dict[str, str]]:
    """Our own v2 path (the `0::` line) and v1 controller -> path, from /proc/self/cgroup."""
    v2_path: str | None = None
    v1: dict[str, str] = {}
    for line in text.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            v2_path = path
        else:
            for controller in controllers.split(","):
                v1[controller] = path
    return v2_path, v1


def _join(mountpoint: str, cgroup_path: str) -> str:
    # A path like "/../x" appears when we are outside our own cgroup namespace root: not usable.
    if ".." in cgroup_path.split("/"):
        raise OSError(errno.EINVAL, f"cgroup path outside the namespace: {cgroup_path}")
    return os.path.join(mountpoint, cgroup_path.lstrip("/"))


def _enable_v2_controllers(directory: str) -> None:
    try:
        enabled = _read(os.path.join(directory, "cgroup.subtree_control")).split()
    except FileNotFoundError:  # only in test trees: cgroupfs creates it with every directory
        enabled = []
    wanted = [c for c in _V2_CONTROLLERS if c not in enabled]
    if wanted:
        _write(os.path.join(directory, "cgroup.subtree_control"), " ".join(f"+{c}" for c in wanted))


def _move_v2_processes_to_leaf(own: str) -> None:
    leaf = os.path.join(own, _V2_LEAF)
    os.makedirs(leaf, exist_ok=True)
    for _ in range(10):  # processes may fork while we move them
        pids = _read_pids(own)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, OSError):
                _write(os.path.join(leaf, "cgroup.procs"), str(pid))
    raise OSError(errno.EBUSY, f"processes keep appearing in {own}")


def _detect_v2(mounts: list[str], own_path: str | None) -> Layout | None:
    if own_path is None:
        return None
    for mountpoint in mounts:
        try:
            own = _join(mountpoint, own_path)
            available = _read(os.path.join(own, "cgroup.controllers")).split()
        except OSError:
            continue
        if not all(c in available for c in _V2_CONTROLLERS):
            continue
        try:
            try:
                _enable_v2_controllers(own)
            except OSError as exc:
                if exc.errno != errno.EBUSY:
                    raise
                log.info("moving the gateway's processes into %s to delegate cgroup controllers", _V2_LEAF)
                _move_v2_processes_to_leaf(own)
                _enable_v2_controllers(own)
            parent = os.path.join(own, GROUP_DIR)
            os.makedirs(parent, exist_ok=True)
            _enable_v2_controllers(parent)
        except OSError as exc:
            log.warning("cgroup v2 at %s offers %s but cannot be delegated: %s", own, available, exc)
            continue
        return Layout("v2", {"unified": parent})
    return None


def _detect_v1(mounts: dict[str, str], own: dict[str, str]) -> Layout | None:
    parents: dict[str, str] = {}
    for controller in _V1_CONTROLLERS:
        if controller not in mounts:
            continue
        try:
            parent = os.path.join(_join(mounts[controller], own.get(controller, "/")), GROUP_DIR)
            os.makedirs(parent, exist_ok=True)
        except OSError as exc:
            log.warning("cgroup v1 %s controller unusable: %s", controller, exc)
            continue
        parents[controller] = parent
    return Layout("v1", parents) if parents else None


class Cgroup:
    """One sandbox's group(s). Create with `CgroupManager.create`."""

    def __init__(self, version: Literal["v1", "v2"], dirs: dict[str, str]) -> None:
        self.version: Literal["v1", "v2"] = version
        self.dirs = dirs  # controller ("unified" for v2) -> directory
        self.removed = False

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(self.dirs.values())

    def _dir(self, controller: str) -> str | None:
        return self.dirs.get("unified") or self.dirs.get(controller)

    def attach(self, pid: int) -> None:
        """Move `pid` into every hierarchy; its future children are born inside."""
        for directory in self.dirs.values():
            _write(os.path.join(directory, "cgroup.procs"), str(pid))

    def pids(self) -> list[int]:
        """Processes in the group (from the pids hierarchy on v1, which sees every task)."""
        directory = self._dir("pids") or next(iter(self.dirs.values()))
        return _read_pids(directory)

    def stats(self) -> CgroupStats:
        mem = self._dir("memory")
        pids_dir = self._dir("pids")
        cpu = self._dir("cpu")
        pids = _read_int(os.path.join(pids_dir, "pids.current")) if pids_dir else None
        throttled = _read_keyed(os.path.join(cpu, "cpu.stat")).get("nr_throttled") if cpu else None
        if mem is None:
            return CgroupStats(pids=pids, cpu_throttled=throttled)
        if self.version == "v2":
            events = _read_keyed(os.path.join(mem, "memory.events"))
            return CgroupStats(
                memory_bytes=_read_int(os.path.join(mem, "memory.current")),
                memory_peak_bytes=_read_int(os.path.join(mem, "memory.peak")),
                pids=pids,
                oom_kills=events.get("oom_kill", 0),
                limit_hits=events.get("max", 0),
                cpu_throttled=throttled,
            )
        oom = _read_keyed(os.path.join(mem, "memory.oom_control"))
        return CgroupStats(
            memory_bytes=_read_int(os.path.join(mem, "memory.usage_in_bytes")),
            memory_peak_bytes=_read_int(os.path.join(mem, "memory.max_usage_in_bytes")),
            pids=pids,
            oom_kills=oom.get("oom_kill", 0),
            # with memsw set equal to the limit, the memory+swap counter is the one that fails
            limit_hits=max(
                _read_int(os.path.join(mem, "memory.failcnt")) or 0,
                _read_int(os.path.join(mem, "memory.memsw.failcnt")) or 0,
            ),
            cpu_throttled=throttled,
        )

    def kill_all(self) -> None:
        """SIGKILL every process still in the group."""
        unified = self.dirs.get("unified")
        if unified is not None and os.path.exists(os.path.join(unified, "cgroup.kill")):
            with contextlib.suppress(OSError):
                _write(os.path.join(unified, "cgroup.kill"), "1")
                return
        for directory in self.dirs.values():
            for pid in _read_pids(directory):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def remove(self, timeout: float = 2.0) -> None:
        """Kill what is left, then remove the directories. Idempotent; raises OSError on timeout."""
        if self.removed:
            return
        deadline = time.monotonic() + timeout
        pending = list(self.dirs.values())
        while pending:
            self.kill_all()
            for directory in list(pending):
                try:
                    os.rmdir(directory)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise
                    continue
                pending.remove(directory)
            if pending:
                # killed processes leave the group only once the kernel has reaped their threads
                time.sleep(0.005)
        self.removed = True


class CgroupManager:
    """Detects the usable hierarchy once (lazily) and creates sandbox groups in it."""

    def __init__(self, mounts_file: str = "/proc/self/mounts", cgroup_file: str = "/proc/self/cgroup") -> None:
        self._mounts_file = mounts_file
        self._cgroup_file = cgroup_file
        self._layout: Layout | None = None
        self._detected = False
        self._lock = threading.Lock()  # concurrent first spawns must not see a half-done detection

    @property
    def detected(self) -> bool:
        """Whether `layout` is known (reading it then does no I/O)."""
        return self._detected

    @property
    def layout(self) -> Layout | None:
        """The detected layout, or None when no cgroup is usable (a warning is logged once)."""
        with self._lock:
            if not self._detected:
                self._layout = self._detect()
                self._detected = True
                self._report()
                stale = self.sweep()
                if stale:
                    log.info("removed %d empty sandbox cgroup directories left by an earlier gateway", stale)
        return self._layout

    def _report(self) -> None:
        if self._layout is None:
            log.warning(
                "no usable cgroup hierarchy (need root and memory/pids/cpu controllers): "
                "sandboxes are limited by rlimits only, without memory or CPU caps"
            )
        else:
            log.info("sandbox cgroups: %s under %s", self._layout.version, self._layout.parents)

    def _detect(self) -> Layout | None:
        try:
            v2_mounts, v1_mounts = _parse_mounts(_read(self._mounts_file))
            v2_own, v1_own = _parse_own(_read(self._cgroup_file))
        except OSError as exc:
            log.warning("cannot read cgroup information: %s", exc)
            return None
        return _detect_v2(v2_mounts, v2_own) or _detect_v1(v1_mounts, v1_own)

    def create(self, name: str, limits: Limits) -> Cgroup | None:
        """A new group with `limits` applied, or None without a usable hierarchy.

        Raises OSError when a hierarchy exists but the group cannot be set up: a sandbox must not
        silently run without the limits the host could have enforced.
        """
        layout = self.layout
        if layout is None:
            return None
        leaf = f"{_NAME_SAFE.sub('_', name)[:64]}-{secrets.token_hex(4)}"
        dirs = {controller: os.path.join(parent, leaf) for controller, parent in layout.parents.items()}
        group = Cgroup(layout.version, {})
        try:
            for controller, directory in dirs.items():
                os.mkdir(directory, 0o755)
                group.dirs[controller] = directory
            if layout.version == "v2":
                _apply_v2(dirs["unified"], limits)
            else:
                _apply_v1(dirs, limits)
        except OSError:
            group.remove()
            raise
        return group

    def sweep(self, min_age_s: float = STALE_AFTER_S) -> int:
        """Remove empty sandbox group directories older than `min_age_s`; returns how many went.

        A gateway that dies without cleaning up (SIGKILL) leaves its groups behind: --die-with-parent
        empties them, nothing removes them. Live groups are never empty for long (a group is
        populated milliseconds after creation and removed as soon as its sandbox ends), so the age
        test keeps this safe with several gateways on one host. Runs once after detection.
        """
        layout = self._layout if self._detected else self.layout
        if layout is None:
            return 0
        removed = 0
        now = time.time()
        for parent in layout.parents.values():
            try:
                entries = list(os.scandir(parent))
            except OSError:
                continue
            for entry in entries:
                try:
                    if not entry.is_dir(follow_symlinks=False) or now - entry.stat().st_mtime < min_age_s:
                        continue
                    if _read_pids(entry.path):
                        continue
                    os.rmdir(entry.path)
                except OSError:
                    continue
                removed += 1
        return removed


def _apply_v2(directory: str, limits: Limits) -> None:
    memory = limits_mod.memory_bytes(limits)
    _write(os.path.join(directory, "memory.max"), str(memory))
    if os.path.exists(os.path.join(directory, "memory.swap.max")):
        _write(os.path.join(directory, "memory.swap.max"), "0")
    if os.path.exists(os.path.join(directory, "memory.oom.group")):
        # kill the whole sandbox on OOM rather than leave a server with a random child missing
        _write(os.path.join(directory, "memory.oom.group"), "1")
    _write(os.path.join(directory, "pids.max"), str(limits.pids))
    quota = limits_mod.cpu_quota_us(limits)
    _write(os.path.join(directory, "cpu.max"), f"{quota} {limits_mod.CPU_PERIOD_US}")


def _apply_v1(dirs: dict[str, str], limits: Limits) -> None:
    memory_dir = dirs.get("memory")
    if memory_dir is not None:
        memory = str(limits_mod.memory_bytes(limits))
        # memsw must stay >= limit_in_bytes: set the plain limit first
        _write(os.path.join(memory_dir, "memory.limit_in_bytes"), memory)
        memsw = os.path.join(memory_dir, "memory.memsw.limit_in_bytes")
        if os.path.exists(memsw):
            _write(memsw, memory)
        else:
            # without swap accounting, at least keep the kernel from swapping the group out
            with contextlib.suppress(OSError):
                _write(os.path.join(memory_dir, "memory.swappiness"), "0")
    pids_dir = dirs.get("pids")
    if pids_dir is not None:
        _write(os.path.join(pids_dir, "pids.max"), str(limits.pids))
    cpu_dir = dirs.get("cpu")
    if cpu_dir is not None:
        _write(os.path.join(cpu_dir, "cpu.cfs_period_us"), str(limits_mod.CPU_PERIOD_US))
        _write(os.path.join(cpu_dir, "cpu.cfs_quota_us"), str(limits_mod.cpu_quota_us(limits)))


_default: CgroupManager | None = None


def default_manager() -> CgroupManager:
    """The process-wide manager for the real /proc and /sys/fs/cgroup."""
    global _default  # one detection per process
    if _default is None:
        _default = CgroupManager()
    return _default
