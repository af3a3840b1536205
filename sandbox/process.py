"""Starting and stopping one sandboxed process: bwrap as the sandbox uid, cgroup, network hook, stdio.

Sequence of `spawn`:
  1. memfds for the seccomp program and the generated files, pipes for info/block/ready;
  2. bwrap starts (as `spec.uid`, with a fixed environment: the gateway's holds secrets) and stops
     before running anything, waiting on the block fd;
  3. its sandbox pid 1 is read from the info fd and put into the sandbox's cgroup, then
     `before_release(child_pid)` runs (the network manager builds the veth into its netns);
  4. the block fd is released; the bootstrap checks it is unprivileged, applies rlimits and writes one
     byte on the ready fd just before it execs the server. Only then does `spawn` return.
Every failure after the fork kills what was started, removes the cgroup and raises `SandboxError` with
the tail of bwrap's stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import json
import logging
import os
import shutil
import signal
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path

from sandbox import bwrap, seccomp
from sandbox.cgroups import Cgroup, CgroupManager, CgroupStats, default_manager
from sandbox.spec import SandboxSpec

log = logging.getLogger(__name__)

STDOUT_LIMIT = 64 << 20  # one JSON-RPC message is one line; results can be large
STDERR_RING = 64 << 10
START_TIMEOUT = 15.0
_BWRAP_SEARCH_PATH = "/usr/local/bin:/usr/bin:/bin"
# bwrap gets this and nothing else of the gateway's environment (which holds tokens and keys).
_BWRAP_ENV = {"PATH": _BWRAP_SEARCH_PATH, "LC_ALL": "C.UTF-8"}
BOOTSTRAP_DIR = str(Path(__file__).resolve().parent.parent / "bootstrap")


class SandboxError(RuntimeError):
    """A sandbox could not be started (or its spec is invalid). The message is one line."""


@functools.cache
def bwrap_path() -> str:
    found = shutil.which("bwrap", path=_BWRAP_SEARCH_PATH)
    if found is None:
        raise SandboxError("bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
    return found


def _memfd(name: str, data: bytes) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _close(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


async def _read_until(fd: int, complete: Callable[[bytes], bool]) -> bytes:
    """Read a pipe without blocking the loop until `complete(data)` or EOF."""
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    data = bytearray()
    done: asyncio.Future[None] = loop.create_future()

    def on_readable() -> None:
        if done.done():
            return
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            done.set_exception(exc)
            return
        data.extend(chunk)
        if not chunk or complete(bytes(data)):
            done.set_result(None)

    loop.add_reader(fd, on_readable)
    try:
        await done
    finally:
        loop.remove_reader(fd)
    return bytes(data)


def children(pid: int) -> list[int]:
    """Direct children of `pid` (every thread's), from /proc; [] once it is gone."""
    kids: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return kids
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as fh:
                kids.extend(int(k) for k in fh.read().split())
        except (OSError, ValueError):
            continue
    return kids


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants (host pids), breadth first."""
    if not os.path.exists(f"/proc/{root}"):
        return []
    seen = [root]
    index = 0
    while index < len(seen):
        for kid in children(seen[index]):
            if kid not in seen:
                seen.append(kid)
        index += 1
    return seen


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class SandboxProcess:
    """A running sandbox. `stdin`/`stdout` carry the server's stdio; the rest is lifecycle."""

    def __init__(
        self,
        spec: SandboxSpec,
        proc: asyncio.subprocess.Process,
        child_pid: int,
        pidfd: int,
        cgroup: Cgroup | None,
        stderr: _StderrDrain,
    ) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.spec = spec
        self.name = spec.name
        self.pid = proc.pid
        self.child_pid = child_pid
        self.stdin: asyncio.StreamWriter = proc.stdin
        self.stdout: asyncio.StreamReader = proc.stdout
        self.cgroup = cgroup
        self._proc = proc
        self._pidfd: int | None = pidfd
        self._stderr = stderr
        self._final_stats: CgroupStats | None = None
        self._reaper = asyncio.create_task(self._reap(), name=f"sandbox-reaper-{spec.name}")

    @property
    def returncode(self) -> int | None:
        """bwrap's exit status: the server's, 128+N when the server was killed by signal N, or -N when
        bwrap itself was killed."""
        if not self._reaper.done():
            return None
        return self._proc.returncode

    def last_stderr(self) -> bytes:
        """The most recent stderr output (bounded ring buffer)."""
        return self._stderr.tail()

    async def wait(self) -> int:
        """Wait for the sandbox to end and be cleaned up (cgroup removed); returns `returncode`."""
        await asyncio.shield(self._reaper)
        code = self._proc.returncode
        assert code is not None
        return code

    async def terminate(self, grace: float = 2.0) -> int:
        """Stop the sandbox the way MCP's stdio transport asks: close stdin, after `grace`/2 SIGTERM
        its processes, after another `grace`/2 SIGKILL. Idempotent and safe to call concurrently;
        returns the exit status once the cgroup is removed.
        """
        if not self._reaper.done():
            with contextlib.suppress(OSError, RuntimeError):
                self.stdin.close()
            if not await self._ended_within(grace / 2):
                self.signal_all(signal.SIGTERM)
                if not await self._ended_within(grace / 2):
                    self.kill()
                    if not await self._ended_within(1.0):
                        self._kill_bwrap()
        return await self.wait()

    async def _ended_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(asyncio.shield(self._reaper), seconds)
        except TimeoutError:
            return False
        return True

    def signal_all(self, signum: int) -> None:
        """Send `signum` to every process of the sandbox except its pid 1 (bwrap's reaper ignores
        signals it has no handler for; the namespace ends when the server does)."""
        for pid in self.descendant_pids():
            if pid != self.child_pid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signum)

    def kill(self) -> None:
        """SIGKILL the sandbox's pid 1: the kernel kills its whole pid namespace, and bwrap then
        exits with 128 + 9. Does not wait (see `wait`)."""
        if self._pidfd is None:
            self._kill_bwrap()
            return
        with contextlib.suppress(ProcessLookupError, OSError):
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)

    def _kill_bwrap(self) -> None:
        # --die-with-parent takes the sandbox down with it; returncode is then -9
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()

    def descendant_pids(self) -> list[int]:
        """Host pids of every process in the sandbox: its pid 1 (`child_pid`) and all descendants."""
        if self._reaper.done():
            return []
        pids = process_tree(self.child_pid)
        if self.cgroup is not None:
            # also catches what the /proc children walk misses (kernels without CONFIG_PROC_CHILDREN);
            # bwrap itself sits in the group too but is outside the sandbox
            pids += [pid for pid in self.cgroup.pids() if pid not in pids and pid != self.pid]
        return pids

    def cgroup_stats(self) -> CgroupStats | None:
        """Live counters; after the end, the snapshot taken just before the cgroup was removed."""
        if self._final_stats is not None or self.cgroup is None:
            return self._final_stats
        return self.cgroup.stats()

    def memory_bytes(self) -> int:
        """Memory charged to the sandbox (cgroup), or the sum of its processes' RSS without one."""
        stats = self.cgroup_stats()
        if stats is not None and stats.memory_bytes is not None:
            return stats.memory_bytes
        return sum(_rss_bytes(pid) for pid in self.descendant_pids())

    async def _reap(self) -> None:
        try:
            await self._proc.wait()
            await self._end_namespace()
            if self.cgroup is not None:
                with contextlib.suppress(OSError):
                    self._final_stats = self.cgroup.stats()
                try:
                    await asyncio.to_thread(self.cgroup.remove)
                except OSError as exc:
                    log.warning("sandbox %s: cannot remove cgroup %s: %s", self.name, self.cgroup.paths, exc)
            await self._stderr.finish()
        except asyncio.CancelledError:
            # The loop is going away with the sandbox still tracked: clean up synchronously so no
            # process or cgroup outlives the gateway's interest in it.
            self._kill_namespace()
            self._kill_bwrap()
            if self.cgroup is not None and not self.cgroup.removed:
                with contextlib.suppress(OSError):
                    self._final_stats = self.cgroup.stats()
                    self.cgroup.remove()
            raise

    async def _end_namespace(self) -> None:
        """bwrap exits as soon as the server does, orphaning its pid 1 for a moment: kill that, wait
        until it is gone (its pidfd turns readable) and reap it in case it was re-parented to us
        (the gateway as PID 1 of a container) so that no zombie accumulates."""
        pidfd = self._pidfd
        if pidfd is None:
            return
        with contextlib.suppress(ProcessLookupError, OSError):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()

        def on_exit() -> None:
            if not ended.done():
                ended.set_result(None)

        loop.add_reader(pidfd, on_exit)
        try:
            async with asyncio.timeout(2.0):
                await ended
        except TimeoutError:
            log.warning("sandbox %s: its pid 1 (%d) did not end after SIGKILL", self.name, self.child_pid)
        finally:
            loop.remove_reader(pidfd)
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)  # noqa: ASYNC222 - WNOHANG, it has ended
        self._kill_namespace()

    def _kill_namespace(self) -> None:
        """SIGKILL the sandbox's pid 1 (whole pid namespace) and release the pidfd."""
        if self._pidfd is not None:
            # bwrap exits as soon as the server does; its pid 1 may still be tearing down
            with contextlib.suppress(ProcessLookupError, OSError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            _close(self._pidfd)
            self._pidfd = None


class _StderrDrain:
    """Reads bwrap's stderr (which is the sandbox's) into a ring buffer and an optional sink."""

    def __init__(self, stream: asyncio.StreamReader, sink: Callable[[bytes], None] | None, name: str) -> None:
        self._ring: deque[bytes] = deque()
        self._size = 0
        self._sink = sink
        self._name = name
        self._task = asyncio.create_task(self._run(stream), name=f"sandbox-stderr-{name}")

    def tail(self) -> bytes:
        return b"".join(self._ring)[-STDERR_RING:]

    def tail_line(self, limit: int = 300) -> str:
        """The end of stderr as one line for an error message."""
        text = " | ".join(line.strip() for line in self.tail().decode("utf-8", "replace").splitlines() if line.strip())
        return text[-limit:]

    async def _run(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            self._ring.append(chunk)
            self._size += len(chunk)
            while self._size - len(self._ring[0]) >= STDERR_RING:
                self._size -= len(self._ring.popleft())
            if self._sink is not None:
                try:
                    self._sink(chunk)
                except Exception:
                    log.exception("sandbox %s: stderr sink failed; it is no longer called", self._name)
                    self._sink = None

    async def finish(self, wait_s: float = 1.0) -> None:
        """Wait for EOF (every writer gone), then stop; bounded so a stuck writer cannot block us."""
        try:
            await asyncio.wait_for(asyncio.shield(self._task), wait_s)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _attach_if_alive(cgroup: Cgroup, pid: int) -> None:
    # bwrap may already have failed and exited; its error is reported from the info fd and stderr
    with contextlib.suppress(ProcessLookupError):
        cgroup.attach(pid)


def _identity(spec: SandboxSpec) -> tuple[int | None, int | None, list[int] | None]:
    """user, group and extra_groups for the bwrap child (None: keep ours)."""
    if os.geteuid() == 0:
        return spec.uid, spec.gid, []
    if os.getuid() == spec.uid and os.getgid() == spec.gid:
        return None, None, None  # development without root: we already are the sandbox identity
    raise SandboxError(f"sandbox {spec.name}: the gateway is not root and cannot start bwrap as uid {spec.uid}")


class _Launch:
    """State of one `spawn` in progress, so that a failure at any step can undo the earlier ones."""

    def __init__(self, spec: SandboxSpec) -> None:
        self.spec = spec
        self.fds: list[int] = []  # every descriptor we opened; all closed when spawn ends
        self.cgroup_task: asyncio.Task[Cgroup | None] | None = None
        self.cgroup: Cgroup | None = None
        self.proc: asyncio.subprocess.Process | None = None
        self.stderr: _StderrDrain | None = None
        self.pidfd: int | None = None
        self.released = False  # before_release ran: a retry would set the network up twice

    def pipe(self) -> tuple[int, int]:
        read_end, write_end = os.pipe()
        self.fds += [read_end, write_end]
        return read_end, write_end

    def memfd(self, name: str, data: bytes) -> int:
        fd = _memfd(name, data)
        self.fds.append(fd)
        return fd

    def close_fds(self, fds: list[int] | None = None) -> None:
        for fd in self.fds if fds is None else fds:
            _close(fd)
        self.fds = [] if fds is None else [fd for fd in self.fds if fd not in fds]

    async def run(
        self,
        manager: CgroupManager,
        identity: tuple[int | None, int | None, list[int] | None],
        before_release: Callable[[int], Awaitable[None]] | None,
        stderr_sink: Callable[[bytes], None] | None,
        start_timeout: float,
    ) -> SandboxProcess:
        spec, name = self.spec, self.spec.name
        layout = manager.layout if manager.detected else await asyncio.to_thread(lambda: manager.layout)
        data_fds = {path: self.memfd("gigmcp-data", data) for path, data in bwrap.data_files(spec).items()}
        seccomp_fd = self.memfd("gigmcp-seccomp", seccomp.filter_bytes()) if spec.seccomp else None
        info_r, info_w = self.pipe()
        block_r, block_w = self.pipe()
        ready_r, ready_w = self.pipe()
        argv = bwrap.build_argv(
            spec,
            seccomp_fd=seccomp_fd,
            info_fd=info_w,
            block_fd=block_r,
            data_fds=data_fds,
            bootstrap_dir=BOOTSTRAP_DIR,
            ready_fd=ready_w,
            rlimit_nproc=layout is None or not layout.limits_pids,
            bwrap=bwrap_path(),
        )
        child_side = [*data_fds.values(), info_w, block_r, ready_w]
        if seccomp_fd is not None:
            child_side.append(seccomp_fd)
        # mkdir + limit writes run in a thread while the loop thread forks bwrap
        self.cgroup_task = asyncio.create_task(asyncio.to_thread(manager.create, name, spec.limits))
        user, group, extra_groups = identity
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=child_side,
                env=_BWRAP_ENV,
                cwd="/",
                start_new_session=True,  # the gateway's terminal signals must not reach sandboxes
                limit=STDOUT_LIMIT,
                user=user,
                group=group,
                extra_groups=extra_groups,
            )
        except OSError as exc:
            raise SandboxError(f"sandbox {name}: cannot start bwrap: {exc}") from None
        finally:
            self.close_fds(child_side)  # bwrap holds its copies; ours would keep pipes from EOF
        assert self.proc.stderr is not None
        self.stderr = _StderrDrain(self.proc.stderr, stderr_sink, name)

        try:
            self.cgroup = await self.cgroup_task
        except OSError as exc:
            raise SandboxError(f"sandbox {name}: cannot create its cgroup: {exc}") from None
        # The first migration into a fresh v1 cgroup waits for an RCU grace period (~10 ms): let it
        # overlap bwrap's own start by moving bwrap itself; the sandbox is then often born inside.
        early = self.cgroup
        early_attach = asyncio.create_task(asyncio.to_thread(_attach_if_alive, early, self.proc.pid)) if early else None
        try:
            async with asyncio.timeout(start_timeout):
                info = await _read_until(info_r, _complete_json)
        finally:
            if early_attach is not None:
                await early_attach
        child_pid = _child_pid(info)
        if child_pid is None:
            raise SandboxError(f"sandbox {name}: bwrap exited before starting it")
        self.pidfd = os.pidfd_open(child_pid)  # signals by pidfd cannot hit a recycled pid
        if self.cgroup is not None:
            await asyncio.to_thread(self.cgroup.attach, child_pid)
        if before_release is not None:
            self.released = True
            await before_release(child_pid)

        os.write(block_w, b"1")
        async with asyncio.timeout(start_timeout):
            ready = await _read_until(ready_r, bool)
        if not ready:
            raise SandboxError(f"sandbox {name}: it exited during set-up")
        sandbox = SandboxProcess(spec, self.proc, child_pid, self.pidfd, self.cgroup, self.stderr)
        self.pidfd = None  # owned by the SandboxProcess from now on
        return sandbox

    async def abort(self) -> None:
        """Undo a failed start. Kill first: closing the block fd would release bwrap like a write."""
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        if self.proc is not None:
            if self.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 5.0)
        if self.stderr is not None:
            await self.stderr.finish(0.5)
        _close(self.pidfd)
        self.pidfd = None
        if self.cgroup is None and self.cgroup_task is not None:
            with contextlib.suppress(Exception):
                self.cgroup = await self.cgroup_task
        if self.cgroup is not None:
            try:
                await asyncio.to_thread(self.cgroup.remove)
            except OSError as exc:
                log.warning("sandbox %s: cannot remove cgroup %s: %s", self.spec.name, self.cgroup.paths, exc)


async def spawn(
    spec: SandboxSpec,
    *,
    before_release: Callable[[int], Awaitable[None]] | None = None,
    stderr_sink: Callable[[bytes], None] | None = None,
    cgroups: CgroupManager | None = None,
    start_timeout: float = START_TIMEOUT,
) -> SandboxProcess:
    """Start `spec`; return once its server command is about to be exec'd inside the ready sandbox.

    `before_release(child_pid)` runs while the sandbox is set up but blocked (network setup).
    `cgroups` defaults to the process-wide manager. Raises `SandboxError` (one line, with the tail of
    bwrap's stderr) on any failure, after killing whatever was started.
    """
    try:
        bwrap.validate(spec)
    except ValueError as exc:
        raise SandboxError(str(exc)) from None
    identity = _identity(spec)
    manager = cgroups if cgroups is not None else default_manager()
    for attempt in range(1, SPAWN_ATTEMPTS + 1):
        launch = _Launch(spec)
        try:
            return await launch.run(manager, identity, before_release, stderr_sink, start_timeout)
        except BaseException as exc:
            await launch.abort()
            if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                raise
            message = _failure_message(spec.name, exc)
            tail = launch.stderr.tail_line() if launch.stderr is not None else ""
            if attempt < SPAWN_ATTEMPTS and not launch.released and transient_setup_failure(tail):
                log.warning("sandbox %s: bwrap set-up failed (%s); retrying", spec.name, tail)
                continue
            text = f"{message}: {tail}" if tail else message
            raise SandboxError(" ".join(text.split())) from exc  # one line, whatever the cause printed
        finally:
            launch.close_fds()
    raise AssertionError("unreachable")


SPAWN_ATTEMPTS = 3
# bwrap's own loopback set-up in the new network namespace fails now and then when many namespaces
# are made at once (seen under load: "loopback: Failed RTM_NEWADDR: No child processes"). Nothing of
# the sandbox exists yet at that point, so starting again is safe.
_TRANSIENT_SETUP = ("loopback: Failed RTM_", "loopback: Failed to create NETLINK")


def transient_setup_failure(stderr_tail: str) -> bool:
    return any(marker in stderr_tail for marker in _TRANSIENT_SETUP)


def _complete_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True


def _child_pid(info: bytes) -> int | None:
    try:
        value = json.loads(info)["child-pid"]
    except (ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, int) and value > 0 else None


def _failure_message(name: str, exc: BaseException) -> str:
    if isinstance(exc, SandboxError):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return f"sandbox {name}: timed out while starting"
    if isinstance(exc, OSError) and exc.errno == errno.ESRCH:
        return f"sandbox {name}: it exited during set-up"
    return f"sandbox {name}: start failed: {type(exc).__name__}: {exc}"
