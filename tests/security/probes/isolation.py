"""Runs INSIDE a sandbox (system python, standard library only) and prints one JSON object of findings.

Every check records what happened rather than asserting, so the test outside can report all of them.
Raw syscalls use x86_64 numbers; arguments are chosen so that an unfiltered kernel would answer with
a different errno than the seccomp filter's EPERM (bad pointers give EFAULT, bad fds EBADF), so a pass
proves the filter and not merely missing capabilities.

Usage: isolation.py CANARY_PATH DATABASE_PATH
"""

from __future__ import annotations

import ctypes
import errno
import json
import mmap
import os
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

SYS = {
    "ioctl": 16,
    "clone": 56,
    "ptrace": 101,
    "personality": 135,
    "mount": 165,
    "keyctl": 250,
    "unshare": 272,
    "perf_event_open": 298,
    "setns": 308,
    "bpf": 321,
    "userfaultfd": 323,
    "io_uring_setup": 425,
    "clone3": 435,
    "open_by_handle_at": 304,
    "kcmp": 312,
}
CLONE_NEWUSER = 0x10000000
SIGCHLD = 17
TIOCSTI = 0x5412
PTRACE_ATTACH = 16
PTRACE_DETACH = 17
ADDR_NO_RANDOMIZE = 0x0040000
BAD_POINTER = 1  # never mapped: an unfiltered kernel answers EFAULT


def syscall(name: str, *args: int) -> dict[str, object]:
    ctypes.set_errno(0)
    ret = libc.syscall(ctypes.c_long(SYS[name]), *(ctypes.c_long(a) for a in args))
    err = ctypes.get_errno()
    return {"ret": ret, "errno": errno.errorcode.get(err, str(err)) if ret == -1 else None}


def raw_clone_newuser() -> dict[str, object]:
    result = syscall("clone", CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0)
    if result["ret"] == 0:  # we are the child of a clone that should never have worked
        os._exit(0)
    if isinstance(result["ret"], int) and result["ret"] > 0:
        os.waitpid(int(result["ret"]), 0)
    return result


def ptrace_sibling() -> dict[str, object]:
    """PTRACE_ATTACH from one child to another (siblings under this process)."""
    target = subprocess.Popen(["/bin/sleep", "30"])
    code = (
        "import ctypes, errno, json, sys\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.ptrace.restype = ctypes.c_long\n"
        f"r = libc.ptrace(ctypes.c_long({PTRACE_ATTACH}), ctypes.c_long(int(sys.argv[1])), None, None)\n"
        "e = ctypes.get_errno()\n"
        f"r == 0 and libc.ptrace(ctypes.c_long({PTRACE_DETACH}), ctypes.c_long(int(sys.argv[1])), None, None)\n"
        "print(json.dumps({'ret': r, 'errno': errno.errorcode.get(e) if r == -1 else None}))\n"
    )
    try:
        out = subprocess.run([sys.executable, "-c", code, str(target.pid)], capture_output=True, text=True, timeout=10)
        return json.loads(out.stdout)
    finally:
        target.kill()
        target.wait()


def ioctl_tiocsti(high_bits: int) -> dict[str, object]:
    char = ctypes.c_char(b"x")
    ctypes.set_errno(0)
    ret = libc.syscall(
        ctypes.c_long(SYS["ioctl"]),
        ctypes.c_long(0),
        ctypes.c_long(TIOCSTI | high_bits),
        ctypes.byref(char),
    )
    err = ctypes.get_errno()
    return {"ret": ret, "errno": errno.errorcode.get(err, str(err)) if ret == -1 else None}


FOREIGN_ARCH = """
import ctypes, mmap
# i386 getpid through int 0x80: mov eax, 20; int 0x80; ret
code = bytes([0xB8, 20, 0, 0, 0, 0xCD, 0x80, 0xC3])
page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
page.write(code)
address = ctypes.addressof(ctypes.c_char.from_buffer(page))
print(ctypes.CFUNCTYPE(ctypes.c_int)(address)(), flush=True)
"""


def foreign_arch() -> dict[str, object]:
    """An i386 system call from a 64-bit process: the filter must kill the process (SIGSYS)."""
    out = subprocess.run([sys.executable, "-c", FOREIGN_ARCH], capture_output=True, text=True, timeout=10)
    return {"returncode": out.returncode, "stdout": out.stdout.strip()}


def try_open(path: str) -> str:
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return "readable"


def try_create(directory: str) -> str:
    path = os.path.join(directory, ".gigmcp-write-probe")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))
    os.close(fd)
    os.unlink(path)
    return "writable"


def status_fields() -> dict[str, str]:
    fields = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def interfaces() -> list[str]:
    with open("/proc/net/dev") as fh:
        return sorted(line.split(":")[0].strip() for line in fh.readlines()[2:])


def loopback() -> object:
    """True when 127.0.0.1 answers inside the sandbox (bwrap brings `lo` up; the gateway must not race it)."""
    try:
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen(1)
            socket.create_connection(server.getsockname(), timeout=2).close()
        return True
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def threads_and_subprocess() -> dict[str, object]:
    with ThreadPoolExecutor(4) as pool:
        squares = list(pool.map(lambda n: n * n, range(8)))
    thread = threading.Thread(target=lambda: None)
    thread.start()
    thread.join()
    out = subprocess.run(["/bin/echo", "child ok"], capture_output=True, text=True)
    return {"threads": squares == [n * n for n in range(8)], "subprocess": out.stdout.strip()}


def unshare_cli() -> dict[str, object]:
    out = subprocess.run(["/usr/bin/unshare", "-U", "true"], capture_output=True, text=True)
    return {"returncode": out.returncode, "stderr": out.stderr.strip()}


def main() -> None:
    canary, database = sys.argv[1], sys.argv[2]
    status = status_fields()
    results: dict[str, object] = {
        "uid": os.getuid(),
        "euid": os.geteuid(),
        "gid": os.getgid(),
        "groups": os.getgroups(),
        "cap_eff": status.get("CapEff"),
        "cap_prm": status.get("CapPrm"),
        "cap_bnd": status.get("CapBnd"),
        "no_new_privs": status.get("NoNewPrivs"),
        "seccomp_mode": status.get("Seccomp"),
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "env_keys": sorted(os.environ),
        "root_entries": sorted(os.listdir("/")),
        "etc_entries": sorted(os.listdir("/etc")),
        "proc_pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "canary": try_open(canary),
        "database": try_open(database),
        "shadow": try_open("/etc/shadow"),
        "root_home": os.path.exists("/root"),
        "interfaces": interfaces(),
        "loopback": loopback(),
        "usr_write": try_create("/usr"),
        "usr_bin_write": try_create("/usr/bin"),
        "app_write": try_create("/app"),
        "tmp_write": try_create("/tmp"),
        "home_write": try_create(os.environ.get("HOME", "/home/sandbox")),
        "unshare_cli": unshare_cli(),
        "clone_newuser": raw_clone_newuser(),
        "unshare_newuser": syscall("unshare", CLONE_NEWUSER),
        "mount": syscall("mount", BAD_POINTER, BAD_POINTER, BAD_POINTER, 0, 0),
        "setns": syscall("setns", -1, 0),
        "io_uring_setup": syscall("io_uring_setup", 1, BAD_POINTER),
        "bpf": syscall("bpf", 5, BAD_POINTER, 0),
        "keyctl": syscall("keyctl", 0, -3, 0),  # KEYCTL_GET_KEYRING_ID of the session keyring
        "perf_event_open": syscall("perf_event_open", BAD_POINTER, 0, -1, -1, 0),
        "userfaultfd": syscall("userfaultfd", 0),
        "open_by_handle_at": syscall("open_by_handle_at", -1, BAD_POINTER, 0),
        "kcmp": syscall("kcmp", os.getpid(), os.getpid(), 0, 0, 0),
        "clone3": syscall("clone3", BAD_POINTER, 88),
        "personality_query": syscall("personality", 0xFFFFFFFF),
        "personality_linux": syscall("personality", 0),
        "personality_no_aslr": syscall("personality", ADDR_NO_RANDOMIZE),
        "tiocsti": ioctl_tiocsti(0),
        "tiocsti_high_bits": ioctl_tiocsti(1 << 32),
        "ptrace_sibling": ptrace_sibling(),
        "foreign_arch": foreign_arch(),
        "threads_and_subprocess": threads_and_subprocess(),
        "mmap_ok": len(mmap.mmap(-1, 1 << 20)) == 1 << 20,
    }
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
