"""Light MCP clients for the soak test, on plain aiohttp, and the mix of calls they make.

Two transports: a 2025-11-25 session (initialize, calls with `Mcp-Session-Id`, DELETE to end it) and
2026-07-28 stateless requests (the envelope in `params._meta`, the method and name mirrored in
headers). Both answer with JSON or an SSE stream; `_response` finds the message with the request's id.

Every operation checks its answer strictly and says how it ended: `ok`, one of the defined failures
(`EXPECTED`: an unknown tool is a JSON-RPC error, a refused egress host is a tool result saying the
proxy answered 403), or an `Unexpected` with the reason, which the test counts and fails on.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from mcp.shared.inbound import ERROR_CODE_HTTP_STATUS

LEGACY = "2025-11-25"
MODERN = "2026-07-28"
NAME_HEADER_KEY = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
EXPECTED = ("unknown_tool", "egress_denied")
MAX_SAMPLES = 25


class Unexpected(Exception):
    """An answer the gateway should never give under load; `kind` groups them in the summary."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass(frozen=True)
class Target:
    """One profile as a client reaches it: the URL path, the token, and whose secret egress must carry."""

    slug: str
    user: str
    path: str
    token: str
    secret: str = field(repr=False)

    @property
    def auth_sha256(self) -> str:
        return hashlib.sha256(f"Bearer {self.secret}".encode()).hexdigest()


@dataclass
class Tally:
    """Outcomes of every call, shared by all clients (one event loop, so no locks)."""

    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    unexpected: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=dict, repr=False)

    def record(self, op: str, outcome: str, seconds: float) -> None:
        self.outcomes[(op, outcome)] += 1
        self.latencies.setdefault(op, []).append(seconds)

    def fail(self, op: str, exc: Unexpected) -> None:
        self.outcomes[(op, "unexpected")] += 1
        self.unexpected[exc.kind] += 1
        if len(self.samples) < MAX_SAMPLES:
            self.samples.append(f"{op}: {exc.kind}: {exc.detail[:400]}")

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())

    @property
    def unexpected_total(self) -> int:
        return sum(self.unexpected.values())

    def expected_total(self) -> int:
        return sum(n for (_, outcome), n in self.outcomes.items() if outcome in EXPECTED)


def _response(status: int, content_type: str, body: bytes, request_id: int, *, modern: bool = False,
              ) -> dict[str, Any]:
    if status != 200:
        # 2026-07-28 carries a JSON-RPC error's class in the HTTP status too (the SDK's table); the
        # body is still the error. Sessions always answer 200.
        error = _error_with_status(body, request_id) if modern and content_type.startswith("application/json") else None
        if error is None or ERROR_CODE_HTTP_STATUS.get(error["error"].get("code"), 200) != status:
            raise Unexpected(f"http_{status}", body[:300].decode(errors="replace"))
        return error
    if content_type.startswith("text/event-stream"):
        for line in body.decode().splitlines():
            if line.startswith("data:") and line[5:].strip():
                message = json.loads(line[5:])
                if message.get("id") == request_id:
                    return dict(message)
        raise Unexpected("no_response", f"no message with id {request_id} in the stream: {body[:300]!r}")
    message = json.loads(body)
    if message.get("id") != request_id:
        raise Unexpected("wrong_id", f"expected id {request_id}: {body[:300]!r}")
    return dict(message)


def _error_with_status(body: bytes, request_id: int) -> dict[str, Any] | None:
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if isinstance(message, dict) and message.get("id") == request_id and isinstance(message.get("error"), dict):
        return message
    return None


class Transport(abc.ABC):
    def __init__(self, http: aiohttp.ClientSession, base_url: str, target: Target) -> None:
        self.http = http
        self.url = base_url + target.path
        self.target = target
        self._next_id = 0

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.target.token}", "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream"}

    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    async def _post(self, message: dict[str, Any], headers: dict[str, str]) -> tuple[int, str, bytes, str]:
        async with self.http.post(self.url, data=json.dumps(message), headers=headers) as resp:
            body = await resp.read()
            return resp.status, resp.headers.get("Content-Type", ""), body, resp.headers.get("Mcp-Session-Id", "")

    @abc.abstractmethod
    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One JSON-RPC request in this client's protocol era; the parsed reply."""


class LegacySession(Transport):
    era = "legacy"

    def __init__(self, http: aiohttp.ClientSession, base_url: str, target: Target) -> None:
        super().__init__(http, base_url, target)
        self.session_id = ""

    def _headers(self) -> dict[str, str]:
        headers = super()._headers()
        if self.session_id:
            headers.update({"Mcp-Session-Id": self.session_id, "MCP-Protocol-Version": LEGACY})
        return headers

    async def open(self) -> None:
        rid = self._id()
        status, ctype, body, sid = await self._post(
            {"jsonrpc": "2.0", "id": rid, "method": "initialize", "params": {
                "protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "soak", "version": "1"}}},
            self._headers())
        reply = _response(status, ctype, body, rid)
        if "result" not in reply or not sid:
            raise Unexpected("initialize", f"no result or no session id: {reply}")
        self.session_id = sid
        status, _, body, _ = await self._post({"jsonrpc": "2.0", "method": "notifications/initialized"},
                                              self._headers())
        if status != 202:
            raise Unexpected(f"http_{status}", f"notifications/initialized: {body[:200]!r}")

    async def close(self) -> None:
        async with self.http.delete(self.url, headers=self._headers()) as resp:
            await resp.read()
            if resp.status not in (200, 204):
                raise Unexpected(f"http_{resp.status}", "DELETE of the session")
        self.session_id = ""

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        rid = self._id()
        status, ctype, body, _ = await self._post(
            {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}, self._headers())
        return _response(status, ctype, body, rid)


class StatelessClient(Transport):
    era = "modern"

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        rid = self._id()
        meta = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
        headers = {**self._headers(), "MCP-Protocol-Version": MODERN, "Mcp-Method": method}
        if method in NAME_HEADER_KEY:
            headers["Mcp-Name"] = str(params[NAME_HEADER_KEY[method]])
        status, ctype, body, _ = await self._post(
            {"jsonrpc": "2.0", "id": rid, "method": method, "params": {**params, "_meta": meta}}, headers)
        return _response(status, ctype, body, rid, modern=True)


# ---- the operations -------------------------------------------------------------------------------

Op = Callable[[Transport, "Mix", random.Random], Awaitable[str]]


def _result(reply: dict[str, Any], what: str) -> dict[str, Any]:
    if "result" not in reply:
        raise Unexpected("jsonrpc_error", f"{what}: {reply.get('error')}")
    return dict(reply["result"])


def _structured(result: dict[str, Any]) -> dict[str, Any]:
    # A tool returning a dict has it as structuredContent itself (other types come wrapped in "result").
    content = result.get("structuredContent") or {}
    return dict(content.get("result", content)) if isinstance(content, dict) else {}


def _tool_payload(reply: dict[str, Any], tool: str) -> Any:
    result = _result(reply, tool)
    if result.get("isError"):
        raise Unexpected("tool_error", f"{tool}: {json.dumps(result)[:300]}")
    return result


@dataclass(frozen=True)
class Mix:
    """What the operations need to know about the egress target."""

    https_port: int

    def url(self, host: str, path: str) -> str:
        return f"https://{host}:{self.https_port}{path}"


async def op_echo(t: Transport, _mix: Mix, rng: random.Random) -> str:
    message = f"soak-{t.target.slug}-{rng.randrange(1 << 30)}"
    result = _tool_payload(await t.request("tools/call", {"name": "echo_echo", "arguments": {"message": message}}),
                           "echo_echo")
    text = result["content"][0].get("text")
    if text != message:
        raise Unexpected("wrong_answer", f"echo_echo returned {text!r} for {message!r}")
    return "ok"


async def op_add(t: Transport, _mix: Mix, rng: random.Random) -> str:
    a, b = rng.randrange(10**6), rng.randrange(10**6)
    result = _tool_payload(await t.request("tools/call", {"name": "echo_add", "arguments": {"a": a, "b": b}}),
                           "echo_add")
    if result.get("structuredContent") != {"result": a + b}:
        raise Unexpected("wrong_answer", f"echo_add({a}, {b}) gave {result.get('structuredContent')}")
    return "ok"


async def op_list_tools(t: Transport, _mix: Mix, _rng: random.Random) -> str:
    result = _result(await t.request("tools/list", {}), "tools/list")
    names = {tool["name"] for tool in result["tools"]}
    missing = {"echo_echo", "echo_add", "fetch_fetch"} - names
    if missing:
        raise Unexpected("wrong_answer", f"tools/list lacks {sorted(missing)} (has {len(names)} tools)")
    return "ok"


async def op_fetch_allowed(t: Transport, mix: Mix, rng: random.Random) -> str:
    path = f"/api/{t.target.slug}/{rng.randrange(1 << 30)}"
    result = _tool_payload(await t.request("tools/call", {"name": "fetch_fetch", "arguments": {
        "url": mix.url("allowed.test", path), "timeout": 30}}), "fetch_fetch")
    got = _structured(result)
    if got.get("status") != 200:
        raise Unexpected("egress_failed", f"{path}: {json.dumps(got)[:300]}")
    echoed = json.loads(got["body"])
    if echoed["path"] != path:
        raise Unexpected("wrong_answer", f"upstream saw {echoed['path']!r}, asked for {path!r}")
    # The proxy put this profile owner's secret on the wire (the upstream's digest proves it) ...
    if echoed["auth_sha256"] != t.target.auth_sha256:
        raise Unexpected("wrong_credential", f"{t.target.slug}: upstream got another Authorization header")
    # ... and the sandbox never saw it: the echo came back scrubbed.
    if t.target.secret in json.dumps(result):
        raise Unexpected("secret_leaked", f"{t.target.slug}: the real secret reached the sandbox")
    return "ok"


async def op_fetch_denied(t: Transport, mix: Mix, _rng: random.Random) -> str:
    url = mix.url("evil.test", "/api/x")
    result = _tool_payload(await t.request("tools/call", {"name": "fetch_fetch", "arguments": {
        "url": url, "timeout": 30}}), "fetch_fetch")
    got = _structured(result)
    # urllib reports a refused CONNECT as "Tunnel connection failed: 403 ...": the proxy said no.
    if got.get("status") == 0 and "403" in str(got.get("error", "")):
        return "egress_denied"
    raise Unexpected("egress_not_denied", f"{url}: {json.dumps(got)[:300]}")


async def op_unknown_tool(t: Transport, _mix: Mix, _rng: random.Random) -> str:
    reply = await t.request("tools/call", {"name": "echo_nosuch", "arguments": {}})
    error = reply.get("error")
    if error and "echo_nosuch" in str(error.get("message", "")):
        return "unknown_tool"
    raise Unexpected("unknown_tool_accepted", f"echo_nosuch: {json.dumps(reply)[:300]}")


async def op_resources(t: Transport, _mix: Mix, rng: random.Random) -> str:
    if rng.random() < 0.5:
        result = _result(await t.request("resources/list", {}), "resources/list")
        if "echo+echo://greeting" not in [r["uri"] for r in result["resources"]]:
            raise Unexpected("wrong_answer", f"resources/list: {result}")
        return "ok"
    result = _result(await t.request("resources/read", {"uri": "echo+echo://greeting"}), "resources/read")
    if result["contents"][0].get("text") != "hello from echo":
        raise Unexpected("wrong_answer", f"resources/read: {result}")
    return "ok"


async def op_prompts(t: Transport, _mix: Mix, rng: random.Random) -> str:
    if rng.random() < 0.5:
        result = _result(await t.request("prompts/list", {}), "prompts/list")
        if "echo_say" not in [p["name"] for p in result["prompts"]]:
            raise Unexpected("wrong_answer", f"prompts/list: {result}")
        return "ok"
    word = f"w{rng.randrange(1000)}"
    result = _result(await t.request("prompts/get", {"name": "echo_say", "arguments": {"word": word}}),
                     "prompts/get")
    if word not in json.dumps(result["messages"]):
        raise Unexpected("wrong_answer", f"prompts/get: {result}")
    return "ok"


# (operation, weight): mostly plain calls and allowed egress, a few defined failures.
MIX: tuple[tuple[str, Op, int], ...] = (
    ("echo", op_echo, 30),
    ("add", op_add, 6),
    ("tools_list", op_list_tools, 12),
    ("fetch", op_fetch_allowed, 25),
    ("fetch_denied", op_fetch_denied, 5),
    ("unknown_tool", op_unknown_tool, 6),
    ("resources", op_resources, 8),
    ("prompts", op_prompts, 8),
)


async def run_op(name: str, op: Op, transport: Transport, mix: Mix, rng: random.Random, tally: Tally,
                 timeout: float) -> None:
    started = time.monotonic()
    try:
        outcome = await asyncio.wait_for(op(transport, mix, rng), timeout)
    except Unexpected as exc:
        tally.fail(name, exc)
    except TimeoutError:
        tally.fail(name, Unexpected("timeout", f"no answer within {timeout}s"))
    except (aiohttp.ClientError, OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        tally.fail(name, Unexpected(type(exc).__name__, str(exc)))
    else:
        tally.record(name, outcome, time.monotonic() - started)


@dataclass
class Clock:
    """When clients stop; may be moved (once the ramp-up is over) while they run."""

    deadline: float


async def client_loop(http: aiohttp.ClientSession, base_url: str, target: Target, era: str, mix: Mix,
                      tally: Tally, *, clock: Clock, max_ops: int, seed: int, call_timeout: float = 60.0,
                      think_s: float = 0.02) -> int:
    """One client until `clock.deadline` or `max_ops`: legacy clients end and reopen their session
    every few dozen calls (session churn is part of what must not leak). Returns the operations done."""
    rng = random.Random(seed)
    names = [name for name, _, _ in MIX]
    ops = {name: op for name, op, _ in MIX}
    weights = [w for _, _, w in MIX]
    done = 0
    while done < max_ops and time.monotonic() < clock.deadline:
        transport: Transport
        if era == "legacy":
            session = LegacySession(http, base_url, target)
            try:
                await asyncio.wait_for(session.open(), call_timeout)
            except Unexpected as exc:
                tally.fail("session_open", exc)
                await asyncio.sleep(0.5)
                done += 1
                continue
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
                tally.fail("session_open", Unexpected(type(exc).__name__, str(exc)))
                await asyncio.sleep(0.5)
                done += 1
                continue
            tally.record("session_open", "ok", 0.0)
            transport, batch = session, rng.randint(20, 60)
        else:
            transport, batch = StatelessClient(http, base_url, target), rng.randint(20, 60)
        try:
            for _ in range(batch):
                if done >= max_ops or time.monotonic() >= clock.deadline:
                    break
                name = rng.choices(names, weights)[0]
                await run_op(name, ops[name], transport, mix, rng, tally, call_timeout)
                done += 1
                await asyncio.sleep(rng.uniform(0, think_s))
        finally:
            if isinstance(transport, LegacySession) and transport.session_id:
                try:
                    await asyncio.wait_for(transport.close(), call_timeout)
                    tally.record("session_close", "ok", 0.0)
                except Unexpected as exc:
                    tally.fail("session_close", exc)
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    tally.fail("session_close", Unexpected(type(exc).__name__, str(exc)))
    return done



async def prime(http: aiohttp.ClientSession, base_url: str, target: Target, tally: Tally,
                call_timeout: float = 60.0) -> None:
    """Start a profile's sandboxes: a tools/list starts every server of the profile."""
    await run_op("prime", op_list_tools, StatelessClient(http, base_url, target), Mix(0), random.Random(0), tally,
                 call_timeout)
