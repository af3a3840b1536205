"""Rate limits and /metrics against a real gateway: the burst, the refill and the tool error's text on
tools/call (other methods unaffected), 429 per client address on /api/tokens, and /metrics parsed by the
Prometheus text parser with its counters moving (admin token required unless GIG_METRICS_PUBLIC)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.gateway import Gateway, mcp_client, running_gateway

pytestmark = [pytest.mark.root]


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    env = {"GIG_RATE_LIMIT_RPS": "0.5", "GIG_RATE_LIMIT_BURST": "3", "GIG_AUTH_RATE_LIMIT_RPS": "0.5",
           "GIG_AUTH_RATE_LIMIT_BURST": "4", "GIG_EGRESS": "false"}
    with running_gateway(env=env) as gateway:
        yield gateway


def samples(gw: Gateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, _, body = gw.request("GET", "/metrics")
    assert status == 200
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(data: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return data.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_burst_refill_and_error_text(gw: Gateway) -> None:
    before = samples(gw)
    async with mcp_client(gw.mcp_url, "legacy") as client:
        assert (await client.list_tools()).tools  # starts the sandbox, so the calls below are quick
        results = [await client.call_tool("echo_echo", {"message": str(i)}) for i in range(4)]
        assert [r.is_error for r in results] == [False, False, False, True]
        text = results[3].content[0].text
        assert re.fullmatch(r"Rate limit exceeded: too many tool calls\. Retry after \d+\.\d seconds\.", text), text
        # Other methods are not limited.
        for _ in range(5):
            assert (await client.list_tools()).tools
        time.sleep(2.1)  # one token refills every two seconds
        refilled = await client.call_tool("echo_echo", {"message": "again"})
        assert not refilled.is_error and refilled.content[0].text == "again"
        assert (await client.call_tool("echo_echo", {"message": "too soon"})).is_error
    after = samples(gw)
    assert value(after, "gig_tool_calls_total", server="echo", outcome="ok") - \
        value(before, "gig_tool_calls_total", server="echo", outcome="ok") == 4
    assert value(after, "gig_tool_calls_total", server="echo", outcome="rate_limited") - \
        value(before, "gig_tool_calls_total", server="echo", outcome="rate_limited") == 2
    assert value(after, "gig_rate_limited_total", scope="tools_call") >= 2
    assert value(after, "gig_tool_call_duration_seconds_count", server="echo") >= 4
    assert value(after, "gig_sandboxes_live", state="running") >= 1
    assert value(after, "gig_sandbox_spawns_total") >= 1
    assert value(after, "gig_sandbox_events_total", server="echo", event="started") >= 1
    assert ("gig_audit_queue_depth", ()) in after
    assert value(after, "gig_http_requests_total", method="POST", route="/mcp", status="200") > \
        value(before, "gig_http_requests_total", method="POST", route="/mcp", status="200")


def test_token_routes_are_limited_per_address(gw: Gateway) -> None:
    # Anonymous and failed attempts count per address; a valid credential is not a guess.
    bad = {"Authorization": "Bearer gig_not-a-real-token-at-all"}
    statuses = [gw.request("GET", "/api/tokens", headers=bad, auth=False)[0] for _ in range(5)]
    assert statuses[:4] == [401] * 4 and statuses[4] == 429
    status, headers, body = gw.request("POST", "/api/tokens", b"{}", auth=False)
    assert status == 429 and int(headers["Retry-After"]) >= 1 and b"rate_limited" in body
    assert gw.request("GET", "/oauth/callback?state=x&code=y", auth=False)[0] == 429
    assert [gw.request("GET", "/api/tokens")[0] for _ in range(3)] == [200] * 3
    assert gw.request("GET", "/api/servers", auth=False)[0] == 401  # other routes are not limited
    assert value(samples(gw), "gig_rate_limited_total", scope="address") >= 3


def test_metrics_need_the_admin_token(gw: Gateway) -> None:
    assert gw.request("GET", "/metrics", auth=False)[0] == 401
    status, headers, _ = gw.request("GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")


def test_ready_and_public_metrics() -> None:
    with running_gateway(env={"GIG_METRICS_PUBLIC": "true"}) as gw:
        status, _, body = gw.request("GET", "/metrics", auth=False)
        assert status == 200 and b"gig_http_requests_total" in body
        status, body = gw.get("/ready")
        assert status == 200, body
        assert body["checks"] == {"store": "ok", "egress_proxy": "ok", "sandbox": "ok"}


def test_logs_carry_request_ids_and_no_token(gw: Gateway) -> None:
    gw.request("GET", "/api/servers", headers={"X-Request-Id": "trace-abc-123"})
    assert gw.log_path is not None
    text = gw.log_path.read_text()
    assert '"request_id": ' in text
    from tests.support.gateway import TOKEN
    assert TOKEN not in text
