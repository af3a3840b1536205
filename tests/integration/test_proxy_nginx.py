"""Behind a real nginx (loopback only, config in a temp dir): with GIG_TRUST_PROXY=1 the audit log names
the client's address (not nginx's, not a spoofed one), HSTS follows the forwarded scheme, and a streamed
tools/call arrives incrementally; with the setting off, forwarded headers are ignored."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import TOKEN, Gateway, free_port, running_gateway

pytestmark = [pytest.mark.root, pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx")
                                                   .exists(), reason="nginx is not installed (scripts/test does)")]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CLIENT_ADDRESS = "127.0.0.5"  # the test client binds this loopback address, nginx connects from 127.0.0.1

CONFIG = """
worker_processes 1;
user root root;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            # As if nginx terminated TLS for the client (the gateway then adds HSTS).
            proxy_set_header X-Forwarded-Proto https;
            proxy_buffering off;
            proxy_cache off;
            proxy_read_timeout 1h;
        }}
    }}
}}
"""


@contextlib.contextmanager
def nginx(tmp: Path, upstream: int) -> Iterator[int]:
    port = free_port()
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "nginx.conf").write_text(CONFIG.format(dir=tmp, port=port, upstream=upstream))
    proc = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@contextlib.asynccontextmanager
async def client_from(url: str, address: str, extra_headers: dict[str, str] | None = None) -> AsyncIterator[Any]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    transport = httpx2.AsyncHTTPTransport(local_address=address)
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}", **(extra_headers or {})}, timeout=60,
                              transport=transport)
    async with http, Client(streamable_http_client(url, http_client=http), mode="legacy") as client:
        yield client


def audited_clients(gw: Gateway) -> list[str]:
    assert gw.log_path is not None
    out = []
    for line in gw.log_path.read_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == "tool_call" and record.get("logger") == "gigmcp.audit":
                out.append(str(record["client"]))
    return out


def raw_get(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers)


@pytest.fixture(scope="module")
def behind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Gateway, int]]:
    env = {"GIG_TRUST_PROXY": "1", "GIG_EGRESS": "false", "GIG_ALLOWED_HOSTS": "*"}
    with running_gateway(env=env) as gw, nginx(tmp_path_factory.mktemp("nginx"), gw.port) as nginx_port:
        yield gw, nginx_port


async def test_audit_shows_the_client_behind_nginx_and_spoofing_fails(behind: tuple[Gateway, int]) -> None:
    gw, port = behind
    url = f"http://127.0.0.1:{port}/mcp"
    before = len(audited_clients(gw))
    async with client_from(url, CLIENT_ADDRESS, {"X-Forwarded-For": "6.6.6.6"}) as client:
        result = await client.call_tool("echo_echo", {"message": "via nginx"})
    assert result.content[0].text == "via nginx"
    await_log = time.monotonic() + 5
    while len(audited_clients(gw)) == before and time.monotonic() < await_log:
        time.sleep(0.05)
    # nginx appended the address it saw; the spoofed entry before it is not believed with one trusted hop.
    assert audited_clients(gw)[before:] == [CLIENT_ADDRESS]


async def test_streamed_progress_arrives_incrementally(behind: tuple[Gateway, int]) -> None:
    _, port = behind
    arrivals: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        arrivals.append(time.monotonic())

    async with client_from(f"http://127.0.0.1:{port}/mcp", CLIENT_ADDRESS) as client:
        started = time.monotonic()
        result = await client.call_tool("echo_progress", {"steps": 5, "delay": 0.4}, progress_callback=on_progress)
        finished = time.monotonic()
    assert result.content[0].text == "done 5 steps"
    assert len(arrivals) == 5
    # Buffered, every notification would arrive with the result, ~2 s after the start.
    assert arrivals[0] - started < 1.0 and finished - arrivals[0] > 1.2, (started, arrivals, finished)


def test_hsts_follows_the_forwarded_scheme(behind: tuple[Gateway, int]) -> None:
    gw, port = behind
    status, headers = raw_get(port, "/api/servers", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and headers.get("Strict-Transport-Security") == "max-age=31536000"
    status, headers = raw_get(gw.port, "/api/servers", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and "Strict-Transport-Security" not in headers  # direct: plain HTTP, no proxy hop


async def test_forwarded_headers_are_ignored_when_trust_is_off(tmp_path: Path) -> None:
    env = {"GIG_EGRESS": "false", "GIG_ALLOWED_HOSTS": "*"}
    with running_gateway(env=env) as gw, nginx(tmp_path / "nginx", gw.port) as nginx_port:
        async with client_from(f"http://127.0.0.1:{nginx_port}/mcp", CLIENT_ADDRESS) as client:
            await client.call_tool("echo_echo", {"message": "x"})
        async with client_from(gw.mcp_url, CLIENT_ADDRESS, {"X-Forwarded-For": "6.6.6.6"}) as client:
            await client.call_tool("echo_echo", {"message": "y"})
        deadline = time.monotonic() + 5
        while len(audited_clients(gw)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        # Through nginx: nginx's address; direct: the real peer, never the header's.
        assert audited_clients(gw) == ["127.0.0.1", CLIENT_ADDRESS]
        status, headers = raw_get(nginx_port, "/api/servers", {"Authorization": f"Bearer {TOKEN}"})
        assert status == 200 and "Strict-Transport-Security" not in headers
