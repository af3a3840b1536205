"""The bwrap argv is pure: check every flag, the filesystem layout, the environment and validation."""

from __future__ import annotations

import dataclasses

import pytest

from sandbox import bwrap
from sandbox.spec import Bind, Limits, SandboxSpec

FDS = {"/etc/passwd": 10, "/etc/group": 11, "/etc/hosts": 12}


def make_spec(**changes: object) -> SandboxSpec:
    spec = SandboxSpec(
        name="echo",
        argv=("/app/venv/bin/python", "-m", "echo_server"),
        uid=999,
        gid=995,
        binds=(Bind("/srv/gigmcp/servers/echo", "/app"), Bind("/srv/data/echo", "/home/sandbox/data", writable=True)),
        env={"HTTPS_PROXY": "http://10.88.0.1:3128", "PATH": "/app/venv/bin:/usr/bin:/bin"},
        files={"/etc/sandbox-ca.pem": b"-----BEGIN CERTIFICATE-----\n"},
        cwd="/app",
        hostname="echo",
        limits=Limits(memory_mb=256, pids=64, nofile=512, fsize_mb=100),
    )
    return dataclasses.replace(spec, **changes)  # type: ignore[arg-type]


def build(spec: SandboxSpec | None = None, **kwargs: object) -> list[str]:
    options: dict[str, object] = {
        "seccomp_fd": 9,
        "info_fd": 7,
        "block_fd": 8,
        "data_fds": {**FDS, "/etc/sandbox-ca.pem": 13},
        "bootstrap_dir": "/opt/gigmcp-src/bootstrap",
    }
    options.update(kwargs)
    return bwrap.build_argv(spec or make_spec(), **options)  # type: ignore[arg-type]


def options_of(argv: list[str]) -> list[str]:
    """bwrap's own options: everything before the first `--`."""
    return argv[: argv.index("--")] if "--" in argv else argv


def pairs(argv: list[str], flag: str, arity: int) -> list[tuple[str, ...]]:
    opts = options_of(argv)
    return [tuple(opts[i + 1 : i + 1 + arity]) for i, a in enumerate(opts) if a == flag]


def test_isolation_flags_present() -> None:
    opts = options_of(build())
    for flag in (
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--clearenv",
    ):
        assert flag in opts, flag
    assert pairs(opts, "--cap-drop", 1) == [("ALL",)]
    assert pairs(opts, "--uid", 1) == [("999",)]  # same uid inside as on the host
    assert pairs(opts, "--gid", 1) == [("995",)]
    assert pairs(opts, "--hostname", 1) == [("echo",)]
    assert "--share-net" not in opts


def test_system_layout() -> None:
    argv = build()
    assert ("/usr", "/usr") in pairs(argv, "--ro-bind", 2)
    assert set(pairs(argv, "--symlink", 2)) == {
        ("usr/bin", "/bin"),
        ("usr/sbin", "/sbin"),
        ("usr/lib", "/lib"),
        ("usr/lib64", "/lib64"),
    }
    ro = pairs(argv, "--ro-bind", 2)
    assert ("/etc/ssl/certs", "/etc/ssl/certs") in ro
    assert ("/etc/ld.so.cache", "/etc/ld.so.cache") in ro
    assert set(pairs(argv, "--ro-bind-try", 2)) == {
        ("/etc/localtime", "/etc/localtime"),
        ("/etc/nsswitch.conf", "/etc/nsswitch.conf"),
        ("/etc/alternatives", "/etc/alternatives"),
    }
    assert pairs(argv, "--proc", 1) == [("/proc",)]
    assert pairs(argv, "--dev", 1) == [("/dev",)]
    assert pairs(argv, "--tmpfs", 1) == [("/tmp",)]
    assert pairs(argv, "--dir", 1) == [("/home/sandbox",)]
    assert pairs(argv, "--chdir", 1) == [("/app",)]


def test_generated_files_from_memory() -> None:
    data = pairs(build(), "--ro-bind-data", 2)
    assert set(data) == {
        ("10", "/etc/passwd"),
        ("11", "/etc/group"),
        ("12", "/etc/hosts"),
        ("13", "/etc/sandbox-ca.pem"),
    }


def test_no_host_secrets_exposed() -> None:
    argv = build()
    opts = options_of(argv)
    sources = {
        src
        for flag in ("--ro-bind", "--bind", "--ro-bind-try", "--bind-try", "--dev-bind")
        for src, _ in pairs(argv, flag, 2)
    }
    assert "/etc" not in sources and "/" not in sources
    assert not any(src == "/root" or src.startswith("/root/") for src in sources)
    assert not any(src.startswith("/etc/ssl/private") or src == "/etc/ssl" for src in sources)
    assert "/etc/shadow" not in " ".join(opts)
    assert "/etc/passwd" not in sources and "/etc/group" not in sources  # generated, never the host's


def test_spec_binds_and_bootstrap_mount() -> None:
    argv = build()
    assert ("/srv/gigmcp/servers/echo", "/app") in pairs(argv, "--ro-bind", 2)
    assert ("/srv/data/echo", "/home/sandbox/data") in pairs(argv, "--bind", 2)
    assert ("/opt/gigmcp-src/bootstrap", "/opt/gigmcp/bootstrap") in pairs(argv, "--ro-bind", 2)
    optional = make_spec(
        binds=(Bind("/srv/x", "/opt/x", optional=True), Bind("/srv/y", "/data", writable=True, optional=True))
    )
    argv = build(optional)
    assert pairs(argv, "--ro-bind-try", 2)[-1] == ("/srv/x", "/opt/x")
    assert pairs(argv, "--bind-try", 2) == [("/srv/y", "/data")]


def test_environment() -> None:
    env = dict(pairs(build(), "--setenv", 2))  # type: ignore[arg-type]
    assert env == {
        "PATH": "/app/venv/bin:/usr/bin:/bin",  # the spec may override the base PATH
        "HOME": "/home/sandbox",
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp",
        "HTTPS_PROXY": "http://10.88.0.1:3128",
    }
    assert "--clearenv" in build()


def test_fds() -> None:
    argv = build(ready_fd=6)
    assert pairs(argv, "--seccomp", 1) == [("9",)]
    assert pairs(argv, "--info-fd", 1) == [("7",)]
    assert pairs(argv, "--block-fd", 1) == [("8",)]
    command = argv[argv.index("--") + 1 :]
    assert command[command.index("--ready-fd") + 1] == "6"


def test_no_seccomp_only_when_spec_says_so() -> None:
    assert "--seccomp" not in build(make_spec(seccomp=False), seccomp_fd=None)
    with pytest.raises(ValueError, match="seccomp"):
        build(seccomp_fd=None)


def test_bootstrap_command() -> None:
    argv = build(rlimit_nproc=True)
    assert argv[0] == "bwrap"
    command = argv[argv.index("--") + 1 :]
    assert command[:4] == ["/usr/bin/python3", "-I", "-S", "/opt/gigmcp/bootstrap/main.py"]
    boot_args = command[4 : command.index("--", 4)]
    assert boot_args == ["--nofile", "512", "--fsize", str(100 << 20), "--core", "0", "--nproc", "64"]
    assert command[command.index("--", 4) + 1 :] == ["/app/venv/bin/python", "-m", "echo_server"]
    assert "--nproc" not in build(rlimit_nproc=False)


def test_server_argv_is_never_parsed_as_options() -> None:
    spec = make_spec(argv=("--seccomp", "0", "--bind", "/", "/x"))
    argv = build(spec)
    first = argv.index("--")
    assert argv.count("--seccomp") == 2 and argv.index("--seccomp") < first  # ours, then the server's
    assert argv[-5:] == ["--seccomp", "0", "--bind", "/", "/x"]


def test_deterministic() -> None:
    assert build() == build()


def test_data_files_generated() -> None:
    files = bwrap.data_files(make_spec())
    assert files["/etc/passwd"].startswith(b"sandbox:x:999:995:")
    assert b"root" not in files["/etc/passwd"]
    assert files["/etc/group"].startswith(b"sandbox:x:995:")
    assert b"127.0.0.1\tlocalhost" in files["/etc/hosts"] and b"\techo\n" in files["/etc/hosts"]
    assert files["/etc/sandbox-ca.pem"].startswith(b"-----BEGIN")
    overridden = bwrap.data_files(make_spec(files={"/etc/hosts": b"custom\n"}))
    assert overridden["/etc/hosts"] == b"custom\n"


def test_generated_files_required() -> None:
    with pytest.raises(ValueError, match="/etc/hosts"):
        build(data_fds={"/etc/passwd": 3, "/etc/group": 4})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"uid": 0}, "uid/gid 0"),
        ({"gid": 0}, "uid/gid 0"),
        ({"argv": ()}, "empty command"),
        ({"name": ""}, "name"),
        ({"cwd": "app"}, "cwd"),
        ({"hostname": "a b"}, "hostname"),
        ({"binds": (Bind("/srv/x", "/"),)}, "reserved"),
        ({"binds": (Bind("/srv/x", "/etc"),)}, "reserved"),
        ({"binds": (Bind("/srv/x", "/etc/ssl/certs"),)}, "reserved"),
        ({"binds": (Bind("/srv/x", "/usr/local"),)}, "reserved"),
        ({"binds": (Bind("/srv/x", "/opt/gigmcp/bootstrap"),)}, "reserved"),
        ({"binds": (Bind("/srv/x", "/opt"),)}, "reserved"),
        ({"binds": (Bind("/srv/x", "/proc/1"),)}, "reserved"),
        ({"binds": (Bind("/srv/x", "/home/sandbox"),)}, "reserved"),
        ({"binds": (Bind("/srv/x", "/app/../etc"),)}, "normalized"),
        ({"binds": (Bind("srv", "/app"),)}, "absolute"),
        ({"env": {"": "x"}}, "environment"),
        ({"env": {"A": "x\0y"}}, "environment"),
        ({"files": {"etc/x": b""}}, "absolute"),
        ({"limits": Limits(memory_mb=0)}, "memory_mb"),
    ],
)
def test_invalid_specs(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build(make_spec(**changes))


def test_bootstrap_dir_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="bootstrap_dir"):
        build(bootstrap_dir="bootstrap")
