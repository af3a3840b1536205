"""The official MCP conformance suites against the gateway's /mcp, with the fixture server sandboxed behind it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.conformance.runner import run_conformance, summary
from tests.support.auth_proxy import auth_proxy
from tests.support.gateway import running_gateway

pytestmark = [pytest.mark.root, pytest.mark.node, pytest.mark.slow]
HERE = __import__("pathlib").Path(__file__).resolve().parent / "conformance"


@pytest.fixture
def proxied_mcp_url() -> Iterator[str]:
    # A fresh gateway (and fixture backend) per suite: scenarios change backend state (log level,
    # subscriptions, dynamic tools), and a suite must not depend on what the previous one left.
    env = {"GIG_UNPREFIXED_SERVERS": "fixture", "GIG_CALL_TIMEOUT": "60"}
    with running_gateway(install="fixture", env=env) as gw, auth_proxy(gw.url) as base:
        yield base + "/mcp"


def _run(version: str, url: str, baseline: str, extra: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    code, output = run_conformance(version, url, HERE / baseline, extra)  # type: ignore[arg-type]
    with capsys.disabled():
        print(f"\n--- conformance {version} through the gateway ---\n{summary(output)}")
    assert code == 0, output[-6000:]


def test_conformance_0_1_16(proxied_mcp_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _run("0.1.16", proxied_mcp_url, "gateway-expected-failures-0.1.16.yml", (), capsys)


def test_conformance_0_2_modern(proxied_mcp_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _run("0.2", proxied_mcp_url, "gateway-expected-failures-0.2.yml", ("--requirements", "2026-07-28"), capsys)


