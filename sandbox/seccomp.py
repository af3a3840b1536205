"""The seccomp-BPF deny-list every sandbox runs under (handed to bwrap with `--seccomp FD`).

Default ALLOW with targeted denials: the filter closes kernel attack surface and escape routes that
namespaces and dropped capabilities alone leave open (nested user namespaces, io_uring, bpf, keyrings,
ptrace of siblings, terminal injection). Built with libseccomp through `pyseccomp` (pure ctypes) once
per process; the program bytes are cached.
"""

from __future__ import annotations

import errno
import functools
import os

import pyseccomp as sc

# Denied with EPERM whatever their arguments.
DENIED_SYSCALLS: tuple[str, ...] = (
    # namespaces and mounts: escape or re-shape the sandbox
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    # other processes' memory and descriptors
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "pidfd_getfd",
    # kernel keyrings are not namespaced
    "keyctl",
    "add_key",
    "request_key",
    # large, frequently exploited kernel surfaces
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    # whole-machine operations
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "iopl",
    "ioperm",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    # file handles bypass path-based confinement (the "shocker" escape)
    "open_by_handle_at",
    "name_to_handle_at",
    "lookup_dcookie",
    "uselib",
    "vhangup",
)

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# clone() cannot carry CLONE_NEWTIME: its low byte is the exit signal, so 0x80 there is not a flag.
CLONE_NS_FLAGS: tuple[int, ...] = (
    CLONE_NEWNS,
    CLONE_NEWCGROUP,
    CLONE_NEWUTS,
    CLONE_NEWIPC,
    CLONE_NEWUSER,
    CLONE_NEWPID,
    CLONE_NEWNET,
)
UNSHARE_NS_FLAGS: tuple[int, ...] = (CLONE_NEWTIME, *CLONE_NS_FLAGS)

TIOCSTI = 0x5412
TIOCLINUX = 0x541C
_LOW32 = 0xFFFFFFFF


def _add_personality_rules(flt: sc.SyscallFilter, action: int) -> None:
    """Deny every persona except PER_LINUX (0) and the query value 0xffffffff.

    The kernel reads the argument as a 32-bit unsigned int. A value other than all-zeros or all-ones
    has some bit i set whose cyclic neighbour i+1 is clear, so 32 two-bit masked comparisons cover
    exactly the denied set (libseccomp cannot AND two comparisons on the same argument).
    """
    for bit in range(32):
        mask = (1 << bit) | (1 << ((bit + 1) % 32))
        flt.add_rule(action, "personality", sc.Arg(0, sc.MASKED_EQ, mask, 1 << bit))


def _resolvable(name: str) -> bool:
    # Negative numbers are libseccomp pseudo-syscalls: the call does not exist on this architecture.
    return int(sc.resolve_syscall(sc.Arch.NATIVE, name)) >= 0


def build_filter() -> sc.SyscallFilter:
    """The filter object (native architecture only; anything else is killed)."""
    eperm = sc.ERRNO(errno.EPERM)
    flt = sc.SyscallFilter(defaction=sc.ALLOW)
    # i386 (int 0x80) and x32 calls bypass a native-only syscall table: kill the whole process.
    flt.set_attr(sc.Attr.ACT_BADARCH, sc.KILL_PROCESS)
    for name in DENIED_SYSCALLS:
        if _resolvable(name):
            flt.add_rule(eperm, name)
    # clone3 passes its flags in a struct BPF cannot read; ENOSYS makes glibc fall back to clone(),
    # where the flags are visible (EPERM would break thread creation instead).
    flt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    for flag in CLONE_NS_FLAGS:
        flt.add_rule(eperm, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    for flag in UNSHARE_NS_FLAGS:
        flt.add_rule(eperm, "unshare", sc.Arg(0, sc.MASKED_EQ, flag, flag))
    # cmd is an unsigned int for the kernel: compare only the low 32 bits (CVE-2019-10063 bypass).
    for request in (TIOCSTI, TIOCLINUX):
        flt.add_rule(eperm, "ioctl", sc.Arg(1, sc.MASKED_EQ, _LOW32, request))
    _add_personality_rules(flt, eperm)
    return flt


class _FdFile:
    """The minimal file object `export_bpf` needs: libseccomp writes straight to the descriptor."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        return self._fd


def build_filter_bytes() -> bytes:
    """Compile the filter to a BPF program (uncached; see `filter_bytes`)."""
    flt = build_filter()
    fd = os.memfd_create("gigmcp-seccomp", os.MFD_CLOEXEC)
    try:
        flt.export_bpf(_FdFile(fd))
        size = os.lseek(fd, 0, os.SEEK_END)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


@functools.cache
def filter_bytes() -> bytes:
    """The BPF program, built once per process (about 30 ms the first time)."""
    program = build_filter_bytes()
    if not program or len(program) % 8:
        raise RuntimeError(f"libseccomp produced an invalid BPF program ({len(program)} bytes)")
    return program
