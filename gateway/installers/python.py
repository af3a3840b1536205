"""Python servers: a venv built with the sandbox's interpreter, filled by pip from wheels only.

A PyPI package or a local wheel is installed with `--only-binary=:all: --require-hashes` from a
requirements file whose every line is pinned by hash (the manifest's lock, or the single artifact):
an sdist, whose build would run its `setup.py` on the host, is refused by pip, and so is any file
whose hash differs. A local source directory (the servers this project ships) is built from a copy.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from gateway.installers.common import InstallError, Progress, check_sha256, local_file, run
from gateway.manifest import Manifest

# The operator's pip configuration (mirrors, certificates) applies: every file is checked by hash anyway.
PIP_ENV = {"PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
# A lock line is `name==version --hash=sha256:...` and nothing else. pip applies `--only-binary` to
# index lookups only: a local path or URL in a requirements file would be built from source, setup.py
# and all, so such lines (and options such as --index-url or -e) are refused before pip sees them.
LOCK_LINE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?==[0-9A-Za-z.!+-]+"
                          r"(\s+--hash=sha256:[0-9a-f]{64})+$")


def check_lock(lock_text: str) -> None:
    for number, line in enumerate(lock_text.splitlines(), 1):
        text = "" if line.lstrip().startswith("#") else line.strip()
        if text and not LOCK_LINE_RE.match(text):
            raise InstallError(f"package.lock line {number}: {text[:80]!r} is not 'name==version --hash=sha256:...'")


def _requirements(manifest: Manifest, lock_text: str, wheel: Path | None) -> str:
    package = manifest.package
    pinned = " ".join(f"--hash={h}" for h in package.hashes)
    top = f"{wheel} {pinned}" if wheel is not None else f"{package.pypi} {pinned}"
    if not lock_text:
        return top + "\n"
    # The lock pins every dependency; the package itself comes from the manifest's own pinned line.
    name = (package.pypi.split("==")[0] if package.pypi else wheel.name.split("-")[0] if wheel else "")
    normal = name.lower().replace("_", "-")
    lines = [ln for ln in lock_text.splitlines()
             if not ln.strip().lower().replace("_", "-").startswith(normal + "==")]
    return top + "\n" + "\n".join(lines) + "\n"


async def install_python(manifest: Manifest, target: Path, scratch: Path, *, python: str, source_root: Path,
                         registry_dir: Path | None, lock_text: str, say: Progress) -> None:
    env = {**os.environ, **PIP_ENV}
    venv = target / "venv"
    say(f"{manifest.name}: creating venv")
    await run([python, "-m", "venv", str(venv)], "python -m venv", say=say)
    pip = [str(venv / "bin" / "pip"), "install", "-q"]
    package = manifest.package
    if package.path:
        src = (source_root / package.path).resolve()
        if not (src / "pyproject.toml").exists():
            raise InstallError(f"package.path {package.path}: no pyproject.toml at {src}")
        # Build from a private copy: pip writes build artifacts next to the sources.
        copy = scratch / "src"
        shutil.copytree(src, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".venv"))
        say(f"{manifest.name}: pip install {package.path}")
        await run([*pip, str(copy)], "pip install", say=say, env=env)
        return
    check_lock(lock_text)
    wheel = None
    if package.file:
        source = local_file(registry_dir, package.file)
        if not source.name.endswith(".whl"):
            raise InstallError(f"package.file {package.file}: only wheels are installed, never an sdist")
        wheel = scratch / source.name
        shutil.copyfile(source, wheel)
        check_sha256(wheel, package.hashes, f"package.file {package.file}")
    req = scratch / "requirements.txt"
    req.write_text(_requirements(manifest, lock_text, wheel))
    say(f"{manifest.name}: pip install {package.pypi or package.file} (wheels only, hashes required)")
    await run([*pip, "--only-binary=:all:", "--require-hashes", "-r", str(req)], "pip install", say=say, env=env)
