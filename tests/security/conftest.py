"""Fixtures for tests that run real sandboxes: the sandbox account, world-readable temp dirs, probes.

The sandbox runs as an unprivileged uid, so everything it must see is copied into directories that
uid can traverse (pytest's own tmp_path is 0700 root).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.spec import Bind, Limits, SandboxSpec
from sandbox.users import SandboxUser, lookup

PROBES = Path(__file__).parent / "probes"


def _kernel_feature_skip() -> str | None:
    """A reason to skip when the kernel cannot run unprivileged sandboxes at all."""
    try:
        if int(Path("/proc/sys/user/max_user_namespaces").read_text()) == 0:
            return "kernel: user namespaces disabled (user.max_user_namespaces = 0)"
    except (OSError, ValueError):
        return "kernel: no user namespace support (/proc/sys/user/max_user_namespaces missing)"
    clone_switch = Path("/proc/sys/kernel/unprivileged_userns_clone")
    if clone_switch.exists() and clone_switch.read_text().strip() == "0":
        return "kernel: unprivileged user namespaces disabled (kernel.unprivileged_userns_clone = 0)"
    return None


@pytest.fixture(scope="session")
def sandbox_user() -> SandboxUser:
    reason = _kernel_feature_skip()
    if reason is not None:
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    if shutil.which("bwrap", path="/usr/local/bin:/usr/bin:/bin") is None:
        pytest.fail("bubblewrap is not installed (scripts/test installs it): apt-get install bubblewrap")
    try:
        return lookup()
    except LookupError as exc:
        pytest.fail(f"{exc} (scripts/test creates it)")


def world_readable_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def world_tmp() -> Iterator[Path]:
    """A 0755 directory under /tmp for one test module (removed afterwards)."""
    path = world_readable_dir("gigmcp-sbtest-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def app_dir(world_tmp: Path, sandbox_user: SandboxUser) -> Path:
    """The probes, as a server install dir owned by the sandbox uid: only the read-only bind stops
    the sandbox from writing there."""
    app = world_tmp / "app"
    shutil.copytree(PROBES, app, ignore=shutil.ignore_patterns("__pycache__"))
    for path in (app, *app.rglob("*")):
        os.chown(path, sandbox_user.uid, sandbox_user.gid)
        path.chmod(0o755 if path.is_dir() else 0o644)
    return app


class SpecFactory:
    """Builds specs that run a command from the probes' app dir as the sandbox user."""

    def __init__(self, user: SandboxUser, app: Path) -> None:
        self.user = user
        self.app = app

    def __call__(
        self,
        *argv: str,
        name: str = "sbtest",
        limits: Limits | None = None,
        env: dict[str, str] | None = None,
    ) -> SandboxSpec:
        return SandboxSpec(
            name=name,
            argv=argv,
            uid=self.user.uid,
            gid=self.user.gid,
            binds=(Bind(str(self.app), "/app"),),
            env=env or {},
            cwd="/app",
            hostname="sbtest",
            limits=limits or Limits(),
        )


@pytest.fixture(scope="module")
def make_spec(sandbox_user: SandboxUser, app_dir: Path) -> SpecFactory:
    return SpecFactory(sandbox_user, app_dir)
