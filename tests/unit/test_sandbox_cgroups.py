"""`sandbox.cgroups` detection and limit writing against fake cgroup trees (plain directories), for
both v2 (not available on the development VM) and v1; the real v1 path runs in tests/security."""

from __future__ import annotations

import os
import time
from pathlib import Path

from sandbox.cgroups import CgroupManager, _parse_mounts, _parse_own
from sandbox.spec import Limits

LIMITS = Limits(memory_mb=64, pids=16, cpu_percent=20)


def fake_host(tmp_path: Path, mounts: str, own: str) -> CgroupManager:
    (tmp_path / "mounts").write_text(mounts)
    (tmp_path / "cgroup").write_text(own)
    return CgroupManager(str(tmp_path / "mounts"), str(tmp_path / "cgroup"))


def test_parse_mounts_and_own_cgroup() -> None:
    v2, v1 = _parse_mounts(
        "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n"
        "cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0\n"
        "cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n"
        "proc /proc proc rw 0 0\n"
    )
    assert v2 == ["/sys/fs/cgroup/unified"]
    assert v1["cpu"] == v1["cpuacct"] == "/sys/fs/cgroup/cpu,cpuacct"
    assert v1["memory"] == "/sys/fs/cgroup/memory"
    own_v2, own_v1 = _parse_own("4:memory:/process_api/abc\n1:cpu,cpuacct:/\n0::/init.scope\n")
    assert own_v2 == "/init.scope"
    assert own_v1 == {"memory": "/process_api/abc", "cpu": "/", "cpuacct": "/"}


def test_v2_delegated_subtree(tmp_path: Path) -> None:
    root = tmp_path / "cg"
    own = root / "system.slice" / "gigmcp.service"
    own.mkdir(parents=True)
    (own / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (own / "cgroup.subtree_control").write_text("")
    manager = fake_host(tmp_path, f"cgroup2 {root} cgroup2 rw 0 0\n", "0::/system.slice/gigmcp.service\n")

    layout = manager.layout
    assert layout is not None and layout.version == "v2" and layout.limits_pids
    assert (own / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    parent = own / "gigmcp"
    assert (parent / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"

    group = manager.create("echo server/1", LIMITS)
    assert group is not None and group.version == "v2"
    leaf = Path(group.paths[0])
    assert leaf.parent == parent and leaf.name.startswith("echo_server_1-")
    assert (leaf / "memory.max").read_text() == str(64 << 20)
    assert (leaf / "pids.max").read_text() == "16"
    assert (leaf / "cpu.max").read_text() == "20000 100000"

    group.attach(4242)
    assert (leaf / "cgroup.procs").read_text() == "4242"
    (leaf / "memory.current").write_text("1048576\n")
    (leaf / "memory.peak").write_text("2097152\n")
    (leaf / "pids.current").write_text("3\n")
    (leaf / "memory.events").write_text("low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n")
    (leaf / "cpu.stat").write_text("usage_usec 10\nnr_periods 4\nnr_throttled 2\n")
    stats = group.stats()
    assert (stats.memory_bytes, stats.memory_peak_bytes, stats.pids) == (1 << 20, 2 << 20, 3)
    assert (stats.oom_kills, stats.limit_hits, stats.cpu_throttled) == (1, 5, 2)


def test_v2_without_controllers_falls_back_to_v1(tmp_path: Path) -> None:
    unified = tmp_path / "unified"
    unified.mkdir()
    (unified / "cgroup.controllers").write_text("hugetlb\n")
    memory, pids, cpu = (tmp_path / name for name in ("memory", "pids", "cpu,cpuacct"))
    (memory / "process_api" / "abc").mkdir(parents=True)
    pids.mkdir()
    cpu.mkdir()
    manager = fake_host(
        tmp_path,
        f"cgroup2 {unified} cgroup2 rw 0 0\n"
        f"cgroup {memory} cgroup rw,memory 0 0\n"
        f"cgroup {pids} cgroup rw,pids 0 0\n"
        f"cgroup {cpu} cgroup rw,cpu,cpuacct 0 0\n",
        "9:pids:/\n4:memory:/process_api/abc\n1:cpu,cpuacct:/\n0::/\n",
    )
    layout = manager.layout
    assert layout is not None and layout.version == "v1"
    # memory nests under our own memory cgroup, like the probe found necessary
    assert layout.parents["memory"] == str(memory / "process_api" / "abc" / "gigmcp")
    assert layout.parents["pids"] == str(pids / "gigmcp")

    mem_parent = Path(layout.parents["memory"])
    group = manager.create("echo", LIMITS)
    assert group is not None
    mem_leaf = Path(group.dirs["memory"])
    assert mem_leaf.parent == mem_parent
    assert (mem_leaf / "memory.limit_in_bytes").read_text() == str(64 << 20)
    assert (Path(group.dirs["pids"]) / "pids.max").read_text() == "16"
    assert (Path(group.dirs["cpu"]) / "cpu.cfs_quota_us").read_text() == "20000"
    assert (Path(group.dirs["cpu"]) / "cpu.cfs_period_us").read_text() == "100000"

    (mem_leaf / "memory.usage_in_bytes").write_text("4096\n")
    (mem_leaf / "memory.max_usage_in_bytes").write_text("8192\n")
    (mem_leaf / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    (mem_leaf / "memory.failcnt").write_text("0\n")
    (mem_leaf / "memory.memsw.failcnt").write_text("7\n")
    (Path(group.dirs["pids"]) / "pids.current").write_text("5\n")
    stats = group.stats()
    assert (stats.memory_bytes, stats.memory_peak_bytes, stats.pids) == (4096, 8192, 5)
    assert (stats.oom_kills, stats.limit_hits) == (2, 7)


def test_no_cgroups_at_all(tmp_path: Path) -> None:
    manager = fake_host(tmp_path, "proc /proc proc rw 0 0\n", "0::/\n")
    assert manager.layout is None
    assert manager.create("echo", LIMITS) is None
    assert manager.sweep() == 0


def test_sweep_removes_only_old_empty_groups(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    parent = pids / "gigmcp"
    parent.mkdir(parents=True)
    stale, young, busy = parent / "echo-1-aaaa", parent / "echo-1-bbbb", parent / "echo-1-cccc"
    for directory in (stale, young, busy):
        directory.mkdir()
    (busy / "cgroup.procs").write_text("4242\n")
    old = time.time() - 3600
    for directory in (stale, busy):
        os.utime(directory, (old, old))
    manager = fake_host(tmp_path, f"cgroup {pids} cgroup rw,pids 0 0\n", "9:pids:/\n0::/\n")
    assert manager.layout is not None  # detection sweeps once
    assert not stale.exists()
    assert young.exists() and busy.exists()
    assert manager.sweep(min_age_s=0) == 1  # the young one; the busy one still has a process
    assert busy.exists()
