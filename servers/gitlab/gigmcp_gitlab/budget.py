"""Per-result byte budget: truncate at line boundaries with a clear marker and a continuation offset."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Cut:
    """Where a text was cut: bytes [start, end) of `total` were shown."""

    total: int
    start: int
    end: int

    @property
    def next_offset(self) -> int | None:
        return self.end if self.end < self.total else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "total_bytes": self.total,
            "shown_from": self.start,
            "shown_to": self.end,
            "next_result_offset": self.next_offset,
        }


def _utf8_floor(data: bytes, pos: int) -> int:
    """Move pos back so it does not split a UTF-8 sequence."""
    while 0 < pos < len(data) and (data[pos] & 0xC0) == 0x80:
        pos -= 1
    return pos


def fit_head(text: str, budget: int, offset: int = 0) -> tuple[str, Cut | None]:
    """Bytes from `offset` up to `budget`, ending on a line boundary when possible."""
    data = text.encode("utf-8")
    total = len(data)
    offset = _utf8_floor(data, max(0, min(offset, total)))
    if offset == 0 and total <= budget:
        return text, None
    end = min(total, offset + budget)
    if end < total:
        newline = data.rfind(b"\n", offset, end)
        end = newline + 1 if newline > offset + budget // 2 else _utf8_floor(data, end)
    cut = Cut(total, offset, end)
    shown = data[offset:end].decode("utf-8", errors="replace")
    parts = []
    if offset:
        parts.append(f"[… continuing at byte {offset} of {total} …]\n")
    parts.append(shown)
    if cut.next_offset is not None:
        parts.append(
            f"\n[… truncated: showed bytes {offset}-{end} of {total}. "
            f"Call again with result_offset={end} for the rest.]"
        )
    return "".join(parts), cut


def fit_tail(text: str, budget: int) -> tuple[str, Cut | None]:
    """The last `budget` bytes, starting on a line boundary: for logs, where the end matters."""
    data = text.encode("utf-8")
    total = len(data)
    if total <= budget:
        return text, None
    start = total - max(1, budget - 100)
    newline = data.find(b"\n", start)
    start = newline + 1 if 0 <= newline < start + budget // 2 else _utf8_floor(data, start)
    shown = data[start:].decode("utf-8", errors="replace")
    note = f"[… {start} earlier bytes omitted to fit the {budget}-byte result budget …]\n"
    return note + shown, Cut(total, start, total)


def shrink_json(value: Any, budget: int) -> tuple[Any, bool]:
    """Shorten long strings, then long lists, until the JSON form fits `budget` bytes."""
    if len(json.dumps(value, separators=(",", ":"), default=str)) <= budget:
        return value, False
    limit = 4000
    current = value
    while limit >= 100:
        current = _clip(value, limit, None)
        if len(json.dumps(current, separators=(",", ":"), default=str)) <= budget:
            return current, True
        limit //= 2
    items = 50
    while items >= 1:
        current = _clip(value, 100, items)
        if len(json.dumps(current, separators=(",", ":"), default=str)) <= budget:
            return current, True
        items //= 2
    return {"truncated": True, "note": "structured result too large; see the text content"}, True


def _clip(value: Any, limit: int, items: int | None) -> Any:
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + "…"
    if isinstance(value, list):
        seq = value if items is None else value[:items]
        return [_clip(v, limit, items) for v in seq]
    if isinstance(value, dict):
        return {k: _clip(v, limit, items) for k, v in value.items()}
    return value
