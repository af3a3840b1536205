"""Sandboxes: bubblewrap argv, seccomp, limits, per-sandbox network, and the supervisor of live sandboxes."""

from sandbox.cgroups import CgroupManager, CgroupStats, default_manager
from sandbox.process import SandboxError, SandboxProcess, spawn
from sandbox.seccomp import filter_bytes as seccomp_filter_bytes
from sandbox.spec import Bind, Limits, NetworkPlan, SandboxSpec
from sandbox.users import SANDBOX_USER, SandboxUser
from sandbox.users import lookup as lookup_sandbox_user

__all__ = [
    "SANDBOX_USER",
    "Bind",
    "CgroupManager",
    "CgroupStats",
    "Limits",
    "NetworkPlan",
    "SandboxError",
    "SandboxProcess",
    "SandboxSpec",
    "SandboxUser",
    "default_manager",
    "lookup_sandbox_user",
    "seccomp_filter_bytes",
    "spawn",
]
