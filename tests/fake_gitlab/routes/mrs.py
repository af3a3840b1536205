"""Merge request routes of the fake: CRUD, merge, approvals, diffs/versions, notes, discussions, drafts.

Diff-note positions are validated like GitLab does: the SHAs must match the latest diff version and
the (old_line, new_line) pair must name a real diff line (added: new only, removed: old only, context:
both); line ranges must carry GitLab's line codes. Bad positions get GitLab's 400 "line_code" error.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..app import Fail, route
from ..state import T0, diff_files, sha
from .common import created, issue, mr, no_content, note, ok, project_id, require

if TYPE_CHECKING:
    from ..app import FakeGitLab, Req

_BAD_POSITION = (
    '400 Bad request - Note {:line_code=>["can\'t be blank", "must be a valid line code"], '
    ':position=>["is incomplete"]}'
)


def refs(fake: FakeGitLab, pid: int, m: dict[str, Any]) -> dict[str, str] | None:
    repo = fake.store.repos[pid]
    src = repo.branches.get(m["source_branch"])
    tgt = repo.branches.get(m["target_branch"])
    if not src or not tgt:
        return None
    return {"base_sha": repo.merge_base(src, tgt), "head_sha": src, "start_sha": tgt}


def changes(fake: FakeGitLab, pid: int, m: dict[str, Any]) -> list[dict[str, Any]]:
    r = refs(fake, pid, m)
    if r is None:
        return []
    repo = fake.store.repos[pid]
    return diff_files(repo.commits[r["base_sha"]].files, repo.commits[r["head_sha"]].files)


def view(fake: FakeGitLab, pid: int, m: dict[str, Any], detail: bool = False) -> dict[str, Any]:
    out = dict(m)
    r = refs(fake, pid, m)
    out["sha"] = r["head_sha"] if r else None
    if detail:
        files = changes(fake, pid, m)
        out["diff_refs"] = r
        out["changes_count"] = str(len(files))
        pipes = [p for p in fake.store.pipelines.get(pid, {}).values() if p["ref"] == m["source_branch"]]
        out["head_pipeline"] = max(pipes, key=lambda p: p["id"]) if pipes else None
        out.update(
            {
                "subscribed": True,
                "merge_error": None,
                "first_contribution": False,
                "overflow": False,
                "user": {"can_merge": True},
                "latest_build_started_at": None,
                "diverged_commits_count": 0,
                "rebase_in_progress": False,
            }
        )
    return out


@route("GET", "/projects/:project/merge_requests")
@route("GET", "/groups/:group/merge_requests")
@route("GET", "/merge_requests")
async def mr_list(fake: FakeGitLab, req: Req) -> web.Response:
    pids = [project_id(fake, req)] if "project" in req.params else sorted(fake.store.mrs)
    items = [(pid, m) for pid in pids for m in fake.store.mrs.get(pid, {}).values()]
    q = req.query
    state = q.get("state", "all")
    if state != "all":
        items = [(p, m) for p, m in items if m["state"] == state]
    for key, field in (("source_branch", "source_branch"), ("target_branch", "target_branch")):
        if q.get(key):
            items = [(p, m) for p, m in items if m[field] == q[key]]
    if q.get("author_username"):
        items = [(p, m) for p, m in items if m["author"]["username"] == q["author_username"]]
    if q.get("reviewer_username"):
        items = [(p, m) for p, m in items if any(r["username"] == q["reviewer_username"] for r in m["reviewers"])]
    if q.get("search"):
        needle = q["search"].lower()
        items = [(p, m) for p, m in items if needle in m["title"].lower() or needle in m["description"].lower()]
    items.sort(key=lambda pm: -pm[1]["id"] if q.get("sort", "desc") == "desc" else pm[1]["id"])
    return fake.paginate(req, [view(fake, p, m) for p, m in items])


@route("GET", "/projects/:project/merge_requests/:mr_iid")
async def mr_get(fake: FakeGitLab, req: Req) -> web.Response:
    pid, m = mr(fake, req)
    return ok(view(fake, pid, m, detail=True))


@route("POST", "/projects/:project/merge_requests")
async def mr_create(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "source_branch", "target_branch", "title")
    pid = project_id(fake, req)
    repo = fake.store.repos[pid]
    src, tgt = str(req.arg("source_branch")), str(req.arg("target_branch"))
    for branch in (src, tgt):
        if branch not in repo.branches:
            raise Fail(400, {"base": [f'Branch "{branch}" does not exist']})
    for m in fake.store.mrs[pid].values():
        if m["source_branch"] == src and m["target_branch"] == tgt and m["state"] == "opened":
            raise Fail(409, [f"Another open merge request already exists for this source branch: !{m['iid']}"])
    from ..state import _mr

    iid = max(fake.store.mrs[pid], default=0) + 1
    _mr(
        fake.store,
        pid,
        iid,
        str(req.arg("title")),
        src,
        tgt,
        fake.store.current_user,
        "opened",
        str(req.arg("description") or ""),
    )
    m = fake.store.mrs[pid][iid]
    m["draft"] = str(req.arg("title")).lower().startswith(("draft:", "[draft]"))
    if req.arg("labels"):
        m["labels"] = req.list_arg("labels")
    return created(view(fake, pid, m, detail=True))


@route("PUT", "/projects/:project/merge_requests/:mr_iid")
async def mr_update(fake: FakeGitLab, req: Req) -> web.Response:
    pid, m = mr(fake, req)
    for key in ("title", "description", "target_branch", "discussion_locked", "squash"):
        if key in req.body:
            m[key] = req.body[key]
    if "title" in req.body:
        m["draft"] = str(m["title"]).lower().startswith(("draft:", "[draft]"))
    if "labels" in req.body:
        m["labels"] = req.list_arg("labels")
    if "add_labels" in req.body:
        m["labels"] = sorted(set(m["labels"]) | set(req.list_arg("add_labels")))
    if "remove_labels" in req.body:
        m["labels"] = [x for x in m["labels"] if x not in req.list_arg("remove_labels")]
    if "reviewer_ids" in req.body:
        m["reviewers"] = [fake.store.user(int(u)) for u in req.body["reviewer_ids"]]
    if "assignee_ids" in req.body:
        m["assignees"] = [fake.store.user(int(u)) for u in req.body["assignee_ids"]]
    event = req.body.get("state_event")
    if event == "close" and m["state"] == "opened":
        m["state"], m["closed_at"], m["closed_by"] = "closed", T0, fake.store.me()
    elif event == "reopen" and m["state"] == "closed":
        m["state"] = "opened"
    return ok(view(fake, pid, m, detail=True))


@route("DELETE", "/projects/:project/merge_requests/:mr_iid")
async def mr_delete(fake: FakeGitLab, req: Req) -> web.Response:
    pid, m = mr(fake, req)
    del fake.store.mrs[pid][m["iid"]]
    return no_content()


@route("PUT", "/projects/:project/merge_requests/:mr_iid/merge")
async def mr_merge(fake: FakeGitLab, req: Req) -> web.Response:
    pid, m = mr(fake, req)
    if m["state"] != "opened" or m["draft"]:
        raise Fail(405, "405 Method Not Allowed")
    if m["has_conflicts"]:
        raise Fail(406, "Branch cannot be merged")
    r = refs(fake, pid, m)
    if r is None:
        raise Fail(405, "405 Method Not Allowed")
    if req.arg("sha") and req.arg("sha") != r["head_sha"]:
        raise Fail(409, "SHA does not match HEAD of source branch: " + str(r["head_sha"]))
    repo = fake.store.repos[pid]
    repo.branches[m["target_branch"]] = r["head_sha"]
    m.update(
        {
            "state": "merged",
            "merged_by": fake.store.me(),
            "merge_user": fake.store.me(),
            "merged_at": T0,
            "merge_commit_sha": r["head_sha"],
        }
    )
    return ok(view(fake, pid, m, detail=True))


def _approvals(fake: FakeGitLab, m: dict[str, Any]) -> dict[str, Any]:
    approved = [fake.store.user(u) for u in m["_approved_by"]]
    return {
        "id": m["id"],
        "iid": m["iid"],
        "project_id": m["project_id"],
        "title": m["title"],
        "description": m["description"],
        "state": m["state"],
        "created_at": T0,
        "updated_at": T0,
        "merge_status": m["merge_status"],
        "approved": bool(approved),
        "approvals_required": 1,
        "approvals_left": 0 if approved else 1,
        "require_password_to_approve": False,
        "approved_by": [{"user": u} for u in approved],
        "suggested_approvers": [],
        "approvers": [],
        "approver_groups": [],
        "user_has_approved": fake.store.current_user in m["_approved_by"],
        "user_can_approve": fake.store.current_user not in m["_approved_by"],
        "approval_rules_left": [],
        "has_approval_rules": False,
        "merge_request_approvers_available": False,
        "multiple_approval_rules_available": False,
        "invalid_approvers_rules": [],
    }


@route("POST", "/projects/:project/merge_requests/:mr_iid/approve")
async def mr_approve(fake: FakeGitLab, req: Req) -> web.Response:
    pid, m = mr(fake, req)
    r = refs(fake, pid, m)
    if req.arg("sha") and r and req.arg("sha") != r["head_sha"]:
        raise Fail(409, "SHA does not match HEAD of source branch")
    if fake.store.current_user not in m["_approved_by"]:
        m["_approved_by"].append(fake.store.current_user)
    return created(_approvals(fake, m))


@route("POST", "/projects/:project/merge_requests/:mr_iid/unapprove")
async def mr_unapprove(fake: FakeGitLab, req: Req) -> web.Response:
    _, m = mr(fake, req)
    if fake.store.current_user not in m["_approved_by"]:
        raise Fail(404, "404 Not found")
    m["_approved_by"].remove(fake.store.current_user)
    return created(_approvals(fake, m))


@route("GET", "/projects/:project/merge_requests/:mr_iid/approvals")
async def mr_approvals(fake: FakeGitLab, req: Req) -> web.Response:
    _, m = mr(fake, req)
    return ok(_approvals(fake, m))


@route("GET", "/projects/:project/merge_requests/:mr_iid/approval_state")
async def mr_approval_state(fake: FakeGitLab, req: Req) -> web.Response:
    if not fake.enterprise:
        raise Fail(404, "404 Not Found")
    _, m = mr(fake, req)
    approved = [fake.store.user(u) for u in m["_approved_by"]]
    return ok(
        {
            "approval_rules_overwritten": False,
            "rules": [
                {
                    "id": 1,
                    "name": "All Members",
                    "rule_type": "any_approver",
                    "eligible_approvers": [],
                    "approvals_required": 1,
                    "users": [],
                    "groups": [],
                    "contains_hidden_groups": False,
                    "approved_by": approved,
                    "source_rule": None,
                    "approved": bool(approved),
                    "overridden": False,
                }
            ],
        }
    )


@route("PUT", "/projects/:project/merge_requests/:mr_iid/rebase")
async def mr_rebase(fake: FakeGitLab, req: Req) -> web.Response:
    _, m = mr(fake, req)
    if m["state"] != "opened":
        raise Fail(403, "403 Forbidden")
    return web.json_response({"rebase_in_progress": True}, status=202)


@route("GET", "/projects/:project/merge_requests/:mr_iid/commits")
async def mr_commits(fake: FakeGitLab, req: Req) -> web.Response:
    pid, m = mr(fake, req)
    r = refs(fake, pid, m)
    repo = fake.store.repos[pid]
    shas = [] if r is None else [c for c in repo.ancestors(r["head_sha"]) if c not in repo.ancestors(r["base_sha"])]
    return fake.paginate(req, [repo.commits[c].as_json(fake.store.projects[pid]["web_url"]) for c in shas])


@route("GET", "/projects/:project/merge_requests/:mr_iid/pipelines")
async def mr_pipelines(fake: FakeGitLab, req: Req) -> web.Response:
    pid, m = mr(fake, req)
    pipes = sorted(
        (p for p in fake.store.pipelines.get(pid, {}).values() if p["ref"] == m["source_branch"]),
        key=lambda p: -p["id"],
    )
    return fake.paginate(
        req,
        [
            {
                k: p[k]
                for k in (
                    "id",
                    "iid",
                    "project_id",
                    "sha",
                    "ref",
                    "status",
                    "source",
                    "created_at",
                    "updated_at",
                    "web_url",
                )
            }
            for p in pipes
        ],
    )


@route("GET", "/projects/:project/merge_requests/:mr_iid/participants")
async def mr_participants(fake: FakeGitLab, req: Req) -> web.Response:
    _, m = mr(fake, req)
    return fake.paginate(req, [m["author"], fake.store.me()])


@route("GET", "/projects/:project/merge_requests/:mr_iid/closes_issues")
async def mr_closes(fake: FakeGitLab, req: Req) -> web.Response:
    pid, m = mr(fake, req)
    nums = [int(n) for n in re.findall(r"#(\d+)", m["description"])]
    return fake.paginate(req, [fake.store.issues[pid][n] for n in nums if n in fake.store.issues.get(pid, {})])


@route("GET", "/projects/:project/merge_requests/:mr_iid/versions")
async def mr_versions(fake: FakeGitLab, req: Req) -> web.Response:
    pid, m = mr(fake, req)
    r = refs(fake, pid, m)
    if r is None:
        return fake.paginate(req, [])
    return fake.paginate(
        req,
        [
            {
                "id": 9000 + m["iid"],
                "head_commit_sha": r["head_sha"],
                "base_commit_sha": r["base_sha"],
                "start_commit_sha": r["start_sha"],
                "created_at": T0,
                "merge_request_id": m["id"],
                "state": "collected",
                "real_size": str(len(changes(fake, pid, m))),
                "patch_id_sha": sha("patch"),
            }
        ],
    )


@route("GET", "/projects/:project/merge_requests/:mr_iid/diffs")
async def mr_diffs(fake: FakeGitLab, req: Req) -> web.Response:
    pid, m = mr(fake, req)
    return fake.paginate(req, changes(fake, pid, m))


@route("GET", "/projects/:project/merge_requests/:mr_iid/changes")
async def mr_changes(fake: FakeGitLab, req: Req) -> web.Response:
    pid, m = mr(fake, req)
    return ok({**view(fake, pid, m, detail=True), "changes": changes(fake, pid, m), "overflow": False})


# ---- positions ---------------------------------------------------------------------------------------


def _diff_lines(diff: str) -> list[tuple[str, int, int]]:
    """(kind, old_pos, new_pos) per line, counted the way GitLab's diff parser does."""
    out: list[tuple[str, int, int]] = []
    old = new = 0
    for raw in diff.split("\n"):
        head = re.match(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@", raw)
        if head:
            old, new = int(head.group(1)), int(head.group(2))
            continue
        if not raw or raw.startswith("\\"):
            continue
        kind = {"+": "new", "-": "old"}.get(raw[0], "ctx")
        out.append((kind, old, new))
        if kind == "new":
            new += 1
        elif kind == "old":
            old += 1
        else:
            old += 1
            new += 1
    return out


def check_position(fake: FakeGitLab, pid: int, m: dict[str, Any], pos: dict[str, Any]) -> dict[str, Any]:
    r = refs(fake, pid, m)
    if r is None or any(pos.get(k) != r[k] for k in ("base_sha", "start_sha", "head_sha")):
        raise Fail(400, _BAD_POSITION)
    files = {f["new_path"]: f for f in changes(fake, pid, m)}
    f = files.get(str(pos.get("new_path")))
    if f is None or f["old_path"] != pos.get("old_path"):
        raise Fail(400, _BAD_POSITION)
    lines = _diff_lines(f["diff"])
    old_line, new_line = pos.get("old_line"), pos.get("new_line")
    wanted = {"new": (None, new_line), "old": (old_line, None), "ctx": (old_line, new_line)}
    ok_line = any((o if kind != "new" else None, n if kind != "old" else None) == wanted[kind] for kind, o, n in lines)
    if not ok_line:
        raise Fail(400, _BAD_POSITION)
    line_range = pos.get("line_range")
    if line_range:
        digest = hashlib.sha1(
            str(f["new_path"] if not f["deleted_file"] else f["old_path"]).encode(), usedforsecurity=False
        ).hexdigest()
        valid = {f"{digest}_{o}_{n}" for _, o, n in lines}
        for edge in ("start", "end"):
            code = (line_range.get(edge) or {}).get("line_code")
            if code not in valid:
                raise Fail(400, "400 Bad request - position[line_range][" + edge + "][line_code] is invalid")
    return {
        "base_sha": pos["base_sha"],
        "start_sha": pos["start_sha"],
        "head_sha": pos["head_sha"],
        "old_path": pos["old_path"],
        "new_path": pos["new_path"],
        "position_type": "text",
        "old_line": old_line,
        "new_line": new_line,
        "line_range": line_range,
    }


# ---- notes and discussions ---------------------------------------------------------------------------


def _discussion(
    fake: FakeGitLab, pid: int, m: dict[str, Any], body: str, position: dict[str, Any] | None, individual: bool
) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if position is not None:
        extra = {
            "type": "DiffNote",
            "position": position,
            "resolvable": True,
            "resolved": False,
            "resolved_by": None,
            "resolved_at": None,
        }
    elif not individual:
        extra = {
            "type": "DiscussionNote",
            "resolvable": True,
            "resolved": False,
            "resolved_by": None,
            "resolved_at": None,
        }
    n = note(fake, body, "MergeRequest", m["id"], m["iid"], pid, **extra)
    d = {"id": sha(f"discussion-{n['id']}"), "individual_note": individual, "notes": [n]}
    m["_discussions"].append(d)
    m["user_notes_count"] += 1
    return d


@route("GET", "/projects/:project/merge_requests/:mr_iid/discussions")
async def discussions(fake: FakeGitLab, req: Req) -> web.Response:
    _, m = mr(fake, req)
    return fake.paginate(req, m["_discussions"])


def _find_discussion(m: dict[str, Any], did: str) -> dict[str, Any]:
    for d in m["_discussions"]:
        if d["id"] == did:
            return d
    raise Fail(404, "404 Discussion Not Found")


@route("GET", "/projects/:project/merge_requests/:mr_iid/discussions/:discussion_id")
async def discussion(fake: FakeGitLab, req: Req) -> web.Response:
    _, m = mr(fake, req)
    return ok(_find_discussion(m, req.params["discussion_id"]))


@route("POST", "/projects/:project/merge_requests/:mr_iid/discussions")
async def discussion_create(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "body")
    pid, m = mr(fake, req)
    pos = req.arg("position")
    position = check_position(fake, pid, m, pos) if isinstance(pos, dict) else None
    return created(_discussion(fake, pid, m, str(req.arg("body")), position, individual=False))


@route("POST", "/projects/:project/merge_requests/:mr_iid/discussions/:discussion_id/notes")
async def discussion_reply(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "body")
    pid, m = mr(fake, req)
    d = _find_discussion(m, req.params["discussion_id"])
    n = note(
        fake,
        str(req.arg("body")),
        "MergeRequest",
        m["id"],
        m["iid"],
        pid,
        type="DiscussionNote",
        resolvable=True,
        resolved=False,
    )
    d["notes"].append(n)
    return created(n)


@route("PUT", "/projects/:project/merge_requests/:mr_iid/discussions/:discussion_id")
async def discussion_resolve(fake: FakeGitLab, req: Req) -> web.Response:
    _, m = mr(fake, req)
    d = _find_discussion(m, req.params["discussion_id"])
    resolved = req.flag("resolved")
    if resolved is None:
        raise Fail(400, "400 Bad request - resolved is missing")
    for n in d["notes"]:
        if n.get("resolvable"):
            n["resolved"] = resolved
            n["resolved_by"] = fake.store.me() if resolved else None
    return ok(d)


@route("GET", "/projects/:project/merge_requests/:mr_iid/notes")
async def mr_notes(fake: FakeGitLab, req: Req) -> web.Response:
    _, m = mr(fake, req)
    notes = [n for d in m["_discussions"] for n in d["notes"]]
    if req.query.get("sort", "desc") == "desc":
        notes = list(reversed(notes))
    return fake.paginate(req, notes)


@route("POST", "/projects/:project/merge_requests/:mr_iid/notes")
async def mr_note_create(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "body")
    pid, m = mr(fake, req)
    d = _discussion(fake, pid, m, str(req.arg("body")), None, individual=True)
    return created(d["notes"][0])


def _find_note(m: dict[str, Any], nid: int) -> tuple[dict[str, Any], dict[str, Any]]:
    for d in m["_discussions"]:
        for n in d["notes"]:
            if n["id"] == nid:
                return d, n
    raise Fail(404, "404 Note Not Found")


@route("PUT", "/projects/:project/merge_requests/:mr_iid/notes/:note_id")
async def mr_note_update(fake: FakeGitLab, req: Req) -> web.Response:
    _, m = mr(fake, req)
    _, n = _find_note(m, int(req.params["note_id"]))
    n["body"] = str(req.arg("body"))
    return ok(n)


@route("DELETE", "/projects/:project/merge_requests/:mr_iid/notes/:note_id")
async def mr_note_delete(fake: FakeGitLab, req: Req) -> web.Response:
    _, m = mr(fake, req)
    d, n = _find_note(m, int(req.params["note_id"]))
    d["notes"].remove(n)
    if not d["notes"]:
        m["_discussions"].remove(d)
    return no_content()


# ---- draft notes -------------------------------------------------------------------------------------


@route("GET", "/projects/:project/merge_requests/:mr_iid/draft_notes")
async def drafts(fake: FakeGitLab, req: Req) -> web.Response:
    _, m = mr(fake, req)
    return fake.paginate(req, m["_drafts"])


def _draft(m: dict[str, Any], did: int) -> dict[str, Any]:
    for d in m["_drafts"]:
        if d["id"] == did:
            return d
    raise Fail(404, "404 Not found")


@route("POST", "/projects/:project/merge_requests/:mr_iid/draft_notes")
async def draft_create(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "note")
    pid, m = mr(fake, req)
    pos = req.arg("position")
    position = check_position(fake, pid, m, pos) if isinstance(pos, dict) else None
    d = {
        "id": fake.store.new_id(),
        "author_id": fake.store.current_user,
        "merge_request_id": m["id"],
        "resolve_discussion": bool(req.arg("resolve_discussion")),
        "discussion_id": req.arg("in_reply_to_discussion_id"),
        "note": str(req.arg("note")),
        "commit_id": None,
        "line_code": None,
        "position": position
        or {
            "base_sha": None,
            "start_sha": None,
            "head_sha": None,
            "old_path": None,
            "new_path": None,
            "position_type": "text",
            "old_line": None,
            "new_line": None,
            "line_range": None,
        },
    }
    m["_drafts"].append(d)
    return created(d)


@route("PUT", "/projects/:project/merge_requests/:mr_iid/draft_notes/:draft_note_id")
async def draft_update(fake: FakeGitLab, req: Req) -> web.Response:
    _, m = mr(fake, req)
    d = _draft(m, int(req.params["draft_note_id"]))
    if "note" in req.body:
        d["note"] = req.body["note"]
    return ok(d)


@route("DELETE", "/projects/:project/merge_requests/:mr_iid/draft_notes/:draft_note_id")
async def draft_delete(fake: FakeGitLab, req: Req) -> web.Response:
    _, m = mr(fake, req)
    m["_drafts"].remove(_draft(m, int(req.params["draft_note_id"])))
    return no_content()


def _publish(fake: FakeGitLab, pid: int, m: dict[str, Any], d: dict[str, Any]) -> None:
    pos = d["position"] if d["position"].get("head_sha") else None
    _discussion(fake, pid, m, d["note"], pos, individual=pos is None)
    m["_drafts"].remove(d)


@route("PUT", "/projects/:project/merge_requests/:mr_iid/draft_notes/:draft_note_id/publish")
async def draft_publish(fake: FakeGitLab, req: Req) -> web.Response:
    pid, m = mr(fake, req)
    _publish(fake, pid, m, _draft(m, int(req.params["draft_note_id"])))
    return no_content()


@route("POST", "/projects/:project/merge_requests/:mr_iid/draft_notes/bulk_publish")
async def draft_bulk_publish(fake: FakeGitLab, req: Req) -> web.Response:
    pid, m = mr(fake, req)
    for d in list(m["_drafts"]):
        _publish(fake, pid, m, d)
    return no_content()


# ---- issue helpers that need MR data -----------------------------------------------------------------


@route("GET", "/projects/:project/issues/:issue_iid/related_merge_requests")
async def issue_related_mrs(fake: FakeGitLab, req: Req) -> web.Response:
    pid, i = issue(fake, req)
    return fake.paginate(
        req, [view(fake, pid, m) for m in fake.store.mrs[pid].values() if f"#{i['iid']}" in m["description"]]
    )
