"""Static binaries: one executable, from a local file or an https URL, checked against its sha256."""

from __future__ import annotations

import asyncio
import os
import shutil
import urllib.request
from pathlib import Path

from gateway.installers.common import InstallError, Progress, check_sha256, local_file
from gateway.manifest import Manifest

MAX_BINARY_BYTES = 512 * 1024 * 1024


def program_name(manifest: Manifest) -> str:
    return os.path.basename(manifest.command[0])


def _download(url: str, dest: Path) -> None:
    total = 0
    with urllib.request.urlopen(url, timeout=60) as resp, dest.open("wb") as out:  # noqa: S310 - https only
        for chunk in iter(lambda: resp.read(1 << 20), b""):
            total += len(chunk)
            if total > MAX_BINARY_BYTES:
                raise InstallError(f"package.url: larger than {MAX_BINARY_BYTES} bytes")
            out.write(chunk)


async def install_binary(manifest: Manifest, work: Path, *, registry_dir: Path | None, say: Progress) -> None:
    bindir = work / "bin"
    bindir.mkdir()
    dest = bindir / program_name(manifest)
    package = manifest.package
    if package.url:
        say(f"{manifest.name}: downloading {package.url}")
        try:
            await asyncio.to_thread(_download, package.url, dest)
        except OSError as exc:
            raise InstallError(f"package.url: download failed: {exc}") from None
    else:
        shutil.copyfile(local_file(registry_dir, package.file), dest)
    check_sha256(dest, package.hashes, f"package.{'url' if package.url else 'file'}")
    os.chmod(dest, 0o755)
