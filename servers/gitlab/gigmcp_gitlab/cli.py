"""Command line: `gigmcp-gitlab` serves MCP over stdio; `--list-tools` prints the tool list and its size."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

import anyio

from . import __version__
from .config import SURFACES, ConfigError, Settings
from .policy import PRESETS, Policy
from .server import serve_stdio, to_tool
from .surfaces import make_surface


def tools_payload(settings: Settings) -> str:
    """tools/list result as JSON, the way it goes over the wire."""
    import mcp_types as types

    surface = make_surface(settings.surface, Policy(settings))
    result = types.ListToolsResult(tools=[to_tool(t) for t in surface.tools()])
    return result.model_dump_json(by_alias=True, exclude_none=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gigmcp-gitlab", description="GitLab MCP server (stdio).")
    parser.add_argument("--gitlab-url", help="GitLab base URL (env GITLAB_URL)")
    parser.add_argument("--surface", choices=SURFACES, help="Tool surface (env GITLAB_TOOL_SURFACE)")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="Domain preset (env GITLAB_PRESET)")
    parser.add_argument("--read-only", action="store_true", help="Only read actions (env GITLAB_READ_ONLY)")
    parser.add_argument("--safe-mode", action="store_true", help="Preview writes (env GITLAB_SAFE_MODE)")
    parser.add_argument("--list-tools", action="store_true", help="Print tools/list JSON size and exit")
    parser.add_argument("--version", action="version", version=f"gigmcp-gitlab {__version__}")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("GITLAB_LOG_LEVEL", "WARNING").upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    env = dict(os.environ)
    for flag, var in (
        (args.gitlab_url, "GITLAB_URL"),
        (args.surface, "GITLAB_TOOL_SURFACE"),
        (args.preset, "GITLAB_PRESET"),
    ):
        if flag:
            env[var] = flag
    if args.read_only:
        env["GITLAB_READ_ONLY"] = "true"
    if args.safe_mode:
        env["GITLAB_SAFE_MODE"] = "true"
    try:
        settings = Settings.from_env(env)
        Policy(settings)
    except ConfigError as exc:
        print(f"gigmcp-gitlab: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.list_tools:
        payload = tools_payload(settings)
        count = len(json.loads(payload)["tools"])
        print(
            json.dumps(
                {
                    "surface": settings.surface,
                    "tools": count,
                    "bytes": len(payload.encode()),
                    "approx_tokens": len(payload.encode()) // 4,
                }
            )
        )
        return
    if not settings.token and not settings.token_placeholder:
        logging.getLogger("gigmcp_gitlab").info(
            "GITLAB_TOKEN is unset: requests carry no auth header (expected behind an injecting egress proxy)"
        )
    anyio.run(serve_stdio, settings)


if __name__ == "__main__":
    main()
