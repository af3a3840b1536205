"""The first program inside every sandbox: apply limits, drop what is left of privilege, exec the server.

Runs as `/usr/bin/python3 -I -S main.py [options] -- server argv...` under whatever system python the
host has (Debian 12: 3.11), so: standard library only, nothing of ours, 3.9-compatible syntax, and only
cheap imports (it is on every cold start).

Options (all optional):
  --nofile N     RLIMIT_NOFILE (soft and hard)
  --fsize BYTES  RLIMIT_FSIZE
  --core BYTES   RLIMIT_CORE (0: no core dumps)
  --nproc N      RLIMIT_NPROC (fallback when the host has no pids cgroup)
  --ready-fd FD  write one byte there once checks passed, just before exec

Exit status 126 with one line on stderr when it refuses to run (root, capabilities, bad arguments);
127 when the server command cannot be found.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs milliseconds at start-up; only the type checker needs it
    from collections.abc import Callable
    from typing import NoReturn

PROG = "gigmcp-bootstrap"
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
EXIT_REFUSED = 126
EXIT_NOT_FOUND = 127

_RLIMIT_OPTIONS = {
    "--nofile": "RLIMIT_NOFILE",
    "--fsize": "RLIMIT_FSIZE",
    "--core": "RLIMIT_CORE",
    "--nproc": "RLIMIT_NPROC",
}


def fail(message: str, status: int = EXIT_REFUSED) -> NoReturn:
    try:
        os.write(2, f"{PROG}: {message}\n".encode("utf-8", "replace"))
    finally:
        os._exit(status)


def parse(argv: list[str]) -> tuple[dict[str, int], list[str]]:
    """Return ({option: int}, command). Strict: unknown options are refusals, not warnings."""
    options: dict[str, int] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            command = argv[i + 1 :]
            if not command:
                fail("no command after --")
            return options, command
        if arg not in _RLIMIT_OPTIONS and arg != "--ready-fd":
            fail(f"unknown option {arg!r}")
        if i + 1 >= len(argv):
            fail(f"option {arg} needs a value")
        try:
            value = int(argv[i + 1])
        except ValueError:
            fail(f"option {arg} needs an integer, got {argv[i + 1]!r}")
        if value < 0:
            fail(f"option {arg} must not be negative")
        options[arg] = value
        i += 2
    fail("missing -- before the command")


def check_unprivileged() -> None:
    """Refuse uid/gid 0 and any capability: the sandbox must never run the server privileged."""
    try:
        with open("/proc/self/status", "rb") as fh:
            status = fh.read().decode("ascii", "replace")
    except OSError as exc:
        fail(f"cannot read /proc/self/status: {exc.strerror}")
    fields: dict[str, list[str]] = {}
    for line in status.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.split()
    for key in ("Uid", "Gid"):
        ids = fields.get(key)
        if not ids:
            fail(f"no {key} line in /proc/self/status")
        if "0" in ids:
            fail(f"refusing to run with {key.lower()} 0 ({' '.join(ids)})")
    for key in ("CapEff", "CapPrm", "CapAmb"):
        caps = fields.get(key)
        if not caps:
            fail(f"no {key} line in /proc/self/status")
        if int(caps[0], 16) != 0:
            fail(f"refusing to run with capabilities ({key} {caps[0]})")


def _libc_prctl() -> Callable[[int, int], int]:
    """prctl(option, arg2, 0, 0, 0) -> errno (0 on success).

    Built on the `_ctypes` core instead of the `ctypes` package: importing `ctypes` costs about 3 ms
    of every sandbox start, the core a fraction of that. Falls back to `ctypes` if the core's
    interface ever changes.
    """
    try:
        import _ctypes

        class CInt(_ctypes._SimpleCData):  # type: ignore[type-arg]
            _type_ = "i"

        class CULong(_ctypes._SimpleCData):  # type: ignore[type-arg]
            _type_ = "L"

        class Function(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
            _restype_ = CInt

        class Process:
            _handle = _ctypes.dlopen(None, os.RTLD_NOW)  # type: ignore[arg-type]  # None: this process

        core = Function(("prctl", Process()))  # type: ignore[arg-type]  # any object with _handle
        core.argtypes = (CInt, CULong, CULong, CULong, CULong)

        def core_prctl(option: int, value: int) -> int:
            _ctypes.set_errno(0)
            return 0 if core(option, value, 0, 0, 0) == 0 else _ctypes.get_errno() or -1

        return core_prctl
    except (ImportError, AttributeError, TypeError, OSError):
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
        prctl.restype = ctypes.c_int
        prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong)

        def full_prctl(option: int, value: int) -> int:
            return 0 if prctl(option, value, 0, 0, 0) == 0 else ctypes.get_errno() or -1

        return full_prctl


def harden() -> None:
    """no_new_privs (no setuid or file-capability gains on exec) and not dumpable while we run.

    execve() makes a process dumpable again, so PR_SET_DUMPABLE protects only the bootstrap itself;
    the server is shielded from its peers by the pid namespace and the seccomp ptrace denial.
    """
    prctl = _libc_prctl()
    for option, value in ((PR_SET_NO_NEW_PRIVS, 1), (PR_SET_DUMPABLE, 0)):
        err = prctl(option, value)
        if err:
            fail(f"prctl({option}, {value}) failed: {os.strerror(err) if err > 0 else 'unknown error'}")


def apply_rlimits(options: dict[str, int]) -> None:
    import resource

    for option, name in _RLIMIT_OPTIONS.items():
        if option not in options:
            continue
        which = getattr(resource, name)
        value = options[option]
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY and hard < value:
            value = hard  # cannot raise a hard limit unprivileged; the lower one is stricter anyway
        try:
            # soft == hard: the server cannot raise it again
            resource.setrlimit(which, (value, value))
        except (OSError, ValueError) as exc:
            fail(f"setrlimit {name}={value} failed: {exc}")


def close_inherited_fds(keep: int | None) -> None:
    """Close every descriptor above stderr that bwrap or the gateway may have leaked in."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError as exc:
        fail(f"cannot list /proc/self/fd: {exc.strerror}")
    for fd in fds:
        if fd > 2 and fd != keep:
            try:  # noqa: SIM105 - contextlib would cost start-up time
                os.close(fd)
            except OSError:
                pass  # the directory fd listdir used is already closed


def reset_signals() -> None:
    # Python ignores SIGPIPE and SIGXFSZ at start-up; ignored dispositions survive exec, and the
    # server must see the defaults (EPIPE-only writers and RLIMIT_FSIZE would misbehave otherwise).
    import _signal

    for name in ("SIGPIPE", "SIGXFSZ"):
        signum = getattr(_signal, name, None)
        if signum is not None:
            _signal.signal(signum, _signal.SIG_DFL)


def main(argv: list[str]) -> None:
    options, command = parse(argv)
    check_unprivileged()
    harden()
    ready_fd = options.pop("--ready-fd", None)
    close_inherited_fds(ready_fd)
    apply_rlimits(options)
    reset_signals()
    if ready_fd is not None:
        try:
            os.write(ready_fd, b"R")
            os.close(ready_fd)
        except OSError as exc:
            fail(f"cannot signal readiness on fd {ready_fd}: {exc.strerror}")
    try:
        os.execvp(command[0], command)  # noqa: S606 - the command comes from the manifest, no shell
    except FileNotFoundError:
        fail(f"command not found: {command[0]}", EXIT_NOT_FOUND)
    except OSError as exc:
        fail(f"cannot execute {command[0]}: {exc.strerror}")


if __name__ == "__main__":
    main(sys.argv[1:])
