"""One audit record per proxied request or denial, as plain data that survives a JSON round trip."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

ALLOW = "allow"
DENY = "deny"
ERROR = "error"


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """What happened to one request. `path` is what the sandbox sent (placeholders, never secrets)."""

    time: float
    sandbox_id: str
    server: str
    profile: str
    user: str
    method: str
    host: str
    port: int
    path: str
    status: int
    bytes_up: int
    bytes_down: int
    decision: str  # allow | deny | error
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> AuditRecord:
        names = {f.name for f in fields(AuditRecord)}
        return AuditRecord(**{k: v for k, v in d.items() if k in names})
