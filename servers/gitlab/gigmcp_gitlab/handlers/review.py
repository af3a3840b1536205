"""Merge request review handlers: changed files, per-file diffs, inline comments with computed positions, threads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import diffs, render
from ..errors import GitLabAPIError, ToolError
from ..executor import Call, Executor, Outcome, handler
from ..textutil import cell, untrusted
from .common import (
    MAX_DIFF_PAGES,
    file_summary,
    match_any,
)


async def _mr(ex: Executor, call: Call) -> dict[str, Any]:
    pid, iid = call.args["project"], call.args["mr_iid"]
    data = (await ex.send(call, "GET", f"/projects/{pid}/merge_requests/{iid}")).data
    return data if isinstance(data, dict) else {}


async def _diff_refs(ex: Executor, call: Call, mr: Mapping[str, Any]) -> dict[str, str]:
    refs = mr.get("diff_refs")
    if isinstance(refs, Mapping) and refs.get("head_sha"):
        return {k: str(refs[k]) for k in ("base_sha", "start_sha", "head_sha") if refs.get(k)}
    pid, iid = call.args["project"], call.args["mr_iid"]
    versions = (await ex.send(call, "GET", f"/projects/{pid}/merge_requests/{iid}/versions")).data or []
    if not versions:
        raise ToolError(
            "GitLab has no diff version for this merge request yet (still being prepared?).",
            hint="Retry in a few seconds.",
        )
    v = versions[0]
    return {
        "base_sha": v["base_commit_sha"],
        "start_sha": v["start_commit_sha"],
        "head_sha": v["head_commit_sha"],
    }


async def _mr_diffs(ex: Executor, call: Call) -> list[dict[str, Any]]:
    """All file diffs of an MR via the paginated /diffs endpoint; /changes on GitLab < 15.7."""
    pid, iid = call.args["project"], call.args["mr_iid"]
    files: list[dict[str, Any]] = []
    page = 1
    while page and page <= MAX_DIFF_PAGES:
        try:
            resp = await ex.send(
                call,
                "GET",
                f"/projects/{pid}/merge_requests/{iid}/diffs",
                query=[("page", str(page)), ("per_page", "100")],
            )
        except GitLabAPIError as exc:
            if exc.status == 404 and page == 1:
                return await _mr_changes_legacy(ex, call)
            raise
        files.extend(f for f in resp.data or [] if isinstance(f, dict))
        nxt = (resp.headers.get("x-next-page") or "").strip()
        page = int(nxt) if nxt.isdigit() else 0
    return files


async def _mr_changes_legacy(ex: Executor, call: Call) -> list[dict[str, Any]]:
    pid, iid = call.args["project"], call.args["mr_iid"]
    data = (await ex.send(call, "GET", f"/projects/{pid}/merge_requests/{iid}/changes")).data or {}
    return [c for c in data.get("changes", []) if isinstance(c, dict)]


@handler("mr_changed_files")
async def mr_changed_files(ex: Executor, call: Call) -> Outcome:
    mr = await _mr(ex, call)
    refs = await _diff_refs(ex, call, mr)
    files = [file_summary(f) for f in await _mr_diffs(ex, call)]
    include = list(call.args.get("include") or [])
    exclude = list(call.args.get("exclude") or [])
    if include:
        files = [f for f in files if match_any(str(f["path"]), include)]
    if exclude:
        files = [f for f in files if not match_any(str(f["path"]), exclude)]
    adds = sum(int(f["additions"]) for f in files)
    dels = sum(int(f["deletions"]) for f in files)
    lines = [
        f"## !{mr.get('iid', call.args['mr_iid'])} {cell(mr.get('title'), 120)}",
        f"{mr.get('state')} · {mr.get('source_branch')} → {mr.get('target_branch')} · "
        f"{len(files)} file(s) +{adds} -{dels}",
        f"diff_refs: base={refs.get('base_sha', '')[:12]} start={refs.get('start_sha', '')[:12]} "
        f"head={refs.get('head_sha', '')[:12]}",
        "| status | path | + | - | notes |",
        "|---|---|---|---|---|",
    ]
    for f in files:
        path = f"{f['old_path']} → {f['path']}" if f.get("old_path") else str(f["path"])
        notes = ", ".join(k for k in ("collapsed", "too_large", "generated_file") if f.get(k))
        lines.append(f"| {f['status']} | {cell(path, 120)} | {f['additions']} | {f['deletions']} | {notes} |")
    if mr.get("overflow"):
        lines.append("GitLab reports overflow: some files are omitted by its diff limits.")
    lines.append("Next: mr_file_diff with paths=[...] to read diffs; mr_comment_inline to comment on a line.")
    structured = {
        "mr": {
            k: mr.get(k)
            for k in ("iid", "title", "state", "source_branch", "target_branch", "web_url")
            if mr.get(k) is not None
        },
        "diff_refs": refs,
        "files": files,
        "count": len(files),
    }
    return ex.finish(call, "\n".join(lines), structured)


@handler("mr_file_diff")
async def mr_file_diff(ex: Executor, call: Call) -> Outcome:
    mr = await _mr(ex, call)
    refs = await _diff_refs(ex, call, mr)
    all_files = await _mr_diffs(ex, call)
    wanted = [str(p) for p in call.args["paths"]]
    out_lines = [
        f"## !{mr.get('iid', call.args['mr_iid'])} diffs · head {refs.get('head_sha', '')[:12]}",
        "Columns: old line, new line. Comment with mr_comment_inline path=<path> line=<new line> "
        "(or side=old line=<old line> for removed lines).",
    ]
    found: list[dict[str, Any]] = []
    for path in wanted:
        f = next((x for x in all_files if path in (x.get("new_path"), x.get("old_path"))), None)
        if f is None:
            close = [str(x.get("new_path")) for x in all_files if path.rsplit("/", 1)[-1] in str(x.get("new_path"))]
            out_lines.append(
                f"\n### {path}\nNot changed in this merge request."
                + (f" Similar: {', '.join(close[:5])}" if close else "")
            )
            continue
        summary = file_summary(f)
        diff_text = str(f.get("diff") or "")
        out_lines.append(
            f"\n### {summary['path']} ({summary['status']}, +{summary['additions']} -{summary['deletions']})"
        )
        if not diff_text and (f.get("too_large") or f.get("collapsed")):
            out_lines.append(
                f"GitLab omitted this diff (too large). Read the file with file_get "
                f"path={summary['path']} ref={refs.get('head_sha', '')}."
            )
        elif not diff_text:
            out_lines.append("(no textual diff: binary, mode change or rename only)")
        else:
            out_lines.append(
                untrusted("```diff\n" + diffs.render(diffs.parse(diff_text)) + "\n```", f"diff {summary['path']}")
            )
        found.append({**summary, "diff": diff_text})
    structured = {"diff_refs": refs, "files": found}
    return ex.finish(call, "\n".join(out_lines), structured)


@handler("mr_comment_inline")
async def mr_comment_inline(ex: Executor, call: Call) -> Outcome:
    args = call.args
    pid, iid = args["project"], args["mr_iid"]
    side = str(args.get("side") or "new")
    path = str(args["path"])
    mr = await _mr(ex, call)
    refs = await _diff_refs(ex, call, mr)
    files = await _mr_diffs(ex, call)
    f = next((x for x in files if path in (x.get("new_path"), x.get("old_path"))), None)
    if f is None:
        raise ToolError(
            f"`{path}` is not among the files changed by !{iid}.",
            hint="List them with mr_changed_files; comments can only anchor to changed files.",
        )
    parsed = diffs.parse(str(f.get("diff") or ""))
    start = diffs.find(parsed, int(args["line"]), side)
    if start is None:
        raise ToolError(
            f"Line {args['line']} ({side} side) of {path} is not part of the diff, so GitLab cannot anchor a "
            f"comment there.",
            hint=f"Lines shown on the {side} side: {diffs.commentable_ranges(parsed, side)}. "
            "Use mr_file_diff to see them; for removed lines use side=old.",
        )
    end = start
    if args.get("end_line"):
        found = diffs.find(parsed, int(args["end_line"]), side)
        if found is None or parsed.index(found) < parsed.index(start):
            raise ToolError(
                f"end_line {args['end_line']} is not a diff line at or after line {args['line']}.",
                hint=f"Lines on the {side} side: {diffs.commentable_ranges(parsed, side)}.",
            )
        end = found
    code_path = str(f.get("old_path") if f.get("deleted_file") else f.get("new_path"))
    position: dict[str, Any] = {
        "position_type": "text",
        **refs,
        "old_path": f.get("old_path"),
        "new_path": f.get("new_path"),
    }
    if end.new is not None and end.kind != "del":
        position["new_line"] = end.new
    if end.old is not None and end.kind != "add":
        position["old_line"] = end.old
    if end is not start:
        position["line_range"] = {
            edge: {
                "line_code": diffs.line_code(code_path, dl),
                "type": "new" if dl.kind == "add" else "old",
                "old_line": dl.old,
                "new_line": dl.new,
            }
            for edge, dl in (("start", start), ("end", end))
        }
    base = f"/projects/{pid}/merge_requests/{iid}"
    if args.get("draft"):
        resp = await ex.send(call, "POST", base + "/draft_notes", body={"note": args["body"], "position": position})
        data = resp.data or {}
        text = (
            f"Done: draft note {data.get('id')} added to your pending review on {path}:{args['line']} "
            f"({side}). Publish with mr_draft_publish_all."
        )
        return ex.finish(call, text, {"draft_note": render.compact(data), "position": position})
    resp = await ex.send(call, "POST", base + "/discussions", body={"body": args["body"], "position": position})
    data = resp.data or {}
    notes = data.get("notes") or [{}]
    text = (
        f"Done: inline comment posted on {path}:{args['line']} ({side} side) of !{iid}. "
        f"discussion_id={data.get('id')} note_id={notes[0].get('id')}"
    )
    return ex.finish(call, text, {"discussion_id": data.get("id"), "note_id": notes[0].get("id"), "position": position})


def _thread_row(d: Any) -> str:
    if not isinstance(d, Mapping):
        return str(d)
    notes = [n for n in d.get("notes") or [] if isinstance(n, Mapping)]
    first = notes[0] if notes else {}
    pos = first.get("position") if isinstance(first.get("position"), Mapping) else None
    where = ""
    if pos:
        line = pos.get("new_line") or pos.get("old_line")
        where = f" · {pos.get('new_path') or pos.get('old_path')}:{line}"
    resolvable = any(n.get("resolvable") for n in notes)
    state = (
        ("resolved" if all(n.get("resolved") for n in notes if n.get("resolvable")) else "unresolved")
        if resolvable
        else "comment"
    )
    parts = [f"### thread {d.get('id')} · {state}{where}"]
    for n in notes:
        who = render.fmt(n.get("author"))
        when = render.fmt(n.get("created_at"))
        if n.get("system"):
            parts.append(f"- {who} {when} (system): {cell(n.get('body'), 120)}")
        else:
            parts.append(f"- note {n.get('id')} {who} {when}:\n" + untrusted(str(n.get("body") or ""), "note"))
    return "\n".join(parts)


def _thread_item(d: Any) -> Any:
    if not isinstance(d, Mapping):
        return d
    return {
        "id": d.get("id"),
        "individual_note": d.get("individual_note"),
        "notes": [
            render.compact(
                {
                    k: n.get(k)
                    for k in (
                        "id",
                        "author",
                        "body",
                        "created_at",
                        "system",
                        "resolvable",
                        "resolved",
                        "position",
                        "type",
                    )
                }
            )
            for n in d.get("notes") or []
            if isinstance(n, Mapping)
        ],
    }


def _unresolved(d: Any) -> bool:
    notes = [n for n in (d.get("notes") or []) if isinstance(n, Mapping)] if isinstance(d, Mapping) else []
    return any(n.get("resolvable") and not n.get("resolved") for n in notes)


@handler("discussions")
async def discussions(ex: Executor, call: Call) -> Outcome:
    resp = await ex.send(call, use_call_request=True)
    data = resp.data
    if isinstance(data, Mapping):
        return ex.finish(call, _thread_row(data), {"result": _thread_item(data)})
    items = list(data or [])
    if call.args.get("unresolved_only"):
        items = [d for d in items if _unresolved(d)]
    return ex.render_list(call, items, resp.headers, row_fn=_thread_row, item_fn=_thread_item)
