"""`sandbox.limits`: Limits -> bootstrap rlimit arguments and cgroup values."""

from __future__ import annotations

import pytest

from sandbox import limits
from sandbox.spec import Limits


def test_bootstrap_args_defaults() -> None:
    assert limits.bootstrap_args(Limits(), nproc=False) == [
        "--nofile",
        "1024",
        "--fsize",
        str(1024 << 20),
        "--core",
        "0",
    ]


def test_bootstrap_args_nproc_fallback_and_core_dumps() -> None:
    args = limits.bootstrap_args(Limits(pids=32, core_dumps=True), nproc=True)
    assert "--core" not in args  # core dumps allowed: leave the inherited limit alone
    assert args[args.index("--nproc") + 1] == "32"


def test_cgroup_values() -> None:
    assert limits.memory_bytes(Limits(memory_mb=64)) == 64 << 20
    assert limits.cpu_quota_us(Limits(cpu_percent=20)) == 20_000
    assert limits.cpu_quota_us(Limits(cpu_percent=250)) == 250_000  # two and a half cores
    assert limits.cpu_quota_us(Limits(cpu_percent=1)) == 1_000  # the kernel's minimum quota


@pytest.mark.parametrize(
    "bad",
    [
        Limits(memory_mb=0),
        Limits(pids=-1),
        Limits(cpu_percent=0),
        Limits(nofile=8),
        Limits(fsize_mb=0),
        Limits(pids=True),
    ],
)
def test_invalid_limits(bad: Limits) -> None:
    with pytest.raises(ValueError, match="limits"):
        limits.validate(bad)
    with pytest.raises(ValueError):
        limits.bootstrap_args(bad, nproc=False)
