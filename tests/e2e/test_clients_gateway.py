"""Real MCP clients against the gateway: the npm inspector CLI and Claude Code itself."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.tools import claude_cmd, claude_env, inspector_cmd
from tests.support.gateway import TOKEN, Gateway, running_gateway

pytestmark = [pytest.mark.root, pytest.mark.node]


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with running_gateway() as gateway:
        yield gateway


def _inspector(gw: Gateway, tmp_path: Path, *args: str, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    cmd = [*inspector_cmd(), "--cli", gw.mcp_url, "--transport", "http",
           "--header", f"Authorization: Bearer {token}", *args, "--format", "json"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})


def test_inspector_lists_and_calls(gw: Gateway, tmp_path: Path) -> None:
    listed = _inspector(gw, tmp_path, "--method", "tools/list")
    assert listed.returncode == 0, listed.stderr
    names = [t["name"] for t in json.loads(listed.stdout)["result"]["tools"]]
    assert "echo_echo" in names and "echo_add" in names
    called = _inspector(gw, tmp_path, "--method", "tools/call", "--tool-name", "echo_add",
                        "--tool-arg", "a=20", "--tool-arg", "b=22")
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout)["result"]["structuredContent"] == {"result": 42}


def test_inspector_with_a_wrong_token_fails(gw: Gateway, tmp_path: Path) -> None:
    refused = _inspector(gw, tmp_path, "--method", "tools/list", token="wrong-token-wrong-token")
    assert refused.returncode != 0
    assert "echo_echo" not in refused.stdout


def _claude(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    project = home / "project"
    project.mkdir(exist_ok=True)
    return subprocess.run([*claude_cmd(), *args], capture_output=True, text=True, timeout=120, cwd=project,
                          env=claude_env(home))


def test_claude_code_connects_with_the_bearer_header(gw: Gateway, tmp_path: Path) -> None:
    added = _claude(tmp_path, "mcp", "add", "--transport", "http", "gig", gw.mcp_url,
                    "--header", f"Authorization: Bearer {TOKEN}")
    assert added.returncode == 0, added.stderr
    assert TOKEN not in added.stdout  # claude redacts the header when it echoes it
    listed = _claude(tmp_path, "mcp", "list")
    assert f"gig: {gw.mcp_url} (HTTP) - ✔ Connected" in listed.stdout, listed.stdout + listed.stderr


def test_claude_code_with_a_wrong_token_is_not_connected(gw: Gateway, tmp_path: Path) -> None:
    _claude(tmp_path, "mcp", "add", "--transport", "http", "gigbad", gw.mcp_url,
            "--header", "Authorization: Bearer wrong-token-wrong-token")
    listed = _claude(tmp_path, "mcp", "list")
    line = next((ln for ln in listed.stdout.splitlines() if ln.startswith("gigbad:")), "")
    assert line and "✔ Connected" not in line, listed.stdout
