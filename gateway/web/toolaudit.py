"""Per-tool-call audit: every finished tools/call becomes one row of `tool_calls`, written in batches.

It rides on the front door's existing `CallObserver` hook: `AuditingObserver` wraps whatever observer
the app set (rate limits, metrics) and adds the row. The front door must never wait for the database,
so rows go to a bounded queue; when that is full the row is counted and dropped with a warning rather
than stalling MCP traffic (the metrics and the structured audit log still have the call).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from gateway.audit import BatchWriter
from gateway.mcp.frontdoor import CallObserver, RequestIdentity
from gateway.mcp.naming import split_name
from gateway.store.toolcalls import ToolCalls

log = logging.getLogger(__name__)

# The hook reports an outcome category; this is the class of failure it stands for.
ERROR_CLASS = {"tool_error": "ToolError", "error": "BackendError", "unavailable": "Unavailable",
               "rate_limited": "RateLimited"}


class ToolCallWriter(BatchWriter):
    """Tool-call rows: dropped (and counted) when the queue is full, never awaited by the front door."""

    def __init__(self, repo: ToolCalls, **kwargs: Any) -> None:
        super().__init__(repo.insert_many, name="tool-call audit", **kwargs)


def audit_row(identity: RequestIdentity, name: str, outcome: str, seconds: float) -> dict[str, Any]:
    split = split_name(name)
    server, tool = split if split else ("", name)
    profile = identity.profile_key if isinstance(identity.profile_key, int) else None
    return {"at": time.time(), "user": identity.principal, "profile_id": profile, "server": server[:64],
            "tool": tool[:128], "duration_ms": round(seconds * 1000), "outcome": outcome,
            "error_class": ERROR_CLASS.get(outcome, "")}


class AuditingObserver:
    """A `CallObserver` that records each call, then defers to the observer it wraps (if any)."""

    def __init__(self, writer: ToolCallWriter, inner: CallObserver | None) -> None:
        self._writer = writer
        self._inner = inner

    def admit(self, identity: RequestIdentity, name: str) -> dict[str, Any] | None:
        refusal = self._inner.admit(identity, name) if self._inner is not None else None
        if refusal is not None:
            self._writer.submit_nowait(audit_row(identity, name, "rate_limited", 0.0))
        return refusal

    def finished(self, identity: RequestIdentity, name: str, outcome: str, seconds: float) -> None:
        self._writer.submit_nowait(audit_row(identity, name, outcome, seconds))
        if self._inner is not None:
            self._inner.finished(identity, name, outcome, seconds)
