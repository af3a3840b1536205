"""CI handlers: job log tail/range/grep over a streamed trace, raw artifact and snippet downloads."""

from __future__ import annotations

import re
from typing import Any

from .. import render
from ..errors import GitLabAPIError, ToolError
from ..executor import Call, Executor, Outcome, decode_cursor, encode_cursor, handler
from ..textutil import UNTRUSTED_NOTE, LogWindow, untrusted
from .common import (
    clip_line,
    decode_bytes,
)


@handler("job_log")
async def job_log(ex: Executor, call: Call) -> Outcome:
    args = dict(call.args)
    pid, job_id = args["project"], args["job_id"]
    if args.get("cursor"):
        args.update(decode_cursor(str(args["cursor"])))
    pattern = None
    if args.get("pattern"):
        try:
            pattern = re.compile(str(args["pattern"]), re.IGNORECASE)
        except re.error as exc:
            raise ToolError(f"`pattern` is not a valid regular expression: {exc}.") from None
    if pattern is not None:
        mode, count = (
            "grep",
            int(args.get("max_lines") or args.get("tail_lines") or ex.settings.log_tail_lines),
        )
    elif args.get("start_line"):
        mode, count = "range", int(args.get("max_lines") or ex.settings.log_tail_lines)
    else:
        mode, count = "tail", int(args.get("tail_lines") or ex.settings.log_tail_lines)
    count = max(1, min(5000, count))
    job = (await ex.send(call, "GET", f"/projects/{pid}/jobs/{job_id}")).data or {}
    window = LogWindow(mode=mode, count=count, start=int(args.get("start_line") or 1), pattern=pattern)
    try:
        async with ex.client.stream(f"/projects/{pid}/jobs/{job_id}/trace") as resp:
            async for chunk in resp.aiter_text():
                window.feed(chunk)
    except GitLabAPIError as exc:
        if exc.status != 404:
            raise
    window.finish()
    lines = window.lines()
    total = window.total_lines
    width = len(str(total or 1))
    rendered = [f"{n:>{width}}| {clip_line(text)}" for n, text in lines]
    room = max(500, ex.settings.max_result_bytes - len(UNTRUSTED_NOTE) - 700)
    size = sum(len(r.encode()) + 1 for r in rendered)
    trimmed = False
    while len(rendered) > 1 and size > room:
        trimmed = True
        drop = 0 if mode != "range" else -1
        size -= len(rendered.pop(drop).encode()) + 1
        lines.pop(drop)
    body = "\n".join(rendered)
    first = lines[0][0] if lines else 0
    last = lines[-1][0] if lines else 0
    next_state: dict[str, Any] | None = None
    direction = ""
    if mode == "tail" and first > 1:
        next_state = {"start_line": max(1, first - count), "max_lines": min(count, first - 1)}
        direction = "earlier lines"
    elif mode == "range" and last and last < total:
        next_state = {"start_line": last + 1, "max_lines": count}
        direction = "following lines"
    cursor = encode_cursor(next_state) if next_state else None
    what = {
        "tail": f"last {len(lines)} line(s)",
        "range": f"lines {first}-{last}",
        "grep": f"{len(lines)} of {window.matches} matching line(s)",
    }[mode]
    head = (
        f"## Job {job.get('id', job_id)} `{job.get('name', '')}` · {job.get('status', '?')}"
        + (f" ({job['failure_reason']})" if job.get("failure_reason") else "")
        + f"\nLog: {what} of {total} (ANSI stripped, CI sections collapsed)"
    )
    footer = f'\nFor {direction}: job_log cursor="{cursor}"' if cursor else ""
    if trimmed:
        footer += "\n(Fewer lines than asked, to fit the result budget.)"
    text = head + "\n" + (untrusted(body, f"job {job_id} log") if body else "(empty log)") + footer
    structured: dict[str, Any] = {
        "job": render.compact(
            {k: job.get(k) for k in ("id", "name", "stage", "status", "failure_reason", "ref", "web_url", "duration")}
        ),
        "mode": mode,
        "total_lines": total,
        "first_line": first,
        "last_line": last,
        "lines_returned": len(lines),
        "next_cursor": cursor,
        "untrusted": True,
        "log": body,
    }
    if mode == "grep":
        structured["matches"] = window.matches
    return ex.finish(call, text, structured)


@handler("raw_file")
async def raw_file(ex: Executor, call: Call) -> Outcome:
    resp = await ex.send(call, "GET", call.path, query=call.query, raw=True)
    content = resp.content
    ctype = resp.headers.get("content-type", "")
    text = decode_bytes(content)
    name = str(call.args.get("artifact_path") or call.path.rsplit("/", 1)[-1])
    if text is None:
        msg = f"`{name}` is binary ({len(content)} bytes, {ctype or 'unknown type'}); content not shown."
        return ex.finish(call, msg, {"path": name, "size": len(content), "binary": True, "content_type": ctype})
    out = f"## {name} ({len(content)} bytes)\n" + untrusted(text, name)
    return ex.finish(call, out, {"path": name, "size": len(content), "binary": False, "content": text})
