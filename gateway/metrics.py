"""Prometheus metrics: one registry per gateway (not the process-global one, so tests can run several).

Counters and histograms are updated where things happen (HTTP middleware, tool calls, egress
decisions, sandbox events, rate-limit refusals); gauges that mirror live state (sandboxes, spawns,
audit queue depth) are read from their owners at scrape time by a small collector, so they are
never stale and cost nothing between scrapes. Label values are bounded: routes are the router's
templates, never raw paths, and servers are installed server names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.ratelimit import RateLimiter, call_refusal

if TYPE_CHECKING:
    from gateway.mcp.frontdoor import RequestIdentity

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


@dataclass(frozen=True, slots=True)
class LiveSources:
    """Where the scrape-time values come from (callables, so this module imports nothing of the app)."""

    sandboxes: Callable[[], list[dict[str, Any]]]
    spawns: Callable[[], int]
    audit_depth: Callable[[], int]


class _LiveCollector(Collector):
    def __init__(self, sources: LiveSources) -> None:
        self._sources = sources

    def collect(self) -> Iterable[Metric]:
        snapshot = self._sources.sandboxes()
        live = GaugeMetricFamily("gig_sandboxes_live", "Sandboxes by state", labels=["state"])
        states: dict[str, int] = {}
        for entry in snapshot:
            states[str(entry.get("state", "unknown"))] = states.get(str(entry.get("state", "unknown")), 0) + 1
        for state in ("running", "starting", "backoff", "stopped"):
            live.add_metric([state], states.get(state, 0))
        yield live
        yield CounterMetricFamily("gig_sandbox_spawns", "Sandbox spawns since start", value=self._sources.spawns())
        yield GaugeMetricFamily("gig_sandbox_restarts", "Restarts of the sandboxes the supervisor knows",
                                value=sum(int(e.get("restarts", 0)) for e in snapshot))
        yield GaugeMetricFamily("gig_audit_queue_depth", "Egress audit records waiting to be written",
                                value=self._sources.audit_depth())


class Metrics:
    def __init__(self) -> None:
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("gig_http_requests", "HTTP requests", ["method", "route", "status"], registry=r)
        self.request_seconds = Histogram("gig_http_request_duration_seconds", "HTTP request latency (to headers)",
                                         ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.tool_calls = Counter("gig_tool_calls", "tools/call by server and outcome", ["server", "outcome"],
                                  registry=r)
        self.tool_seconds = Histogram("gig_tool_call_duration_seconds", "tools/call latency", ["server"],
                                      buckets=LATENCY_BUCKETS, registry=r)
        self.sandbox_events = Counter("gig_sandbox_events", "Sandbox lifecycle events", ["server", "event"],
                                      registry=r)
        self.egress = Counter("gig_egress_decisions", "Egress proxy decisions", ["server", "decision"], registry=r)
        self.rate_limited = Counter("gig_rate_limited", "Requests refused by a rate limit", ["scope"], registry=r)

    def child(self, metric: Any, *values: str) -> Any:
        """`metric.labels(*values)`, remembered: the client's lookup takes a lock and validates on every call.

        Label values are bounded by design (routes, statuses, installed servers), and so is this map.
        """
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def watch(self, sources: LiveSources) -> None:
        self.registry.register(_LiveCollector(sources))

    def render(self) -> bytes:
        return generate_latest(self.registry)


audit_log = logging.getLogger("gigmcp.audit")


class ToolCallObserver:
    """The front door's `CallObserver`: the per-token rate limit, then metrics and one audit line per call."""

    def __init__(self, metrics: Metrics, limiter: RateLimiter | None) -> None:
        self._metrics = metrics
        self._limiter = limiter

    def admit(self, identity: RequestIdentity, name: str) -> dict[str, Any] | None:
        if self._limiter is None:
            return None
        # One bucket per credential and profile: a profile token and a personal token are separate budgets.
        wait = self._limiter.take((identity.token_id or identity.principal, identity.profile_key))
        if wait <= 0:
            return None
        self._metrics.rate_limited.labels("tools_call").inc()
        self._metrics.tool_calls.labels(_server_of(identity, name), "rate_limited").inc()
        self._audit(identity, name, "rate_limited", 0.0)
        return call_refusal(wait)

    def finished(self, identity: RequestIdentity, name: str, outcome: str, seconds: float) -> None:
        server = _server_of(identity, name)
        self._metrics.child(self._metrics.tool_calls, server, outcome).inc()
        self._metrics.child(self._metrics.tool_seconds, server).observe(seconds)
        self._audit(identity, name, outcome, seconds)

    @staticmethod
    def _audit(identity: RequestIdentity, name: str, outcome: str, seconds: float) -> None:
        audit_log.info("tool call %s by %s from %s: %s", name, identity.principal, identity.client, outcome,
                       extra={"fields": {"event": "tool_call", "client": identity.client, "user": identity.principal,
                                         "profile": str(identity.profile_key), "tool": name, "outcome": outcome,
                                         "duration_ms": round(seconds * 1000, 1)}})


def _server_of(identity: RequestIdentity, name: str) -> str:
    # Only installed server names become label values: a made-up tool name must not grow the series.
    server = name.split("_", 1)[0]
    return server if server in identity.aggregate.members else "unknown"
