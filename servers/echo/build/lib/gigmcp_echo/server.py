"""The echo server's tools. Runs over stdio; written for Python 3.10+ (it runs on the sandbox's Python)."""

from __future__ import annotations

import asyncio
import os
import socket
import sys

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("echo", instructions="Echo and arithmetic tools for testing gigmcp.")
_extra_tool_enabled = False


@server.tool(description="Return the message unchanged.")
def echo(message: str) -> str:
    return message


@server.tool(description="Add two integers.")
def add(a: int, b: int) -> int:
    return a + b


@server.tool(description="Count to `steps`, sending a progress notification for each step.")
async def progress(steps: int, ctx: Context, delay: float = 0.01) -> str:
    for i in range(1, steps + 1):
        await ctx.report_progress(i, steps, f"step {i} of {steps}")
        await asyncio.sleep(delay)
    return f"done {steps} steps"


@server.tool(description="Emit a log message at the given level, then return it.")
async def log(message: str, ctx: Context, level: str = "info") -> str:
    await ctx.log(level, message, logger="echo")  # type: ignore[arg-type]
    return f"logged {message}"


@server.tool(description="Sleep for `seconds` (for cancellation and timeout tests).")
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@server.tool(description="Report who and where this process is: uid, pid, hostname, cwd.")
def whoami() -> dict[str, object]:
    return {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "cwd": os.getcwd(),
        "env_keys": sorted(os.environ),
    }


@server.tool(description="Exit the server process immediately (for crash tests).")
def crash(code: int = 3) -> str:
    sys.stdout.flush()
    os._exit(code)


@server.tool(description="Add or remove the `extra` tool and tell the client the tool list changed.")
async def toggle_extra(ctx: Context) -> str:
    global _extra_tool_enabled
    _extra_tool_enabled = not _extra_tool_enabled
    if _extra_tool_enabled:
        server.add_tool(lambda: "extra!", name="extra", description="A tool that comes and goes.")
    else:
        server.remove_tool("extra")
    await ctx.session.send_tool_list_changed()
    return "extra on" if _extra_tool_enabled else "extra off"


@server.resource("echo://greeting", description="A static greeting.")
def greeting() -> str:
    return "hello from echo"


@server.prompt(description="Ask the model to echo a word.")
def say(word: str) -> str:
    return f"Please echo the word: {word}"


def main() -> None:
    server.run("stdio")


if __name__ == "__main__":
    main()
