"""MCP wiring: a low-level `mcp` Server whose tools come from the chosen surface."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.stdio import stdio_server

from . import __version__
from . import handlers as _handlers  # noqa: F401  (registers the custom handlers)
from .client import GitLabClient
from .config import Settings
from .executor import Executor, Outcome
from .policy import Policy
from .surfaces import Surface, ToolDef, make_surface

log = logging.getLogger(__name__)


@dataclass
class State:
    """Per-process state created in the server lifespan (the HTTP client binds to the running loop)."""

    executor: Executor
    client: GitLabClient


def to_tool(tool: ToolDef) -> types.Tool:
    return types.Tool(
        name=tool.name,
        description=tool.description,
        input_schema=tool.input_schema,
        annotations=types.ToolAnnotations(
            read_only_hint=tool.read_only,
            destructive_hint=tool.destructive,
            idempotent_hint=tool.idempotent,
            open_world_hint=True,
        ),
    )


def to_result(outcome: Outcome) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(text=outcome.text)],
        structured_content=outcome.structured,
        is_error=outcome.is_error,
    )


def build_server(settings: Settings, surface: Surface | None = None) -> Server[State]:
    """Build the MCP server; the GitLab client is created when a connection starts."""
    policy = Policy(settings)
    surface = surface or make_surface(settings.surface, policy)
    tool_list = [to_tool(t) for t in surface.tools()]
    tool_names = {t.name for t in tool_list}

    @asynccontextmanager
    async def lifespan(_: Server[State]) -> AsyncIterator[State]:
        client = GitLabClient(settings)
        try:
            yield State(Executor(settings, client, policy), client)
        finally:
            await client.aclose()

    async def on_list_tools(
        ctx: ServerRequestContext[State], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tool_list)

    async def on_call_tool(
        ctx: ServerRequestContext[State], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        executor = ctx.lifespan_context.executor
        if params.name not in tool_names:
            return to_result(
                executor.error(f"Unknown tool `{params.name}`.", f"Available: {', '.join(sorted(tool_names))[:500]}")
            )
        arguments: dict[str, Any] = dict(params.arguments or {})
        try:
            outcome = await surface.call(executor, params.name, arguments)
        except Exception as exc:  # a bug must not kill the session; report it as a tool error
            log.exception("tool %s failed", params.name)
            outcome = executor.error(f"Internal error in {params.name}: {type(exc).__name__}: {exc}")
        return to_result(outcome)

    return Server(
        "gigmcp-gitlab",
        version=__version__,
        title="GitLab",
        instructions=surface.instructions(),
        lifespan=lifespan,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
    )


async def serve_stdio(settings: Settings) -> None:
    server = build_server(settings)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())
