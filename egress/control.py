"""Control channel between the gateway and the proxy process.

Newline-delimited JSON over a Unix socket (mode 0600, in a 0700 directory). The gateway sends
requests `{"id": N, "op": ..., ...}` and gets `{"id": N, "ok": true, ...}` or
`{"id": N, "ok": false, "error": "..."}` back. The proxy pushes events without an id:
`{"event": "audit", "record": {...}}` and `{"event": "secret_request", "rid": K, "sandbox_id": ...,
"credential_id": ...}`, which the gateway answers with `{"op": "secret", "rid": K, "value": ...}`.

Ops: `ping`, `bind` (sandbox_ip, host_ip, port, policy, optional inline secrets), `unbind`,
`listeners` (optional add/remove of extra mode specs), `stats`, `secret`.

This module is only the wire format and must not import mitmproxy: the gateway imports it.
The proxy-process side is `egress.proxy_control.ProxyControl`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

MAX_LINE = 16 * 1024 * 1024  # a bind carries a whole policy; bounded so a bad peer cannot eat memory


class ControlError(Exception):
    """A request the proxy refused or could not carry out."""


def encode(msg: Mapping[str, Any]) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode() + b"\n"


async def read_message(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next message, or None at EOF. Raises ValueError on a line that is not a JSON object."""
    line = await reader.readline()
    if not line:
        return None
    msg = json.loads(line)
    if not isinstance(msg, dict):
        raise ValueError("control message must be a JSON object")
    return msg


def listener_spec(host_ip: str, port: int) -> str:
    return f"regular@{host_ip}:{port}"
