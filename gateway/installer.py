"""Installs a server into its own directory under `GIG_DATA_DIR/servers/<name>@<version>/`.

Python servers get a venv built with the sandbox's interpreter (one under /usr, the only one a
sandbox can see). The install happens in a temporary sibling directory that is renamed into place
only when complete, so a failed or interrupted install leaves nothing half-installed, and a second
install of the same version is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.manifest import Manifest

log = logging.getLogger(__name__)
STAMP = ".gigmcp-installed"


class InstallError(RuntimeError):
    """An install failed; the message says which step and shows the tail of its output."""


@dataclass(frozen=True, slots=True)
class InstalledLayout:
    root: Path  # bound read-only into the sandbox at the same path

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    def resolve_command(self, manifest: Manifest) -> tuple[str, ...]:
        program, *args = manifest.command
        if manifest.runtime == "python" and "/" not in program:
            program = str(self.venv / "bin" / program)
        return (program, *args)


def install_dir(servers_dir: Path, manifest: Manifest) -> Path:
    return servers_dir / f"{manifest.name}@{manifest.version}"


async def _run(argv: list[str], step: str, env: dict[str, str] | None = None) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        tail = out.decode(errors="replace").strip().splitlines()[-8:]
        raise InstallError(f"{step} failed (exit {proc.returncode}): " + " | ".join(tail))


def _make_readable(root: Path) -> None:
    # The sandbox runs as an unprivileged uid and must read (never write) the install.
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                mode = os.stat(p).st_mode
                os.chmod(p, (mode | 0o444 | (0o111 if mode & 0o100 else 0)) & 0o755)


async def install(
    manifest: Manifest,
    *,
    servers_dir: Path,
    source_root: Path,
    python: str,
    progress: Callable[[str], None] | None = None,
) -> InstalledLayout:
    target = install_dir(servers_dir, manifest)
    stamp = target / STAMP
    if stamp.exists() and stamp.read_text().strip() == manifest.runtime_hash():
        return InstalledLayout(target)
    if manifest.runtime != "python":
        raise InstallError(f"{manifest.name}: runtime {manifest.runtime!r} installs are not supported yet")
    say = progress or (lambda _msg: None)
    servers_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(servers_dir, 0o755)
    # A venv's path is baked into its scripts, so it is built at its final path; the stamp written last
    # marks it complete, and a directory without the stamp (a crash mid-install) is rebuilt.
    if target.exists():
        shutil.rmtree(target)
    scratch = servers_dir / f".tmp-{manifest.name}@{manifest.version}-{uuid.uuid4().hex[:8]}"
    try:
        scratch.mkdir()
        target.mkdir()
        venv = target / "venv"
        say(f"{manifest.name}: creating venv")
        await _run([python, "-m", "venv", str(venv)], "python -m venv")
        pip = [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", "--no-input"]
        if manifest.package.path:
            src = (source_root / manifest.package.path).resolve()
            if not (src / "pyproject.toml").exists():
                raise InstallError(f"package.path {manifest.package.path}: no pyproject.toml at {src}")
            # Build from a private copy: pip writes build artifacts next to the sources.
            copy = scratch / "src"
            shutil.copytree(src, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".venv"))
            say(f"{manifest.name}: pip install {manifest.package.path}")
            await _run([*pip, str(copy)], "pip install")
        else:
            req = scratch / "requirements.txt"
            req.write_text(manifest.package.pypi + "".join(f" --hash={h}" for h in manifest.package.hashes) + "\n")
            say(f"{manifest.name}: pip install {manifest.package.pypi}")
            await _run([*pip, "--only-binary=:all:", "--require-hashes", "-r", str(req)], "pip install")
        _make_readable(target)
        stamp.write_text(manifest.runtime_hash() + "\n")
        os.chmod(stamp, 0o644)
        say(f"{manifest.name}: installed in {target}")
        return InstalledLayout(target)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
