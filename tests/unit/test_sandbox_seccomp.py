"""The seccomp program: built, deterministic, and — run through a small classic-BPF interpreter — it
returns the intended action for each system call and argument, without needing a kernel."""

from __future__ import annotations

import errno
import struct

import pytest

from sandbox import seccomp

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
ALLOW = 0x7FFF0000
KILL_PROCESS = 0x80000000
EPERM = 0x00050000 | errno.EPERM
ENOSYS = 0x00050000 | errno.ENOSYS

NR = {
    "read": 0,
    "ioctl": 16,
    "clone": 56,
    "fork": 57,
    "ptrace": 101,
    "personality": 135,
    "mount": 165,
    "keyctl": 250,
    "unshare": 272,
    "setns": 308,
    "bpf": 321,
    "io_uring_setup": 425,
    "clone3": 435,
    "open_by_handle_at": 304,
    "mmap": 9,
    "openat": 257,
}
THREAD_FLAGS = 0x3D0F00  # CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID


def run_bpf(program: bytes, nr: int, args: tuple[int, ...] = (), arch: int = AUDIT_ARCH_X86_64) -> int:
    """Evaluate a classic BPF seccomp program on one `struct seccomp_data`."""
    full_args = (list(args) + [0] * 6)[:6]
    data = struct.pack("<iIQ6Q", nr, arch, 0, *full_args)
    insns = [struct.unpack("<HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    acc = index = 0
    mem = [0] * 16
    pc = 0
    for _ in range(10_000):
        code, jt, jf, k = insns[pc]
        pc += 1
        cls = code & 0x07
        if cls == 0x00:  # LD
            if code == 0x20:
                acc = struct.unpack_from("<I", data, k)[0]
            elif code == 0x60:
                acc = mem[k]
            elif code == 0x00:
                acc = k
            else:
                raise AssertionError(f"unsupported LD {code:#x}")
        elif cls == 0x01:  # LDX
            index = mem[k] if code == 0x61 else k
        elif cls == 0x02:
            mem[k] = acc
        elif cls == 0x03:
            mem[k] = index
        elif cls == 0x04:  # ALU with K
            op = code & 0xF0
            if op == 0x50:
                acc &= k
            elif op == 0x40:
                acc |= k
            else:
                raise AssertionError(f"unsupported ALU {code:#x}")
        elif cls == 0x05:  # JMP
            op = code & 0xF0
            operand = index if code & 0x08 else k
            if op == 0x00:
                pc += k
                continue
            taken = {0x10: acc == operand, 0x20: acc > operand, 0x30: acc >= operand, 0x40: bool(acc & operand)}[op]
            pc += jt if taken else jf
        elif cls == 0x06:
            return acc if code & 0x10 else k
        elif cls == 0x07:
            if code == 0x07:
                index = acc
            else:
                acc = index
    raise AssertionError("program did not terminate")


@pytest.fixture(scope="module")
def program() -> bytes:
    return seccomp.filter_bytes()


def test_program_is_valid_and_cached(program: bytes) -> None:
    assert program and len(program) % 8 == 0
    assert len(program) // 8 < 4096  # the kernel's limit on instructions
    assert seccomp.filter_bytes() is program


def test_program_is_deterministic(program: bytes) -> None:
    assert seccomp.build_filter_bytes() == program


@pytest.mark.parametrize("name", [n for n in seccomp.DENIED_SYSCALLS if n in NR])
def test_denied_syscalls(program: bytes, name: str) -> None:
    assert run_bpf(program, NR[name]) == EPERM


def test_every_listed_syscall_is_denied(program: bytes) -> None:
    import pyseccomp

    for name in seccomp.DENIED_SYSCALLS:
        number = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)
        assert run_bpf(program, number, (1, 2, 3)) == EPERM, name


@pytest.mark.parametrize("name", ["read", "mmap", "openat", "fork"])
def test_ordinary_syscalls_allowed(program: bytes, name: str) -> None:
    assert run_bpf(program, NR[name], (3, 0, 0)) == ALLOW


def test_clone_namespaces_denied_threads_allowed(program: bytes) -> None:
    assert run_bpf(program, NR["clone"], (THREAD_FLAGS,)) == ALLOW
    assert run_bpf(program, NR["clone"], (17,)) == ALLOW  # fork-like clone with SIGCHLD
    for flag in seccomp.CLONE_NS_FLAGS:
        assert run_bpf(program, NR["clone"], (flag | 17,)) == EPERM, hex(flag)
        assert run_bpf(program, NR["unshare"], (flag,)) == EPERM, hex(flag)
    assert run_bpf(program, NR["unshare"], (seccomp.CLONE_NEWTIME,)) == EPERM
    assert run_bpf(program, NR["unshare"], (0x400,)) == ALLOW  # CLONE_FILES: no namespace


def test_clone3_is_enosys(program: bytes) -> None:
    assert run_bpf(program, NR["clone3"], (0, 88)) == ENOSYS


def test_ioctl_terminal_injection(program: bytes) -> None:
    for request in (seccomp.TIOCSTI, seccomp.TIOCLINUX):
        assert run_bpf(program, NR["ioctl"], (0, request)) == EPERM
        assert run_bpf(program, NR["ioctl"], (0, request | 1 << 32)) == EPERM  # high bits are ignored
    assert run_bpf(program, NR["ioctl"], (0, 0x5401)) == ALLOW  # TCGETS


@pytest.mark.parametrize(
    ("persona", "action"),
    [
        (0, ALLOW),
        (0xFFFFFFFF, ALLOW),
        (1 << 32, ALLOW),  # the kernel truncates to 32 bits: this is PER_LINUX
        (0x0008, EPERM),  # PER_LINUX32
        (0x0040000, EPERM),  # ADDR_NO_RANDOMIZE
        (0x0400000, EPERM),  # READ_IMPLIES_EXEC
        (0x7FFFFFFF, EPERM),
        (0xFFFFFFFE, EPERM),
        (0x80000000, EPERM),
        (0xFFFFFFFF00000008, EPERM),
    ],
)
def test_personality(program: bytes, persona: int, action: int) -> None:
    assert run_bpf(program, NR["personality"], (persona,)) == action


def test_foreign_architectures_killed(program: bytes) -> None:
    assert run_bpf(program, 20, arch=AUDIT_ARCH_I386) == KILL_PROCESS
    assert run_bpf(program, 0x40000000 | NR["read"]) == KILL_PROCESS  # x32 ABI
