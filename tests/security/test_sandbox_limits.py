"""Resource limits enforced on real sandboxes: pids, memory (OOM kill), CPU; clean removal afterwards."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sandbox.cgroups import default_manager
from sandbox.process import SandboxProcess, spawn
from sandbox.spec import Limits

if TYPE_CHECKING:  # conftest is loaded by pytest; import it only for the type checker
    from tests.security.conftest import SpecFactory

pytestmark = pytest.mark.root


@pytest.fixture(scope="module", autouse=True)
def require_cgroups() -> Iterator[None]:
    if default_manager().layout is None:
        reason = "kernel: no usable cgroup hierarchy with memory/pids/cpu controllers"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    yield


def _zombie_or_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def assert_cleaned_up(proc: SandboxProcess, pids: list[int]) -> None:
    assert proc.cgroup is not None
    for path in proc.cgroup.paths:
        assert not os.path.exists(path), f"cgroup {path} left behind"
    assert proc.descendant_pids() == []
    leftovers = [pid for pid in [proc.pid, *pids] if not _zombie_or_gone(pid)]
    assert not leftovers, f"processes left behind: {leftovers}"


async def run_stress(make_spec: SpecFactory, mode: str, limits: Limits) -> tuple[SandboxProcess, list[str], int]:
    proc = await spawn(make_spec("/usr/bin/python3", "/app/stress.py", mode, name=f"stress-{mode}", limits=limits))
    out = await asyncio.wait_for(proc.stdout.read(), 30)
    returncode = await proc.wait()
    return proc, out.decode().splitlines(), returncode


async def test_fork_bomb_stops_at_pids_limit(make_spec: SpecFactory) -> None:
    pids_limit = 24
    proc, lines, returncode = await run_stress(make_spec, "fork", Limits(pids=pids_limit))
    assert returncode == 0, proc.last_stderr()
    result = json.loads(lines[-1])
    # bwrap and its pid 1 count too, so fewer children than the limit fit
    assert 0 < result["forked"] < pids_limit, result
    assert result["failure"] == "EAGAIN", result
    assert_cleaned_up(proc, [proc.child_pid])


async def test_memory_hog_is_oom_killed(make_spec: SpecFactory) -> None:
    proc, lines, returncode = await run_stress(make_spec, "memory", Limits(memory_mb=64))
    allocated = [json.loads(line).get("allocated_mib", 0) for line in lines]
    assert "survived" not in lines[-1], "allocated 512 MiB under a 64 MiB limit"
    assert max(allocated, default=0) < 64, allocated
    assert returncode == 128 + 9, (returncode, proc.last_stderr())
    stats = proc.cgroup_stats()
    assert stats is not None and stats.oom_kills >= 1, stats
    assert stats.memory_peak_bytes is not None and stats.memory_peak_bytes <= 64 << 20
    assert_cleaned_up(proc, [proc.child_pid])


async def test_cpu_hog_is_throttled(make_spec: SpecFactory) -> None:
    proc, lines, returncode = await run_stress(make_spec, "cpu", Limits(cpu_percent=20))
    assert returncode == 0, proc.last_stderr()
    result = json.loads(lines[-1])
    assert result["wall"] >= 1.0
    assert result["cpu"] < 0.6, result  # about 0.2 s expected at 20 % of one core
    stats = proc.cgroup_stats()
    assert stats is not None and stats.cpu_throttled, stats
    assert_cleaned_up(proc, [proc.child_pid])
