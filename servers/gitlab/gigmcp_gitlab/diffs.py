"""Unified diff parsing: line numbers per side, GitLab line codes, rendering with old/new columns."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


@dataclass(frozen=True)
class DiffLine:
    """One line of a diff. `old`/`new` are the line numbers on each side (None where absent);
    `old_pos`/`new_pos` are GitLab's running counters used to build line codes."""

    kind: str
    text: str
    old: int | None = None
    new: int | None = None
    old_pos: int = 0
    new_pos: int = 0


def parse(diff: str) -> list[DiffLine]:
    out: list[DiffLine] = []
    old = new = 0
    in_hunk = False
    raws = diff.split("\n")
    if raws and raws[-1] == "":
        raws.pop()
    for raw in raws:
        m = _HUNK.match(raw)
        if m:
            old, new = int(m.group(1)), int(m.group(3))
            in_hunk = True
            out.append(DiffLine("hunk", raw))
            continue
        if not in_hunk or raw.startswith("\\"):
            if raw.strip():
                out.append(DiffLine("meta", raw))
            continue
        if raw.startswith("+"):
            out.append(DiffLine("add", raw[1:], None, new, old, new))
            new += 1
        elif raw.startswith("-"):
            out.append(DiffLine("del", raw[1:], old, None, old, new))
            old += 1
        else:
            out.append(DiffLine("ctx", raw[1:], old, new, old, new))
            old += 1
            new += 1
    return out


def stats(diff: str) -> tuple[int, int]:
    """(additions, deletions) of a hunk-only diff."""
    adds = dels = 0
    for line in diff.split("\n"):
        if line.startswith("+") and not line.startswith("+++"):
            adds += 1
        elif line.startswith("-") and not line.startswith("---"):
            dels += 1
    return adds, dels


def render(lines: list[DiffLine]) -> str:
    """Diff with old and new line-number columns, ready to pick a line to comment on."""
    width = max((len(str(n)) for dl in lines for n in (dl.old, dl.new) if n is not None), default=1)
    rows = []
    for dl in lines:
        if dl.kind in ("hunk", "meta"):
            rows.append(dl.text)
            continue
        old = str(dl.old) if dl.old is not None else ""
        new = str(dl.new) if dl.new is not None else ""
        sign = {"add": "+", "del": "-"}.get(dl.kind, " ")
        rows.append(f"{old:>{width}} {new:>{width}} {sign}{dl.text}")
    return "\n".join(rows)


def find(lines: list[DiffLine], line: int, side: str) -> DiffLine | None:
    """The diff line with that number on that side ("new" or "old")."""
    for dl in lines:
        if dl.kind in ("hunk", "meta"):
            continue
        if (dl.new if side == "new" else dl.old) == line:
            return dl
    return None


def line_code(path: str, dl: DiffLine) -> str:
    """GitLab's line code: sha1(path)_oldpos_newpos."""
    digest = hashlib.sha1(path.encode("utf-8"), usedforsecurity=False).hexdigest()
    return f"{digest}_{dl.old_pos}_{dl.new_pos}"


def commentable_ranges(lines: list[DiffLine], side: str) -> str:
    """Human summary of line numbers present on one side, e.g. "10-14, 40-52"."""
    nums = [(dl.new if side == "new" else dl.old) for dl in lines if dl.kind not in ("hunk", "meta")]
    present = sorted(n for n in nums if n is not None)
    ranges: list[str] = []
    start = prev = None
    for n in present:
        if start is None:
            start = prev = n
        elif prev is not None and n == prev + 1:
            prev = n
        else:
            ranges.append(f"{start}-{prev}" if start != prev else str(start))
            start = prev = n
    if start is not None:
        ranges.append(f"{start}-{prev}" if start != prev else str(start))
    return ", ".join(ranges) or "none"
