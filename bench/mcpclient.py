"""A light MCP client on aiohttp for both protocol eras, so the load generator costs less CPU than the SDK's.

`legacy`: 2025-11-25 with `initialize` and an `Mcp-Session-Id`. `modern`: 2026-07-28, stateless: every
request carries `MCP-Protocol-Version`, `Mcp-Method` (and `Mcp-Name` for named methods) and the
`io.modelcontextprotocol/*` envelope in `params._meta`, exactly as the SDK's client sends them.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import aiohttp

LEGACY = "2025-11-25"
MODERN = "2026-07-28"
ERAS = {"legacy": LEGACY, "modern": MODERN}
NAMED = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
CLIENT_INFO = {"name": "gigmcp-bench", "version": "1"}


class McpError(RuntimeError):
    pass


def parse_reply(status: int, data: bytes, request_id: int) -> dict[str, Any]:
    """The JSON-RPC response to `request_id` from a JSON body or an SSE stream."""
    if status != 200:
        raise McpError(f"HTTP {status}: {data[:200]!r}")
    text = data.strip()
    if text.startswith(b"{"):
        msg = json.loads(text)
        if isinstance(msg, dict) and msg.get("id") == request_id:
            return msg
    for line in data.splitlines():
        if line.startswith(b"data:") and line[5:].strip():
            msg = json.loads(line[5:])
            if isinstance(msg, dict) and msg.get("id") == request_id:
                return msg
    raise McpError(f"no response to request {request_id}: {data[:200]!r}")


class RawMcp:
    """One client: a legacy session (after `open`) or a stateless modern-era caller."""

    def __init__(self, http: aiohttp.ClientSession, url: str, token: str, era: str = "legacy") -> None:
        if era not in ERAS:
            raise ValueError(f"era must be one of {sorted(ERAS)}")
        self.http, self.url, self.era = http, url, era
        self.sid = ""
        self._ids = itertools.count(1)
        self._base = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream",
                      "Content-Type": "application/json"}

    async def open(self) -> RawMcp:
        if self.era != "legacy":
            return self
        body = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": LEGACY, "capabilities": {}, "clientInfo": CLIENT_INFO}}
        async with self.http.post(self.url, json=body, headers=self._base) as r:
            await r.read()
            if r.status != 200:
                raise McpError(f"initialize: HTTP {r.status}")
            self.sid = r.headers["mcp-session-id"]
        async with self.http.post(self.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                                  headers=self._session_headers()) as r:
            await r.read()
        return self

    async def close(self) -> None:
        """End a legacy session (DELETE), so a long benchmark does not pile up sessions in the gateway."""
        if self.era == "legacy" and self.sid:
            async with self.http.delete(self.url, headers=self._session_headers()) as r:
                await r.read()
            self.sid = ""

    def _session_headers(self) -> dict[str, str]:
        return {**self._base, "Mcp-Session-Id": self.sid, "MCP-Protocol-Version": LEGACY}

    def request_parts(self, method: str, params: dict[str, Any] | None) -> tuple[int, bytes, dict[str, str]]:
        request_id = next(self._ids)
        params = dict(params or {})
        if self.era == "legacy":
            headers = self._session_headers()
        else:
            params["_meta"] = {**params.get("_meta", {}), "io.modelcontextprotocol/protocolVersion": MODERN,
                               "io.modelcontextprotocol/clientCapabilities": {},
                               "io.modelcontextprotocol/clientInfo": CLIENT_INFO}
            headers = {**self._base, "MCP-Protocol-Version": MODERN, "Mcp-Method": method}
            named = NAMED.get(method)
            if named and isinstance(params.get(named), str):
                headers["Mcp-Name"] = params[named]
        body = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}).encode()
        return request_id, body, headers

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        request_id, body, headers = self.request_parts(method, params)
        async with self.http.post(self.url, data=body, headers=headers) as r:
            data = await r.read()
            msg = parse_reply(r.status, data, request_id)
        if "error" in msg:
            raise McpError(f"{method}: {msg['error']}")
        result = msg.get("result")
        if not isinstance(result, dict):
            raise McpError(f"{method}: no result")
        if result.get("isError"):
            raise McpError(f"{method}: tool error {str(result)[:200]}")
        return result

    async def call(self, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.request("tools/call", {"name": tool, "arguments": arguments or {}})
