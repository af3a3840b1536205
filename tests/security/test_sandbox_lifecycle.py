"""The life of a real sandbox through `sandbox.process`: start, stdio, hooks, failures, stop, clean-up."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sandbox.cgroups import default_manager
from sandbox.process import STDERR_RING, SandboxError, SandboxProcess, spawn
from sandbox.spec import Bind, Limits

if TYPE_CHECKING:  # conftest is loaded by pytest; import it only for the type checker
    from tests.security.conftest import SpecFactory

pytestmark = pytest.mark.root


def _gone_or_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def assert_nothing_left(proc: SandboxProcess, extra_pids: list[int] | None = None) -> None:
    assert proc.descendant_pids() == []
    for pid in [proc.pid, proc.child_pid, *(extra_pids or [])]:
        assert _gone_or_zombie(pid), f"pid {pid} still alive"
    if proc.cgroup is not None:
        assert not any(os.path.exists(path) for path in proc.cgroup.paths)


def _groups_named(name: str) -> list[str]:
    """Sandbox cgroups whose name starts with `name` (unique per test run)."""
    found = []
    for parent in ("/sys/fs/cgroup/pids/gigmcp", "/sys/fs/cgroup/unified/gigmcp", "/sys/fs/cgroup/gigmcp"):
        if os.path.isdir(parent):
            found += [entry for entry in os.listdir(parent) if entry.startswith(name + "-")]
    return found


async def test_stdio_round_trip_and_clean_exit(make_spec: SpecFactory) -> None:
    proc = await spawn(make_spec("/usr/bin/python3", "/app/server.py", "echo", name="life-echo"))
    assert proc.returncode is None
    assert proc.child_pid in proc.descendant_pids()
    assert proc.memory_bytes() > 0
    pids = proc.descendant_pids()
    proc.stdin.write(b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}\n')
    await proc.stdin.drain()
    assert await asyncio.wait_for(proc.stdout.readline(), 10) == b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}\n'
    assert await proc.terminate() == 0  # EOF on stdin is enough for a well-behaved server
    assert proc.returncode == 0
    assert await proc.terminate() == 0  # idempotent
    assert_nothing_left(proc, pids)


async def test_large_line_fits_the_stdout_limit(make_spec: SpecFactory) -> None:
    size = 8 << 20
    proc = await spawn(make_spec("/usr/bin/python3", "/app/server.py", "big", str(size), name="life-big"))
    line = await asyncio.wait_for(proc.stdout.readline(), 20)
    assert len(line) == size + 1
    await proc.terminate()


async def test_stubborn_server_is_killed_after_grace(make_spec: SpecFactory) -> None:
    proc = await spawn(make_spec("/usr/bin/python3", "/app/server.py", "stubborn", name="life-stubborn"))
    assert await asyncio.wait_for(proc.stdout.readline(), 10) == b"ready\n"
    pids = proc.descendant_pids()
    loop = asyncio.get_running_loop()
    started = loop.time()
    codes = await asyncio.gather(proc.terminate(grace=0.4), proc.terminate(grace=0.4))
    assert codes == [137, 137]  # SIGKILL, reported by bwrap as 128 + 9
    assert loop.time() - started < 3
    assert_nothing_left(proc, pids)


async def test_stderr_goes_to_sink_and_ring(make_spec: SpecFactory) -> None:
    chunks: list[bytes] = []
    total = 3 * STDERR_RING
    proc = await spawn(
        make_spec("/usr/bin/python3", "/app/server.py", "stderr", str(total), name="life-stderr"),
        stderr_sink=chunks.append,
    )
    assert await proc.wait() == 3
    received = b"".join(chunks)
    assert len(received) >= total and received.endswith(b"the last words\n")
    tail = proc.last_stderr()
    assert tail.endswith(b"the last words\n")
    assert STDERR_RING - 200 <= len(tail) <= STDERR_RING


async def test_rlimits_and_descriptors_inside(make_spec: SpecFactory) -> None:
    limits = Limits(nofile=256, fsize_mb=16)
    proc = await spawn(make_spec("/usr/bin/python3", "/app/server.py", "limits", name="life-limits", limits=limits))
    report = json.loads(await asyncio.wait_for(proc.stdout.readline(), 10))
    await proc.wait()
    assert report["RLIMIT_NOFILE"] == [256, 256]
    assert report["RLIMIT_FSIZE"] == [16 << 20, 16 << 20]
    assert report["RLIMIT_CORE"] == [0, 0]
    # the pipes and memfds of bwrap and the gateway are all closed (3 is listdir's own fd)
    assert report["fds"] == [0, 1, 2, 3]


async def test_signal_dispositions_reset_for_the_server(make_spec: SpecFactory) -> None:
    proc = await spawn(make_spec("/bin/sh", "-c", "grep SigIgn /proc/self/status", name="life-signals"))
    line = await asyncio.wait_for(proc.stdout.readline(), 10)
    await proc.wait()
    assert line.split()[1] == b"0000000000000000"  # python's ignored SIGPIPE/SIGXFSZ are not inherited


async def test_before_release_runs_while_sandbox_is_blocked(make_spec: SpecFactory) -> None:
    seen: dict[str, object] = {}

    async def before_release(child_pid: int) -> None:
        seen["pid"] = child_pid
        seen["cgroup"] = Path(f"/proc/{child_pid}/cgroup").read_text()
        seen["netns_differs"] = os.readlink(f"/proc/{child_pid}/ns/net") != os.readlink("/proc/self/ns/net")
        # nothing runs in the sandbox yet: bwrap's pid 1 has not even forked the command
        seen["children"] = Path(f"/proc/{child_pid}/task/{child_pid}/children").read_text().split()

    proc = await spawn(
        make_spec("/usr/bin/python3", "/app/server.py", "echo", name="life-hook"), before_release=before_release
    )
    try:
        assert seen["pid"] == proc.child_pid
        assert seen["netns_differs"] is True
        assert seen["children"] == []
        if proc.cgroup is not None:
            leaf = os.path.basename(proc.cgroup.paths[0])
            assert leaf in str(seen["cgroup"])
    finally:
        await proc.terminate()


async def test_failing_hook_leaves_nothing(make_spec: SpecFactory) -> None:
    pids: list[int] = []
    name = f"life-hookfail-{secrets.token_hex(4)}"

    async def before_release(child_pid: int) -> None:
        pids.append(child_pid)
        assert _groups_named(name) or default_manager().layout is None  # it exists while the hook runs
        raise RuntimeError("veth creation failed\nsecond line")

    with pytest.raises(SandboxError, match=r"veth creation failed second line$"):
        await spawn(make_spec("/usr/bin/python3", "/app/server.py", "echo", name=name), before_release=before_release)
    await asyncio.sleep(0.05)
    assert _gone_or_zombie(pids[0])
    assert _groups_named(name) == []


async def test_cancelled_spawn_leaves_nothing(make_spec: SpecFactory) -> None:
    pids: list[int] = []
    name = f"life-cancel-{secrets.token_hex(4)}"

    async def before_release(child_pid: int) -> None:
        pids.append(child_pid)
        await asyncio.sleep(60)

    task = asyncio.create_task(
        spawn(make_spec("/usr/bin/python3", "/app/server.py", "echo", name=name), before_release=before_release)
    )
    while not pids:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _gone_or_zombie(pids[0])
    assert _groups_named(name) == []


async def test_bwrap_failure_reports_its_stderr(make_spec: SpecFactory, world_tmp: Path) -> None:
    spec = make_spec("/usr/bin/python3", "/app/server.py", "echo", name="life-badbind")
    spec = type(spec)(
        **{**{f: getattr(spec, f) for f in spec.__slots__}, "binds": (Bind(str(world_tmp / "missing"), "/app"),)}
    )
    with pytest.raises(SandboxError) as info:
        await spawn(spec)
    message = str(info.value)
    assert "\n" not in message
    assert "life-badbind" in message and "Can't find source path" in message


async def test_missing_command_exits_127(make_spec: SpecFactory) -> None:
    proc = await spawn(make_spec("/usr/bin/no-such-server", name="life-nocmd"))
    assert await proc.wait() == 127
    assert b"command not found: /usr/bin/no-such-server" in proc.last_stderr()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"uid": 0}, "uid/gid 0"),
        ({"binds": (Bind("/etc", "/etc"),)}, "reserved"),
        ({"binds": (Bind("relative", "/data"),)}, "absolute"),
        ({"argv": ()}, "empty command"),
        ({"env": {"A=B": "x"}}, "environment"),
    ],
)
async def test_invalid_specs_are_refused_before_fork(
    make_spec: SpecFactory, change: dict[str, object], expected: str
) -> None:
    spec = make_spec("/bin/true", name="life-invalid")
    spec = type(spec)(**{**{f: getattr(spec, f) for f in spec.__slots__}, **change})
    with pytest.raises(SandboxError, match=expected):
        await spawn(spec)


async def test_concurrent_sandboxes_are_independent(make_spec: SpecFactory) -> None:
    procs = await asyncio.gather(
        *(spawn(make_spec("/usr/bin/python3", "/app/server.py", "echo", name=f"life-many-{i}")) for i in range(5))
    )
    try:
        assert len({p.child_pid for p in procs}) == 5
        if procs[0].cgroup is not None:
            assert len({p.cgroup.paths for p in procs if p.cgroup is not None}) == 5
        for i, proc in enumerate(procs):
            proc.stdin.write(f"sandbox {i}\n".encode())
        replies = await asyncio.gather(*(asyncio.wait_for(p.stdout.readline(), 10) for p in procs))
        assert replies == [f"sandbox {i}\n".encode() for i in range(5)]
    finally:
        codes = await asyncio.gather(*(p.terminate() for p in procs))
    assert codes == [0] * 5
    for proc in procs:
        assert_nothing_left(proc)
