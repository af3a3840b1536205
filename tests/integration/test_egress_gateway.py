"""Egress end to end through the gateway: a real sandboxed fetch server, the real proxy, veth and firewall.

The upstream is a local TLS server on loopback; the gateway runs with the test-only
`GIG_TEST_EGRESS_OVERRIDES` that maps the test names to 127.0.0.1 and allows that address.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest_egress import Pki, Upstream, make_pki, start_upstream
from tests.support.gateway import REPO, Gateway, RawSession, running_gateway, shared_data_dir

pytestmark = [pytest.mark.root]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
async def upstream(pki: Pki) -> AsyncIterator[Upstream]:
    up, runners = await start_upstream(pki)
    yield up
    for runner in runners:
        await runner.cleanup()


def _registry(root: Path, port: int) -> Path:
    servers = root / "registry" / "servers"
    servers.mkdir(parents=True)
    (servers / "fetch.yaml").write_text(textwrap.dedent(f"""\
        name: fetch
        version: 0.1.0
        description: fetch, for egress tests
        runtime: python
        package: {{path: {REPO / 'servers' / 'fetch'}}}
        command: [gigmcp-fetch]
        egress:
          - host: allowed.test
            ports: [{port}]
            methods: [GET, POST]
            paths: [/ok, /api/]
        """))
    (servers / "echo.yaml").write_text(textwrap.dedent(f"""\
        name: echo
        version: 0.1.0
        description: echo, a second sandbox
        runtime: python
        package: {{path: {REPO / 'servers' / 'echo'}}}
        command: [gigmcp-echo]
        """))
    return root / "registry"


@pytest.fixture(scope="module")
def gw(upstream: Upstream, pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    registry = _registry(tmp_path_factory.mktemp("reg"), upstream.https_port)
    env = {
        "GIG_REGISTRY_DIR": str(registry),
        "GIG_TEST_EGRESS_OVERRIDES": "allowed.test=127.0.0.1,evil.test=127.0.0.1",
        "GIG_UPSTREAM_CA_FILE": str(pki.ca_pem),
    }
    with running_gateway(install="fetch,echo", env=env) as gateway:
        yield gateway


async def _call(raw: RawSession, tool: str, **args: Any) -> Any:
    # In a thread: the upstream server runs on this test's event loop and must keep answering.
    reply = await asyncio.to_thread(raw.call, f"fetch_{tool}", args)
    assert "result" in reply, reply
    result = reply["result"]
    return result.get("structuredContent", {}).get("result", result.get("structuredContent"))


def _audit(gw: Gateway) -> list[dict[str, Any]]:
    status, body = gw.get("/api/audit/egress?limit=200")
    assert status == 200
    return list(body["records"])


async def _wait_audit(gw: Gateway, predicate: Any, timeout: float = 5.0) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        for record in _audit(gw):
            if predicate(record):
                return record
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no matching audit record in {json.dumps(_audit(gw)[:10], indent=1)}")
        await asyncio.sleep(0.1)


async def test_allowed_host_answers_and_is_audited(gw: Gateway, upstream: Upstream) -> None:
    raw = RawSession(gw).open()
    got = await _call(raw, "fetch", url=f"https://allowed.test:{upstream.https_port}/ok?x=1")
    assert got["status"] == 200, got
    assert json.loads(got["body"])["host"].startswith("allowed.test")
    await _wait_audit(gw, lambda r: r["path"].startswith("/ok") and r["decision"] == "allow" and r["status"] == 200)


@pytest.mark.parametrize(
    ("url_tpl", "method", "reason"),
    [
        ("https://evil.test:{https}/ok", "GET", "host_not_allowed"),
        ("https://127.0.0.2:{https}/ok", "GET", "ip_literal"),  # 127.0.0.1 itself is in NO_PROXY
        ("https://allowed.test:{other}/ok", "GET", "port_not_allowed"),
        ("https://allowed.test:{https}/ok", "DELETE", "method_not_allowed"),
        ("https://allowed.test:{https}/secret", "GET", "path_not_allowed"),
        ("http://allowed.test:{http}/ok", "GET", "port_not_allowed"),
    ],
)
async def test_refusals_carry_a_reason(gw: Gateway, upstream: Upstream, url_tpl: str, method: str,
                                       reason: str) -> None:
    url = url_tpl.format(https=upstream.https_port, other=upstream.other_port, http=upstream.http_port)
    before = len(upstream.seen)
    raw = RawSession(gw).open()
    got = await _call(raw, "fetch", url=url, method=method)
    assert got["status"] in (0, 403), got
    assert len(upstream.seen) == before, "a refused request reached the upstream"
    record = await _wait_audit(gw, lambda r: r["decision"] == "deny" and r["reason"].startswith(reason))
    assert record["server"] == "fetch"


async def test_no_route_around_the_proxy(gw: Gateway, upstream: Upstream) -> None:
    raw = RawSession(gw).open()
    direct = await _call(raw, "fetch", url=f"https://allowed.test:{upstream.https_port}/ok", use_proxy=False, timeout=3)
    assert direct["status"] == 0
    assert (await _call(raw, "resolve", name="allowed.test"))["addresses"] == []
    assert (await _call(raw, "connect", host="127.0.0.1", port=upstream.https_port))["connected"] is False
    assert (await _call(raw, "interfaces"))["interfaces"] == ["eth0", "lo"]
    # The gateway's own port, on the host end of the sandbox's veth, is not reachable.
    ours = next(s for s in gw.sandboxes() if s["state"] == "running" and s["key"][0] == "fetch")
    host_ip = ours["network"]["host_ip"]
    assert (await _call(raw, "connect", host=host_ip, port=gw.port, timeout=2))["connected"] is False
    assert (await _call(raw, "connect", host=host_ip, port=22, timeout=2))["connected"] is False


async def test_other_sandboxes_are_unreachable(gw: Gateway) -> None:
    raw = RawSession(gw).open()
    assert raw.call("echo_echo", {"message": "wake"})["result"]["content"][0]["text"] == "wake"
    echo = next(s for s in gw.sandboxes() if s["state"] == "running" and s["key"][0] == "echo")
    for target in (echo["network"]["sandbox_ip"], echo["network"]["host_ip"]):
        assert (await _call(raw, "connect", host=target, port=3128, timeout=2))["connected"] is False


async def test_node_fetch_and_urllib_both_use_the_proxy(gw: Gateway, upstream: Upstream) -> None:
    raw = RawSession(gw).open()
    url = f"https://allowed.test:{upstream.https_port}/api/node"
    via_node = await _call(raw, "node_fetch", url=url)
    assert via_node["status"] == 200, via_node
    via_urllib = await _call(raw, "fetch", url=url)
    assert via_urllib["status"] == 200
    refused = await _call(raw, "node_fetch", url=f"https://evil.test:{upstream.https_port}/ok")
    assert refused["status"] != 200


async def test_audit_tail_shows_the_decisions(gw: Gateway, upstream: Upstream) -> None:
    raw = RawSession(gw).open()
    await _call(raw, "fetch", url=f"https://evil.test:{upstream.https_port}/ok")
    await _wait_audit(gw, lambda r: r["host"] == "evil.test")
    db = shared_data_dir() / f"gw-{gw.port}.db"
    out = subprocess.run(
        [sys.executable, "-m", "gateway", "audit", "tail", "-n", "50", "--db", str(db)],
        capture_output=True, text=True, timeout=30, cwd=REPO,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any("deny" in ln and "host_not_allowed" in ln and "evil.test" in ln for ln in lines), out.stdout
    assert any("allow" in ln and "allowed.test" in ln for ln in lines), out.stdout
