"""Rendering a call's result: Markdown + structured content, list pagination and cursors, the byte budget."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import budget, render
from .actions import Action
from .config import Settings
from .errors import ToolError
from .textutil import UNTRUSTED_NOTE

_LIST_RESERVE = 700


@dataclass
class Outcome:
    """What a tool call returns: Markdown text, structured content, error flag."""

    text: str
    structured: dict[str, Any]
    is_error: bool = False


@dataclass
class Call:
    """A validated, resolved invocation of one action."""

    action: Action
    args: dict[str, Any]
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    body: dict[str, Any] | None = None
    result_offset: int = 0
    page_state: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def encode_cursor(state: Mapping[str, Any]) -> str:
    raw = json.dumps(dict(state), separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (ValueError, TypeError):
        raise ToolError(
            "`cursor` is not a cursor returned by this server.",
            hint="Pass next_cursor exactly as returned, or omit it for the first page.",
        ) from None
    if not isinstance(value, dict):
        raise ToolError("`cursor` is malformed.")
    return value


def finish(settings: Settings, call: Call, text: str, structured: dict[str, Any]) -> Outcome:
    """Apply the byte budget to text and structured content, add the untrusted-content note."""
    limit = settings.max_result_bytes
    if "<untrusted-content" in text:
        text = UNTRUSTED_NOTE + "\n\n" + text
        structured.setdefault("untrusted", True)
    text, cut = budget.fit_head(text, limit, call.result_offset)
    if cut is not None:
        structured["truncated"] = cut.as_dict()
    structured, shrunk = budget.shrink_json(structured, limit)
    if shrunk and isinstance(structured, dict):
        structured["structured_truncated"] = True
    return Outcome(text, structured if isinstance(structured, dict) else {"value": structured})


def render_result(
    settings: Settings, call: Call, data: Any, headers: Mapping[str, str] | None = None, title: str = ""
) -> Outcome:
    action = call.action
    prefix = "" if action.read_only else f"Done: {action.name}.\n"
    if isinstance(data, list):
        return render_list(settings, call, data, headers or {}, title)
    if isinstance(data, Mapping):
        label = f"{action.name}"
        summary = None if action.read_only else list(call.args)
        body, compacted = render.detail(data, action.text_fields, label, summary)
        head = title or _title(data)
        text = prefix + (f"## {head}\n" if head else "") + body
        return finish(settings, call, text, {"result": compacted})
    if data is None:
        return finish(settings, call, prefix or "No content.", {"result": None, "status": "ok"})
    return finish(settings, call, prefix + str(data), {"result": data})


def render_list(
    settings: Settings,
    call: Call,
    items: list[Any],
    headers: Mapping[str, str],
    title: str = "",
    row_fn: Callable[[Any], str] | None = None,
    item_fn: Callable[[Any], Any] | None = None,
) -> Outcome:
    action = call.action
    state = call.page_state
    skip = int(state.get("_skip", 0) or 0)
    shown_items = items[skip:]
    columns = action.columns or render.default_columns(shown_items)
    blocks = bool(set(action.text_fields) & set(columns)) or row_fn is not None
    limit = max(1000, settings.max_result_bytes - _LIST_RESERVE)
    rows: list[str] = [] if blocks else render.table([], columns)
    used = sum(len(r.encode()) + 1 for r in rows)
    used_struct = 0
    kept: list[Any] = []
    for item in shown_items:
        if row_fn is not None:
            row = row_fn(item)
        elif blocks and isinstance(item, Mapping):
            row = render.block(item, columns, action.text_fields, action.name)
        else:
            row = render.table([item], columns)[-1]
        small = item_fn(item) if item_fn else render.project_item(item, columns)
        size = len(row.encode()) + 1
        struct_size = len(json.dumps(small, separators=(",", ":"), default=str).encode()) + 1
        if kept and (used + size > limit or used_struct + struct_size > limit):
            break
        rows.append(row)
        kept.append(small)
        used += size
        used_struct += struct_size
    count = len(kept)
    next_state: dict[str, Any] | None = None
    if count < len(shown_items):
        next_state = {**{k: v for k, v in state.items()}, "_skip": skip + count}
    else:
        next_state = _next_page(state, headers)
    pagination = _pagination(headers, state)
    cursor = encode_cursor(next_state) if next_state else None
    total = pagination.get("total")
    head = title or f"{count} result(s)" + (f" of {total}" if total is not None else "")
    if pagination.get("page"):
        head += f", page {pagination['page']}" + (
            f"/{pagination['total_pages']}" if pagination.get("total_pages") else ""
        )
    if skip:
        head += f" (from item {skip + 1} of this page)"
    lines = [head]
    if count:
        lines.extend(rows)
    else:
        lines.append("(none)")
    if cursor:
        lines.append(f'More: call again with cursor="{cursor}"')
    structured: dict[str, Any] = {
        "items": kept,
        "count": count,
        "pagination": {**pagination, "has_more": bool(cursor)},
    }
    if cursor:
        structured["next_cursor"] = cursor
    if action.text_fields:
        structured["untrusted_fields"] = list(action.text_fields)
    return finish(settings, call, "\n".join(lines), structured)


def _title(data: Mapping[str, Any]) -> str:
    refs = data.get("references")
    ref = refs.get("full") if isinstance(refs, Mapping) else None
    for key in ("title", "name", "path_with_namespace", "full_path", "username", "key", "tag_name"):
        value = data.get(key)
        if isinstance(value, str) and value:
            text = " ".join(value.split())[:120]
            return f"{ref} {text}" if ref else text
    return str(ref or "")


def _next_page(state: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any] | None:
    base = {k: v for k, v in state.items() if not k.startswith("_") and k != "page"}
    nxt = (headers.get("x-next-page") or "").strip()
    if nxt.isdigit():
        return {**base, "page": int(nxt)}
    link = headers.get("link") or ""
    for part in link.split(","):
        if 'rel="next"' in part and "<" in part and ">" in part:
            url = part[part.index("<") + 1 : part.index(">")]
            query = dict(parse_qsl(urlsplit(url).query))
            query.pop("private_token", None)
            return {**base, **query}
    return None


def _pagination(headers: Mapping[str, str], state: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"per_page": state.get("per_page")}
    for key, header in (("page", "x-page"), ("total", "x-total"), ("total_pages", "x-total-pages")):
        value = (headers.get(header) or "").strip()
        if value.isdigit():
            out[key] = int(value)
    return out
