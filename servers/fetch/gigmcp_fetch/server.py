"""The fetch server's tools: an HTTP client that honours the proxy environment, plus network probes.

The probes (`connect`, `resolve`, `node_fetch`) exist so that tests can try, from inside a real
sandbox, every way around the egress proxy. Runs on the sandbox's Python (3.10+).
"""

from __future__ import annotations

import os
import socket
import subprocess
import urllib.error
import urllib.request
from typing import Any

from mcp.server.mcpserver import MCPServer

server = MCPServer("fetch", instructions="Fetch URLs through the sandbox's egress proxy.")
MAX_BODY = 64 * 1024


@server.tool(description="Fetch a URL and return status, headers and the start of the body.")
def fetch(url: str, method: str = "GET", headers: dict[str, str] | None = None, body: str | None = None,
          use_proxy: bool = True, timeout: float = 10.0, bearer_from_env: str = "") -> dict[str, Any]:
    headers = dict(headers or {})
    if bearer_from_env:
        # What a real server does with its token: read it from the environment and send it.
        headers["Authorization"] = f"Bearer {os.environ.get(bearer_from_env, '')}"
    handlers = [] if use_proxy else [urllib.request.ProxyHandler({})]
    opener = urllib.request.build_opener(*handlers)
    data = body.encode() if body is not None else None
    if not url.startswith(("http://", "https://")):
        return {"status": 0, "error": "only http:// and https:// URLs are fetched"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with opener.open(request, timeout=timeout) as resp:
            text = resp.read(MAX_BODY).decode(errors="replace")
            return {"status": resp.status, "headers": dict(resp.headers), "body": text}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "headers": dict(exc.headers), "body": exc.read(MAX_BODY).decode(errors="replace")}
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return {"status": 0, "error": f"{type(reason).__name__}: {reason}"}


@server.tool(description="Try a direct TCP connection (no proxy) and report what happened.")
def connect(host: str, port: int, timeout: float = 3.0) -> dict[str, Any]:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return {"connected": True}
    except OSError as exc:
        return {"connected": False, "error": f"{type(exc).__name__}: {exc}"}


@server.tool(description="Resolve a host name with the sandbox's resolver.")
def resolve(name: str) -> dict[str, Any]:
    try:
        return {"addresses": sorted({ai[4][0] for ai in socket.getaddrinfo(name, None)})}
    except OSError as exc:
        return {"addresses": [], "error": f"{type(exc).__name__}: {exc}"}


@server.tool(description="Fetch a URL with Node's built-in fetch (if node is available).")
def node_fetch(url: str, timeout: float = 15.0) -> dict[str, Any]:
    script = (
        "fetch(process.argv[1])"
        ".then(async r => { console.log(JSON.stringify({status: r.status, body: await r.text()})) })"
        ".catch(e => { console.log(JSON.stringify({status: 0, error: String(e && (e.cause || e))})) })"
    )
    try:
        out = subprocess.run(["node", "-e", script, url], capture_output=True, text=True, timeout=timeout,
                             env=dict(os.environ))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"status": 0, "error": f"{type(exc).__name__}: {exc}"}
    import json

    try:
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        return {"status": 0, "error": (out.stderr or out.stdout)[-500:]}


@server.tool(description="Report the network interfaces the sandbox can see.")
def interfaces() -> dict[str, list[str]]:
    # /sys is not mounted in a sandbox; the sandbox's own /proc lists its network namespace's devices.
    with open("/proc/net/dev") as fh:
        names = [line.split(":", 1)[0].strip() for line in fh.readlines()[2:] if ":" in line]
    return {"interfaces": sorted(names)}


def main() -> None:
    server.run("stdio")


if __name__ == "__main__":
    main()
