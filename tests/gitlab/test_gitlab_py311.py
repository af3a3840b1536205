"""The server must also run on Debian's system Python 3.11 (the sandbox interpreter)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.fake_gitlab import Running

from .conftest import PROJECT, REPO_ROOT, env_for, run, text

PACKAGE = REPO_ROOT / "servers" / "gitlab" / "gigmcp_gitlab"
SYSTEM_PYTHON = Path("/usr/bin/python3")
_COMPILE = (
    "import pathlib, sys\n"
    "assert sys.version_info >= (3, 11), sys.version\n"
    "for f in sorted(pathlib.Path(sys.argv[1]).rglob('*.py')):\n"
    "    compile(f.read_text(), str(f), 'exec')\n"
    "print('ok', sys.version.split()[0])\n"
)


@pytest.mark.skipif(not SYSTEM_PYTHON.exists(), reason="no system python3")
def test_sources_compile_on_system_python() -> None:
    out = subprocess.run([str(SYSTEM_PYTHON), "-c", _COMPILE, str(PACKAGE)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok 3.")


@pytest.fixture(scope="module")
def py311_with_package(tmp_path_factory: pytest.TempPathFactory) -> str:
    """GITLAB_PY311_PYTHON if given, else a fresh venv of the system Python with gigmcp-gitlab installed
    (what the gateway builds for the sandbox)."""
    candidate = os.environ.get("GITLAB_PY311_PYTHON", "")
    if candidate and shutil.which(candidate):
        return candidate
    if not SYSTEM_PYTHON.exists():
        pytest.skip("no system python3 to build a venv with")
    root = tmp_path_factory.mktemp("py311")
    source = root / "src"
    # A private copy: pip writes build artifacts next to the sources.
    shutil.copytree(REPO_ROOT / "servers" / "gitlab", source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    subprocess.run([str(SYSTEM_PYTHON), "-m", "venv", str(root / "venv")], check=True, timeout=120)
    python = str(root / "venv" / "bin" / "python")
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(source)],
                   check=True, timeout=600, capture_output=True)
    return python


async def test_stdio_on_python311(fake: Running, py311_with_package: str) -> None:
    python = py311_with_package
    params = StdioServerParameters(command=python, args=["-m", "gigmcp_gitlab"], env=env_for(fake))
    async with Client(params, read_timeout_seconds=60) as client:
        result = await run(client, "mr_changed_files", {"project": PROJECT, "mr_iid": 1})
        assert not result.is_error, text(result)
        log = await run(client, "job_log", {"project": PROJECT, "job_id": 5012})
        assert log.structured_content["total_lines"] == 50_000
