"""Search with per-scope rendering, masked CI variables, instance version and edition."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .. import render
from ..actions import Action
from ..errors import ToolError
from ..executor import Call, Executor, Outcome, handler
from ..textutil import untrusted

_SEARCH_COLUMNS = {
    "projects": ("id", "path_with_namespace", "description"),
    "issues": ("project_id", "iid", "title", "state"),
    "merge_requests": ("project_id", "iid", "title", "state"),
    "milestones": ("project_id", "id", "title", "state"),
    "snippet_titles": ("id", "title", "file_name"),
    "users": ("id", "username", "name"),
    "commits": ("project_id", "short_id", "title", "author_name"),
    "notes": ("project_id", "noteable_type", "noteable_iid", "author", "body"),
    "wiki_blobs": ("project_id", "path", "ref"),
}


def _blob_row(hit: Any) -> str:
    if not isinstance(hit, Mapping):
        return str(hit)
    where = (
        f"{hit.get('path') or hit.get('filename')}:{hit.get('startline')} (project {hit.get('project_id')}, "
        f"ref {hit.get('ref')})"
    )
    return f"- {where}\n" + untrusted(str(hit.get("data") or ""), "code search hit")


@handler("search")
async def search(ex: Executor, call: Call) -> Outcome:
    resp = await ex.send(call, use_call_request=True)
    items = list(resp.data or [])
    scope = str(call.args.get("scope"))
    if scope in ("blobs", "wiki_blobs") and items and "data" in items[0]:
        return ex.render_list(
            call,
            items,
            resp.headers,
            row_fn=_blob_row,
            item_fn=lambda h: render.project_item(h, ("project_id", "path", "startline", "ref", "data")),
        )
    cols = _SEARCH_COLUMNS.get(scope, ())
    if scope == "notes":
        return ex.render_list(
            call,
            items,
            resp.headers,
            row_fn=lambda n: render.block(n, cols, ("body",), "note"),
            item_fn=lambda n: render.project_item(n, cols),
        )
    saved = call.action
    call.action = _with_columns(saved, cols)
    try:
        return ex.render_list(call, items, resp.headers)
    finally:
        call.action = saved


def _with_columns(action: Action, columns: tuple[str, ...]) -> Action:
    return replace(action, columns=columns) if columns else action


def _mask(item: Any, reveal: bool) -> Any:
    if not isinstance(item, dict) or reveal or "value" not in item:
        return item
    value = item.get("value")
    if value is None:
        return {**item, "value": "(hidden)"}
    return {**item, "value": f"••• masked ({len(str(value))} chars; reveal=true to show)"}


@handler("variables")
async def variables(ex: Executor, call: Call) -> Outcome:
    resp = await ex.send(call, use_call_request=True)
    reveal = bool(call.args.get("reveal")) and call.action.read_only
    data = resp.data
    if isinstance(data, list):
        return ex.render_list(call, [_mask(v, reveal) for v in data], resp.headers)
    return ex.render(call, _mask(data, reveal), resp.headers)


@handler("instance_version")
async def instance_version(ex: Executor, call: Call) -> Outcome:
    info = await ex.instance.info(refresh=True)
    if not info.version:
        raise ToolError(
            "Could not read the GitLab version (/version failed).",
            hint="The token may lack read_api/read_user scope; other actions may still work.",
        )
    edition = {"ee": "Enterprise Edition (EE)", "ce": "Community Edition (CE)"}.get(info.edition, "unknown edition")
    raw = info.raw or {}
    kas = raw.get("kas") if isinstance(raw.get("kas"), Mapping) else {}
    text = f"GitLab {info.version} · {edition} · revision {info.revision}\nAPI: {ex.settings.api_url}" + (
        f"\nKAS: {kas.get('version')}" if kas and kas.get("version") else ""
    )
    return ex.finish(
        call,
        text,
        {
            "version": info.version,
            "edition": info.edition,
            "revision": info.revision,
            "api_url": ex.settings.api_url,
            "kas": kas or None,
        },
    )
