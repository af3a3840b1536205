"""Fixtures: a fake GitLab on loopback, and MCP clients (in-process or over stdio) for the server."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_ROOT = REPO_ROOT / "servers" / "gitlab"
try:  # normally installed with `pip install -e servers/gitlab`; fall back to the source tree
    import gigmcp_gitlab  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    sys.path.insert(0, str(PACKAGE_ROOT))

from gigmcp_gitlab.config import Settings  # noqa: E402
from gigmcp_gitlab.server import build_server  # noqa: E402

from tests.fake_gitlab import Running, running_fake  # noqa: E402

TOKEN = "glpat-test-token"
PROJECT = "acme/platform/api"
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture
async def fake() -> AsyncIterator[Running]:
    async with running_fake() as running:
        yield running


def env_for(fake: Running, **overrides: str) -> dict[str, str]:
    """Server environment pointing at the fake; fast retries so error tests stay quick."""
    env = {
        "GITLAB_URL": fake.url,
        "GITLAB_TOKEN": TOKEN,
        "GITLAB_RETRY_BASE_DELAY": "0.01",
        "GITLAB_TIMEOUT": "20",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v != ""}


@asynccontextmanager
async def inproc(env: dict[str, str]) -> AsyncIterator[Client]:
    """An MCP client connected in-process to a server built from `env`."""
    server = build_server(Settings.from_env(env))
    async with Client(server) as client:
        yield client


def stdio_params(env: dict[str, str], console_script: bool = False) -> StdioServerParameters:
    """Launch the server as a subprocess speaking MCP over stdio."""
    child_env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS and not k.startswith("GITLAB_")}
    child_env.update(env)
    child_env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), str(PACKAGE_ROOT)])
    if console_script:
        script = Path(sys.executable).parent / "gigmcp-gitlab"
        if not script.exists():
            pytest.skip("console script missing: run `pip install -e servers/gitlab`")
        return StdioServerParameters(command=str(script), args=[], env=child_env, cwd=str(REPO_ROOT))
    return StdioServerParameters(
        command=sys.executable, args=["-m", "gigmcp_gitlab"], env=child_env, cwd=str(REPO_ROOT)
    )


@asynccontextmanager
async def over_stdio(env: dict[str, str], console_script: bool = False) -> AsyncIterator[Client]:
    async with Client(stdio_params(env, console_script), read_timeout_seconds=60) as client:
        yield client


async def run(client: Client, action: str, params: dict[str, Any] | None = None, **extra: Any) -> Any:
    """Call gitlab_execute (dynamic surface) and return the CallToolResult."""
    return await client.call_tool("gitlab_execute", {"action": action, "params": params or {}, **extra})


def text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)
