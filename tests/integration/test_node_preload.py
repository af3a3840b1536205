"""The Node proxy preload: fetch() inside a sandbox goes to the egress proxy, and undici loads only when used.

A plain loopback listener stands in for the proxy and records the CONNECT line it is sent; the
preload is the file every networked sandbox gets (`runtime/node/proxy-preload.cjs`).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PRELOAD = REPO / "runtime" / "node" / "proxy-preload.cjs"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (REPO / "runtime" / "node" / "node_modules" / "undici").is_dir(),
    reason="needs node and runtime/node/node_modules (scripts/install sets both up)")


async def _node(script: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        "node", "--require", str(PRELOAD), "-e", script, env={"PATH": "/usr/bin:/bin", **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_fetch_goes_to_the_proxy_named_in_the_environment() -> None:
    seen: list[str] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append((await reader.readline()).decode().strip())
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        _, out, err = await _node(
            "fetch('https://api.example.test/v4/projects').then(r => console.log('status', r.status))"
            ".catch(e => console.log('failed', e.cause ? e.cause.code || e.cause.message : e.message))",
            {"HTTPS_PROXY": f"http://127.0.0.1:{port}", "NO_PROXY": ""})
    assert seen == ["CONNECT api.example.test:443 HTTP/1.1"], (seen, out, err)
    assert "status" not in out  # the proxy refused the tunnel: fetch must fail, not go around it


async def test_undici_is_not_loaded_until_something_asks_for_the_dispatcher() -> None:
    script = ("const loaded = () => Object.keys(require.cache).some(k => k.includes('undici'));"
              "const before = loaded();"
              "const d = globalThis[Symbol.for('undici.globalDispatcher.1')];"
              "console.log(JSON.stringify({before, after: loaded(), agent: d && d.constructor.name}));")
    code, out, err = await _node(script, {"HTTPS_PROXY": "http://127.0.0.1:9"})
    assert code == 0, err
    state = json.loads(out.strip().splitlines()[-1])
    assert state == {"before": False, "after": True, "agent": "EnvHttpProxyAgent"}


async def test_a_dispatcher_set_by_the_server_replaces_the_proxy_agent() -> None:
    script = ("const K = Symbol.for('undici.globalDispatcher.1'); globalThis[K] = {mine: true};"
              "console.log(JSON.stringify(globalThis[K]));")
    code, out, err = await _node(script, {})
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1]) == {"mine": True}
