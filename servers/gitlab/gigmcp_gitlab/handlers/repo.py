"""Repository handlers: decoded file reads with line paging, blame, commit diffs, compare."""

from __future__ import annotations

import base64

from .. import render
from ..executor import Call, Executor, Outcome, handler
from ..textutil import cell, untrusted
from ..urls import encode_segment
from .common import (
    decode_bytes,
    diff_block,
    file_summary,
)


async def _ref(ex: Executor, call: Call) -> str:
    return str(call.args.get("ref") or await ex.resolver.default_branch(call.args["project"]))


@handler("file_get")
async def file_get(ex: Executor, call: Call) -> Outcome:
    pid, path = call.args["project"], str(call.args["path"])
    ref = await _ref(ex, call)
    resp = await ex.send(call, "GET", f"/projects/{pid}/repository/files/{encode_segment(path)}", query=[("ref", ref)])
    meta = resp.data or {}
    raw = (
        base64.b64decode(meta.get("content") or "")
        if meta.get("encoding") == "base64"
        else str(meta.get("content") or "").encode()
    )
    info = {k: meta.get(k) for k in ("file_path", "size", "blob_id", "last_commit_id", "commit_id")}
    info["ref"] = ref
    text = decode_bytes(raw)
    if text is None:
        return ex.finish(
            call,
            f"`{path}` @ {ref} is binary ({len(raw)} bytes); content not shown.",
            {**info, "binary": True},
        )
    all_lines = text.split("\n")
    if all_lines and all_lines[-1] == "":
        all_lines.pop()
    total = len(all_lines)
    start = int(call.args.get("start_line") or 1)
    end = min(total, int(call.args.get("end_line") or total))
    budget_left = ex.settings.max_result_bytes - 800
    chosen: list[str] = []
    used = 0
    for line in all_lines[start - 1 : end]:
        size = len(line.encode()) + 1
        if chosen and used + size > budget_left:
            break
        chosen.append(line)
        used += size
    last = start + len(chosen) - 1
    next_start = last + 1 if last < end else None
    span = f"lines {start}-{last} of {total}" if (start > 1 or next_start or end < total) else f"{total} lines"
    head = (
        f"## {path} @ {ref}\n{span} · {meta.get('size')} bytes · blob {str(meta.get('blob_id', ''))[:12]} · "
        f"last commit {str(meta.get('last_commit_id', ''))[:12]}"
    )
    body = untrusted("```\n" + "\n".join(chosen) + "\n```", f"file {path}")
    out = head + "\n" + body
    if next_start:
        out += f"\n[… more: file_get path={path} ref={ref} start_line={next_start}]"
    structured = {
        **info,
        "total_lines": total,
        "start_line": start,
        "end_line": last,
        "next_start_line": next_start,
        "content": "\n".join(chosen),
        "untrusted": True,
    }
    return ex.finish(call, out, structured)


@handler("blame")
async def blame(ex: Executor, call: Call) -> Outcome:
    pid, path = call.args["project"], str(call.args["path"])
    ref = await _ref(ex, call)
    query = [("ref", ref)] + [(k, v) for k, v in call.query if k.startswith("range")]
    resp = await ex.send(call, "GET", f"/projects/{pid}/repository/files/{encode_segment(path)}/blame", query=query)
    line_no = int(call.args.get("start_line") or 1)
    parts = [f"## blame {path} @ {ref}"]
    groups = []
    for chunk in resp.data or []:
        commit = chunk.get("commit") or {}
        lines = [str(x) for x in chunk.get("lines") or []]
        first = line_no
        line_no += len(lines)
        parts.append(
            f"{str(commit.get('id', ''))[:8]} {commit.get('author_name', '')} "
            f"{render.fmt(commit.get('committed_date'))} "
            f'"{cell(commit.get("message") or commit.get("title"), 60)}"'
        )
        parts.extend(f"{first + k:>5}| {text}" for k, text in enumerate(lines))
        groups.append(
            {
                "commit": str(commit.get("id", "")),
                "author": commit.get("author_name"),
                "date": commit.get("committed_date"),
                "first_line": first,
                "line_count": len(lines),
            }
        )
    text = parts[0] + "\n" + untrusted("\n".join(parts[1:]), f"blame {path}")
    return ex.finish(call, text, {"path": path, "ref": ref, "ranges": groups})


@handler("commit_diff")
async def commit_diff(ex: Executor, call: Call) -> Outcome:
    resp = await ex.send(call, use_call_request=True)
    return ex.render_list(
        call,
        list(resp.data or []),
        resp.headers,
        title=f"Diff of {call.args['sha']}",
        row_fn=diff_block,
        item_fn=lambda f: {**file_summary(f), "diff": f.get("diff")},
    )


@handler("compare")
async def compare(ex: Executor, call: Call) -> Outcome:
    resp = await ex.send(call, use_call_request=True)
    data = resp.data or {}
    commits = data.get("commits") or []
    files = data.get("diffs") or []
    lines = [f"## {call.args['from']} … {call.args['to']}: {len(commits)} commit(s), {len(files)} file(s)"]
    if data.get("compare_timeout"):
        lines.append("GitLab timed out computing the full comparison; results are partial.")
    if commits:
        lines.extend(render.table(commits, ("short_id", "title", "author_name", "created_at")))
    lines.extend(diff_block(f) for f in files)
    structured = {
        "commits": [render.project_item(c, ("short_id", "title", "author_name")) for c in commits],
        "files": [file_summary(f) for f in files],
        "web_url": data.get("web_url"),
        "compare_same_ref": data.get("compare_same_ref"),
    }
    return ex.finish(call, "\n".join(lines), structured)
