"""bootstrap/main.py run directly (outside any sandbox) under the system python: argument handling,
refusal of privilege, rlimits, descriptor hygiene, readiness byte, exec."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.users import SANDBOX_USER, lookup

BOOTSTRAP = Path(__file__).resolve().parents[2] / "bootstrap" / "main.py"
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
STDLIB_ONLY = {"__future__", "os", "sys", "typing", "collections.abc", "ctypes", "_ctypes", "resource", "_signal"}


def unprivileged() -> dict[str, object]:
    """Popen arguments that run the bootstrap as an unprivileged user."""
    if os.geteuid() != 0:
        return {}
    try:
        user = lookup()
    except LookupError as exc:
        pytest.fail(f"{exc} (scripts/test creates {SANDBOX_USER})")
    return {"user": user.uid, "group": user.gid, "extra_groups": []}


def run(*args: str, **popen: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [PYTHON, "-I", "-S", str(BOOTSTRAP), *args],
        capture_output=True,
        text=True,
        timeout=20,
        cwd="/",
        env={"PATH": "/usr/bin:/bin"},
        **popen,
    )


def test_standard_library_only_and_old_python_syntax() -> None:
    tree = ast.parse(BOOTSTRAP.read_text(), feature_version=(3, 9))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert imported <= STDLIB_ONLY, imported - STDLIB_ONLY


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nofile", "64"], "missing --"),
        (["--nofile", "64", "--"], "no command"),
        (["--bogus", "1", "--", "/bin/true"], "unknown option"),
        (["--nofile", "many", "--", "/bin/true"], "needs an integer"),
        (["--nofile", "-1", "--", "/bin/true"], "must not be negative"),
        (["--nofile"], "needs a value"),
    ],
)
def test_bad_arguments_refused(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 126
    assert result.stdout == ""
    assert result.stderr.startswith("gigmcp-bootstrap: ") and message in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.root
def test_refuses_root() -> None:
    result = run("--", "/bin/echo", "must not run")
    assert result.returncode == 126
    assert result.stdout == ""
    assert "refusing to run with uid 0" in result.stderr


@pytest.mark.root
def test_refuses_capabilities() -> None:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("setpriv (util-linux) is missing")
    user = lookup()
    result = subprocess.run(
        [
            setpriv,
            f"--reuid={user.uid}",
            f"--regid={user.gid}",
            "--clear-groups",
            "--inh-caps=+net_bind_service",
            "--ambient-caps=+net_bind_service",
            PYTHON,
            "-I",
            "-S",
            str(BOOTSTRAP),
            "--",
            "/bin/echo",
            "must not run",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        cwd="/",
    )
    assert result.returncode == 126, result
    assert "refusing to run with capabilities" in result.stderr


def test_applies_limits_closes_fds_signals_ready_and_execs() -> None:
    ready_r, ready_w = os.pipe()
    leak_r, leak_w = os.pipe()
    script = (
        "ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; "
        "grep -E '^(SigIgn|NoNewPrivs)' /proc/self/status; "
        "grep -E '^Max (open files|file size|core file size|processes) ' /proc/self/limits"
    )
    try:
        result = run(
            "--nofile",
            "64",
            "--fsize",
            str(1 << 20),
            "--core",
            "0",
            "--nproc",
            "4096",
            "--ready-fd",
            str(ready_w),
            "--",
            "/bin/sh",
            "-c",
            script,
            pass_fds=(ready_w, leak_w),
            **unprivileged(),
        )
        os.close(ready_w)
        os.close(leak_w)
        ready = os.read(ready_r, 16)
    finally:
        for fd in (ready_r, leak_r):
            os.close(fd)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["0", "1", "2", "3"]  # only stdio and ls's own directory fd
    assert lines[1].split() == ["SigIgn:", "0000000000000000"]
    assert lines[2].split() == ["NoNewPrivs:", "1"]
    limits = {" ".join(line.split()[:-3]): line.split()[-3:-1] for line in lines[3:]}
    assert limits == {
        "Max file size": [str(1 << 20)] * 2,
        "Max core file size": ["0", "0"],
        "Max processes": ["4096", "4096"],
        "Max open files": ["64", "64"],
    }
    assert ready == b"R"


def test_missing_command() -> None:
    result = run("--", "/nonexistent/server", **unprivileged())
    assert result.returncode == 127
    assert result.stderr == "gigmcp-bootstrap: command not found: /nonexistent/server\n"
