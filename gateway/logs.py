"""Logging: one JSON object per line on stderr, with the values that matter and never a secret.

Each line carries the id of the HTTP request it was logged under (a context variable set by the
guard middleware), so one request's lines can be found together. Structured values go in
`extra={"fields": {...}}`. Bearer credentials and `gig_` tokens that slip into a message are masked.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("gigmcp_request_id", default=None)
_SECRETS = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{4,}"), r"\1 [redacted]"),
    (re.compile(r"\bgig_[A-Za-z0-9_-]{6,}"), "gig_[redacted]"),
    (re.compile(r"\bglpat-[A-Za-z0-9_-]{6,}"), "glpat-[redacted]"),
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                entry.setdefault(str(key), value)
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # The SDK logs every request at INFO; keep the gateway's own log readable.
    for noisy in ("mcp", "httpx", "httpx2", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
