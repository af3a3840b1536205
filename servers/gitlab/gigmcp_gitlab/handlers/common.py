"""Helpers shared by the handlers: diff file summaries and binary detection."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from .. import diffs
from ..textutil import untrusted

MAX_DIFF_PAGES = 30


BINARY_SNIFF = 8192


def file_status(f: Mapping[str, Any]) -> str:
    if f.get("new_file"):
        return "added"
    if f.get("deleted_file"):
        return "deleted"
    if f.get("renamed_file"):
        return "renamed"
    return "modified"


def file_summary(f: Mapping[str, Any]) -> dict[str, Any]:
    adds, dels = diffs.stats(str(f.get("diff") or ""))
    out: dict[str, Any] = {
        "path": f.get("new_path"),
        "status": file_status(f),
        "additions": adds,
        "deletions": dels,
    }
    if f.get("old_path") != f.get("new_path"):
        out["old_path"] = f.get("old_path")
    for flag in ("collapsed", "too_large", "generated_file"):
        if f.get(flag):
            out[flag] = True
    return out


def match_any(path: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path.rsplit("/", 1)[-1], pat) for pat in patterns)


def diff_block(f: Mapping[str, Any]) -> str:
    summary = file_summary(f)
    diff_text = str(f.get("diff") or "")
    head = f"### {summary['path']} ({summary['status']}, +{summary['additions']} -{summary['deletions']})"
    if not diff_text:
        return head + "\n(no textual diff)"
    return (
        head + "\n" + untrusted("```diff\n" + diffs.render(diffs.parse(diff_text)) + "\n```", f"diff {summary['path']}")
    )


def decode_bytes(data: bytes) -> str | None:
    if b"\x00" in data[:BINARY_SNIFF]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def clip_line(text: str, limit: int = 2000) -> str:
    return text if len(text) <= limit else text[:limit] + f"…[+{len(text) - limit} chars]"
