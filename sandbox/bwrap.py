"""The bubblewrap command line for one sandbox (pure: no I/O, same spec and fds give the same argv).

The sandbox gets a fresh tmpfs root with read-only `/usr` (merged-/usr symlinks for `/bin`, `/lib`...),
a few files of `/etc` (never `/etc` wholesale: it holds shadow, ssh keys, the gateway's config),
generated passwd/group/hosts, private `/proc`, `/dev`, `/tmp`, the spec's binds, and a clean environment.
The command is the bootstrap (system python, standard library only), which applies rlimits and
refuses to run with privileges before it execs the server.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

from sandbox import limits as limits_mod
from sandbox import users
from sandbox.spec import SandboxSpec

BOOTSTRAP_MOUNT = "/opt/gigmcp/bootstrap"
BOOTSTRAP_PYTHON = "/usr/bin/python3"
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
GENERATED_FILES = ("/etc/passwd", "/etc/group", "/etc/hosts")

# Host paths exposed read-only in every sandbox. Only what programs need to run and verify TLS.
_SYSTEM_BINDS = ("/etc/ssl/certs", "/etc/ld.so.cache")
_SYSTEM_BINDS_TRY = ("/etc/localtime", "/etc/nsswitch.conf", "/etc/alternatives")
_MERGED_USR_LINKS = (("usr/bin", "/bin"), ("usr/sbin", "/sbin"), ("usr/lib", "/lib"), ("usr/lib64", "/lib64"))

# A spec bind may not cover, shadow or sit inside these: they carry the sandbox's own structure.
_RESERVED = ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/proc", "/dev", "/etc", "/opt/gigmcp")
_RESERVED_EXACT = ("/", "/tmp", "/opt", "/home", "/home/sandbox")


def hosts_file(hostname: str) -> bytes:
    return f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n".encode()


def data_files(spec: SandboxSpec) -> dict[str, bytes]:
    """Every file mounted from memory: generated passwd/group/hosts, overridden by `spec.files`."""
    files = {
        "/etc/passwd": users.passwd_file(spec.uid, spec.gid),
        "/etc/group": users.group_file(spec.gid),
        "/etc/hosts": hosts_file(spec.hostname),
    }
    files.update(spec.files)
    return files


def _is_within(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


def _check_abs(path: str, what: str) -> None:
    if not path.startswith("/") or posixpath.normpath(path) != path or "\0" in path:
        raise ValueError(f"{what} must be an absolute, normalized path: {path!r}")


def _check_target(target: str) -> None:
    _check_abs(target, "bind target")
    if target in _RESERVED_EXACT:
        raise ValueError(f"bind target {target!r} is reserved by the sandbox layout")
    for reserved in _RESERVED:
        if _is_within(target, reserved) or _is_within(reserved, target):
            raise ValueError(f"bind target {target!r} overlaps the reserved sandbox path {reserved!r}")


def _check_env(env: Mapping[str, str]) -> None:
    for key, value in env.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise ValueError(f"invalid environment variable {key!r}")


def validate(spec: SandboxSpec) -> None:
    """Reject specs that bwrap would misinterpret or that would weaken the layout."""
    if not spec.name:
        raise ValueError("sandbox name is empty")
    if not spec.argv:
        raise ValueError(f"sandbox {spec.name}: empty command")
    if spec.uid <= 0 or spec.gid <= 0:
        raise ValueError(f"sandbox {spec.name}: refusing to run as uid/gid 0")
    if not spec.hostname or any(c.isspace() for c in spec.hostname) or "\0" in spec.hostname:
        raise ValueError(f"sandbox {spec.name}: invalid hostname {spec.hostname!r}")
    _check_abs(spec.cwd, "cwd")
    for bind in spec.binds:
        _check_abs(bind.source, "bind source")
        _check_target(bind.target)
    for path in spec.files:
        _check_abs(path, "file path")
    _check_env(spec.env)
    limits_mod.validate(spec.limits)


def environment(spec: SandboxSpec) -> dict[str, str]:
    """The whole environment inside: fixed base variables, then the spec's (which may override)."""
    env = {"PATH": SANDBOX_PATH, "HOME": users.SANDBOX_HOME, "LANG": "C.UTF-8", "TMPDIR": "/tmp"}
    env.update(spec.env)
    return env


def bootstrap_command(spec: SandboxSpec, *, ready_fd: int | None = None, rlimit_nproc: bool = False) -> list[str]:
    """The command bwrap runs: the bootstrap with its limit arguments, then `--` and the server argv."""
    cmd = [BOOTSTRAP_PYTHON, "-I", "-S", f"{BOOTSTRAP_MOUNT}/main.py"]
    cmd += limits_mod.bootstrap_args(spec.limits, nproc=rlimit_nproc)
    if ready_fd is not None:
        cmd += ["--ready-fd", str(ready_fd)]
    return [*cmd, "--", *spec.argv]


def build_argv(
    spec: SandboxSpec,
    *,
    seccomp_fd: int | None,
    info_fd: int,
    block_fd: int,
    data_fds: Mapping[str, int],
    bootstrap_dir: str,
    ready_fd: int | None = None,
    rlimit_nproc: bool = False,
    bwrap: str = "bwrap",
) -> list[str]:
    """The full bwrap argv.

    `data_fds` maps absolute paths inside the sandbox to readable descriptors (memfds) whose content
    bwrap copies into read-only files; it must cover /etc/passwd, /etc/group and /etc/hosts.
    `ready_fd` is passed to the bootstrap, which writes one byte on it once the sandbox is set up.
    `seccomp_fd` None means no filter (only when `spec.seccomp` is false).
    """
    validate(spec)
    _check_abs(bootstrap_dir, "bootstrap_dir")
    missing = [path for path in GENERATED_FILES if path not in data_fds]
    if missing:
        raise ValueError(f"data_fds lacks generated files: {', '.join(missing)}")
    if spec.seccomp and seccomp_fd is None:
        raise ValueError(f"sandbox {spec.name}: seccomp is required but no filter fd was given")

    argv = [
        bwrap,
        "--unshare-all",
        "--unshare-user",  # --unshare-all only tries the user namespace; require it
        "--disable-userns",
        "--die-with-parent",
        "--new-session",  # no controlling terminal: no TIOCSTI into the gateway's tty
        "--cap-drop",
        "ALL",
        "--uid",
        str(spec.uid),
        "--gid",
        str(spec.gid),
        "--hostname",
        spec.hostname,
        "--clearenv",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    for target, link in _MERGED_USR_LINKS:
        argv += ["--symlink", target, link]
    for path in _SYSTEM_BINDS:
        argv += ["--ro-bind", path, path]
    for path in _SYSTEM_BINDS_TRY:
        argv += ["--ro-bind-try", path, path]
    for path in sorted(data_fds):
        _check_abs(path, "data file path")
        argv += ["--ro-bind-data", str(data_fds[path]), path]
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", users.SANDBOX_HOME]
    argv += ["--ro-bind", bootstrap_dir, BOOTSTRAP_MOUNT]
    for bind in spec.binds:
        if bind.writable:
            flag = "--bind-try" if bind.optional else "--bind"
        else:
            flag = "--ro-bind-try" if bind.optional else "--ro-bind"
        argv += [flag, bind.source, bind.target]
    argv += ["--chdir", spec.cwd]
    for key, value in environment(spec).items():
        argv += ["--setenv", key, value]
    if spec.seccomp and seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    argv += ["--info-fd", str(info_fd), "--block-fd", str(block_fd)]
    argv += ["--", *bootstrap_command(spec, ready_fd=ready_fd, rlimit_nproc=rlimit_nproc)]
    return argv
