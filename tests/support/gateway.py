"""Starts a real gateway process for tests and talks to it (health, admin API, MCP client)."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FIXTURE_REGISTRY = REPO / "tests" / "fixtures" / "registry"
TOKEN = "test-admin-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shared_data_dir() -> Path:
    """One data dir per test session: server installs are shared, databases are per gateway."""
    path = Path(os.environ.get("GIG_TEST_DATA_DIR", f"/tmp/gigmcp-test-{os.getppid()}"))
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o711)  # the sandbox uid must traverse to the server installs, nothing more
    return path


@dataclass
class Gateway:
    env: dict[str, str] = field(default_factory=dict)
    install: str = "echo"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def if_prefix(self) -> str:
        """GIG_EGRESS_IF_PREFIX: names of this gateway's sandbox interfaces start with it."""
        return self.env.get("GIG_EGRESS_IF_PREFIX", f"g{self.port:05d}")

    @property
    def mcp_url(self) -> str:
        return f"{self.url}/mcp"

    def start(self, timeout: float = 180.0) -> Gateway:
        data = shared_data_dir()
        db = data / f"gw-{self.port}.db"
        self.log_path = data / f"gw-{self.port}.log"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),
            "GIG_LISTEN": f"127.0.0.1:{self.port}",
            "GIG_DATA_DIR": str(data),
            "GIG_DB_PATH": str(db),
            "GIG_BEARER_TOKEN": TOKEN,
            "GIG_REGISTRY_DIR": str(FIXTURE_REGISTRY),
            "GIG_INSTALL": self.install,
            "GIG_LOG_LEVEL": "info",
            # Each test gateway gets its own sandbox network, so several can run at once.
            "GIG_EGRESS_SUBNET": f"10.{100 + self.port % 100}.0.0/16",
            # Same length for every port: no prefix is the start of another (g4405 vs g44059).
            "GIG_EGRESS_IF_PREFIX": self.if_prefix,
            "GIG_PROXY_PORT": str(free_port()),
            **self.env,
        }
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"], env=env, cwd=REPO, stdout=log, stderr=log
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                if self.get("/health")[0] == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"gateway did not become healthy within {timeout}s:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
        auth: bool = True,
    ) -> tuple[int, dict[str, str], bytes]:
        hdrs = {"Authorization": f"Bearer {TOKEN}"} if auth else {}
        hdrs.update(headers or {})
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def get(self, path: str) -> tuple[int, Any]:
        status, _, body = self.request("GET", path)
        return status, json.loads(body) if body else None

    def sandboxes(self) -> list[dict[str, Any]]:
        status, body = self.get("/api/sandboxes")
        assert status == 200, body
        return list(body["sandboxes"])


@contextlib.contextmanager
def running_gateway(**kwargs: Any) -> Iterator[Gateway]:
    gw = Gateway(**kwargs).start()
    try:
        yield gw
    finally:
        gw.stop()


@contextlib.asynccontextmanager
async def mcp_client(url: str, mode: str = "legacy", token: str = TOKEN, **kwargs: Any) -> AsyncIterator[Any]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode, **kwargs) as client:
        yield client


class RawSession:
    """A bare legacy-era MCP session over plain HTTP: no automatic tools/list, exact control of each call."""

    def __init__(self, gw: Gateway, path: str = "/mcp", token: str = TOKEN) -> None:
        self.gw = gw
        self.path = path
        self.token = token
        self.session_id = ""
        self._ids = itertools.count(1)  # atomic under the GIL: calls may come from several threads

    def _post(self, message: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        headers = {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self.token}",
        }
        if self.session_id:
            headers["Mcp-Session-Id"] = self.session_id
            headers["MCP-Protocol-Version"] = "2025-11-25"
        return self.gw.request("POST", self.path, json.dumps(message).encode(), headers, auth=False)

    def open(self) -> RawSession:
        status, headers, _ = self._post(
            {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}
        )
        assert status == 200, status
        self.session_id = {k.lower(): v for k, v in headers.items()}["mcp-session-id"]
        self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return self

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        request_id = next(self._ids)
        status, _, body = self._post({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params or {}})
        for line in body.decode().splitlines():
            if line.startswith("data: ") and line[6:].strip():
                message = json.loads(line[6:])
                if message.get("id") == request_id:
                    return dict(message)
        if body.strip().startswith(b"{"):
            return dict(json.loads(body))
        raise AssertionError(f"no response to {method} (HTTP {status}): {body[:300]!r}")

    def call(self, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.request("tools/call", {"name": tool, "arguments": arguments or {}})
