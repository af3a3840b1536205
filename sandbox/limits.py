"""Translation of `Limits` into concrete values: bootstrap rlimit arguments and cgroup settings.

Pure functions. rlimits are applied by the bootstrap inside every sandbox whatever the host offers;
cgroup values are written by `sandbox.cgroups` where a usable hierarchy exists.
"""

from __future__ import annotations

from sandbox.spec import Limits

MIB = 1 << 20
CPU_PERIOD_US = 100_000


def validate(limits: Limits) -> None:
    """Reject limits that would be meaningless or disable a limit by accident (zero, negative)."""
    for field_name in ("memory_mb", "pids", "cpu_percent", "nofile", "fsize_mb"):
        value = getattr(limits, field_name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"limits.{field_name} must be a positive integer, got {value!r}")
    if limits.nofile < 16:
        # the interpreter of any server needs a handful of descriptors just to start
        raise ValueError(f"limits.nofile must be at least 16, got {limits.nofile}")


def memory_bytes(limits: Limits) -> int:
    return limits.memory_mb * MIB


def cpu_quota_us(limits: Limits, period_us: int = CPU_PERIOD_US) -> int:
    """CFS quota per period: cpu_percent is a share of one core, so 200 means two full cores."""
    return max(1000, limits.cpu_percent * period_us // 100)


def bootstrap_args(limits: Limits, *, nproc: bool) -> list[str]:
    """Arguments for `bootstrap/main.py` that set the rlimits (before its `--`).

    `nproc`: also set RLIMIT_NPROC to `limits.pids`. Only as a fallback when no pids cgroup is
    available, because RLIMIT_NPROC counts per uid and the kernel's accounting is coarser.
    """
    validate(limits)
    args = ["--nofile", str(limits.nofile), "--fsize", str(limits.fsize_mb * MIB)]
    if not limits.core_dumps:
        args += ["--core", "0"]
    if nproc:
        args += ["--nproc", str(limits.pids)]
    return args
