"""What every installer shares: running a step with progress, checking digests, permissions."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

Progress = Callable[[str], None]
HEARTBEAT_S = 5.0  # a long pip or npm run says it is still alive this often


class InstallError(RuntimeError):
    """An install failed; the message says which step and shows the tail of its output."""


async def run(argv: list[str], step: str, *, say: Progress, env: dict[str, str] | None = None,
              cwd: Path | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env, cwd=cwd
    )
    started = time.monotonic()

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            say(f"{step}: still running ({time.monotonic() - started:.0f}s)")

    beat = asyncio.create_task(heartbeat())
    try:
        out, _ = await proc.communicate()
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        if proc.returncode is None:  # cancelled: do not leave the step running behind us
            proc.kill()
            await proc.wait()
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        tail = text.strip().splitlines()[-8:]
        raise InstallError(f"{step} failed (exit {proc.returncode}): " + " | ".join(tail))
    return text


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def sri_sha512_of(path: Path) -> str:
    digest = hashlib.sha512()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def check_sha256(path: Path, expected: tuple[str, ...], what: str) -> None:
    actual = sha256_of(path)
    if actual not in expected:
        raise InstallError(f"{what}: sha256 mismatch (got {actual}, the manifest pins {', '.join(expected)})")


def make_readable(root: Path) -> None:
    # The sandbox runs as an unprivileged uid and must read (never write) the install.
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                mode = os.stat(p).st_mode
                os.chmod(p, (mode | 0o444 | (0o111 if mode & 0o100 else 0)) & 0o755)


def local_file(registry_dir: Path | None, relative: str) -> Path:
    path = Path(relative)
    if not path.is_absolute():
        if registry_dir is None:
            raise InstallError(f"package.file {relative}: this catalog has no local files")
        path = registry_dir / relative
    if not path.is_file():
        raise InstallError(f"package.file {relative}: no such file ({path})")
    return path
