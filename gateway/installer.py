"""Installs a server into its own directory under `GIG_DATA_DIR/servers/<name>@<version>/`.

One directory per version: an upgrade installs beside the old version, which keeps serving until
the new one is consented and is never touched by it. An install is built in a temporary sibling
directory (Node, binaries) or at its final path (a venv bakes its path into its scripts), and a
stamp holding the runtime hash is written last: a failed or interrupted install leaves no stamp and
is removed, and installing a version whose stamp matches is a no-op. No package's install script
runs on the host (see `gateway.installers`).
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from gateway.installers.binary import install_binary
from gateway.installers.common import InstallError, Progress, make_readable
from gateway.installers.node import install_node
from gateway.installers.python import install_python
from gateway.manifest import Manifest

__all__ = ["STAMP", "InstallError", "InstalledLayout", "install", "install_dir"]

log = logging.getLogger(__name__)
STAMP = ".gigmcp-installed"
NODE = "/usr/bin/node"  # under /usr: the one Node a sandbox can see


@dataclass(frozen=True, slots=True)
class InstalledLayout:
    root: Path  # bound read-only into the sandbox at the same path

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    def resolve_command(self, manifest: Manifest) -> tuple[str, ...]:
        program, *args = manifest.command
        if "/" in program:
            return (program, *args)
        if manifest.runtime == "python":
            return (str(self.venv / "bin" / program), *args)
        if manifest.runtime == "node":
            # A package's bin is a script with a `#!/usr/bin/env node` line: run it with Node directly.
            script = os.path.realpath(self.root / "node_modules" / ".bin" / program)
            return (NODE, script, *args)
        return (str(self.root / "bin" / program), *args)


def install_dir(servers_dir: Path, manifest: Manifest) -> Path:
    return servers_dir / f"{manifest.name}@{manifest.version}"


def is_installed(servers_dir: Path, manifest: Manifest) -> bool:
    stamp = install_dir(servers_dir, manifest) / STAMP
    return stamp.exists() and stamp.read_text().strip() == manifest.runtime_hash()


async def install(
    manifest: Manifest,
    *,
    servers_dir: Path,
    source_root: Path,
    python: str,
    progress: Progress | None = None,
    registry_dir: Path | None = None,
    lock_text: str = "",
) -> InstalledLayout:
    target = install_dir(servers_dir, manifest)
    if is_installed(servers_dir, manifest):
        return InstalledLayout(target)
    say = progress or (lambda _msg: None)
    servers_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(servers_dir, 0o755)
    if target.exists():  # no matching stamp: a crashed install, or the same version with another manifest
        shutil.rmtree(target)
    scratch = servers_dir / f".tmp-{manifest.name}@{manifest.version}-{uuid.uuid4().hex[:8]}"
    try:
        scratch.mkdir()
        if manifest.runtime == "python":
            target.mkdir()
            await install_python(manifest, target, scratch, python=python, source_root=source_root,
                                 registry_dir=registry_dir, lock_text=lock_text, say=say)
        else:
            work = scratch / "install"
            work.mkdir()
            if manifest.runtime == "node":
                await install_node(manifest, work, registry_dir=registry_dir, lock_text=lock_text, say=say)
            else:
                await install_binary(manifest, work, registry_dir=registry_dir, say=say)
            work.rename(target)  # same filesystem: the finished tree appears at once
        make_readable(target)
        stamp = target / STAMP
        stamp.write_text(manifest.runtime_hash() + "\n")
        os.chmod(stamp, 0o644)
        say(f"{manifest.name}: installed in {target}")
        return InstalledLayout(target)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
