"""Issue, release, milestone, label, wiki and snippet routes of the fake."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..app import Fail, route
from ..state import T0, _issue, _label
from .common import created, filter_text, issue, no_content, note, ok, project_id, require, scope

if TYPE_CHECKING:
    from ..app import FakeGitLab, Req


# ---- issues ------------------------------------------------------------------------------------------


@route("GET", "/projects/:project/issues")
@route("GET", "/groups/:group/issues")
@route("GET", "/issues")
async def issues(fake: FakeGitLab, req: Req) -> web.Response:
    pids = [project_id(fake, req)] if "project" in req.params else sorted(fake.store.issues)
    items = [i for pid in pids for i in fake.store.issues.get(pid, {}).values()]
    state = req.query.get("state", "all")
    if state != "all":
        items = [i for i in items if i["state"] == state]
    labels = req.list_arg("labels")
    if labels:
        items = [i for i in items if set(labels) <= set(i["labels"])]
    items = filter_text(items, req, "title", "description")
    return fake.paginate(req, sorted(items, key=lambda i: -i["id"]))


@route("GET", "/projects/:project/issues/:issue_iid")
async def issue_get(fake: FakeGitLab, req: Req) -> web.Response:
    return ok(issue(fake, req)[1])


@route("POST", "/projects/:project/issues")
async def issue_create(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "title")
    pid = project_id(fake, req)
    iid = max(fake.store.issues[pid], default=0) + 1
    _issue(fake.store, pid, iid, str(req.arg("title")), "opened")
    i = fake.store.issues[pid][iid]
    i["description"] = req.arg("description")
    i["labels"] = req.list_arg("labels")
    i["author"] = fake.store.me()
    return created(i)


@route("PUT", "/projects/:project/issues/:issue_iid")
async def issue_update(fake: FakeGitLab, req: Req) -> web.Response:
    _, i = issue(fake, req)
    for key in ("title", "description", "confidential", "due_date", "discussion_locked"):
        if key in req.body:
            i[key] = req.body[key]
    if "labels" in req.body:
        i["labels"] = req.list_arg("labels")
    if "add_labels" in req.body:
        i["labels"] = sorted(set(i["labels"]) | set(req.list_arg("add_labels")))
    if req.body.get("state_event") == "close":
        i["state"], i["closed_at"], i["closed_by"] = "closed", T0, fake.store.me()
    elif req.body.get("state_event") == "reopen":
        i["state"], i["closed_at"] = "opened", None
    return ok(i)


@route("DELETE", "/projects/:project/issues/:issue_iid")
async def issue_delete(fake: FakeGitLab, req: Req) -> web.Response:
    pid, i = issue(fake, req)
    del fake.store.issues[pid][i["iid"]]
    return no_content()


@route("GET", "/projects/:project/issues/:issue_iid/notes")
async def issue_notes(fake: FakeGitLab, req: Req) -> web.Response:
    return fake.paginate(req, issue(fake, req)[1]["_notes"])


@route("POST", "/projects/:project/issues/:issue_iid/notes")
async def issue_note_create(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "body")
    pid, i = issue(fake, req)
    body = str(req.arg("body"))
    n = note(fake, body, "Issue", i["id"], i["iid"], pid)
    i["_notes"].append(n)
    if re.search(r"^/close\b", body, re.MULTILINE):
        i["state"] = "closed"
    return created(n)


def _issue_note(i: dict[str, Any], nid: int) -> dict[str, Any]:
    for n in i["_notes"]:
        if n["id"] == nid:
            return n
    raise Fail(404, "404 Note Not Found")


@route("PUT", "/projects/:project/issues/:issue_iid/notes/:note_id")
async def issue_note_update(fake: FakeGitLab, req: Req) -> web.Response:
    _, i = issue(fake, req)
    n = _issue_note(i, int(req.params["note_id"]))
    n["body"] = str(req.arg("body"))
    return ok(n)


@route("DELETE", "/projects/:project/issues/:issue_iid/notes/:note_id")
async def issue_note_delete(fake: FakeGitLab, req: Req) -> web.Response:
    _, i = issue(fake, req)
    i["_notes"].remove(_issue_note(i, int(req.params["note_id"])))
    return no_content()


@route("GET", "/projects/:project/issues/:issue_iid/discussions")
async def issue_discussions(fake: FakeGitLab, req: Req) -> web.Response:
    _, i = issue(fake, req)
    return fake.paginate(req, [{"id": f"d{n['id']}", "individual_note": True, "notes": [n]} for n in i["_notes"]])


@route("GET", "/projects/:project/issues/:issue_iid/links")
async def issue_links(fake: FakeGitLab, req: Req) -> web.Response:
    _, i = issue(fake, req)
    out = []
    for link in i["_links_to"]:
        target = fake.store.issues[link["project_id"]][link["iid"]]
        out.append(
            {
                **target,
                "issue_link_id": link["id"],
                "link_type": link["link_type"],
                "link_created_at": T0,
                "link_updated_at": T0,
            }
        )
    return ok(out)


@route("POST", "/projects/:project/issues/:issue_iid/links")
async def issue_link_create(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "target_project_id", "target_issue_iid")
    _, i = issue(fake, req)
    tpid = int(req.arg("target_project_id"))
    tiid = int(req.arg("target_issue_iid"))
    target = fake.store.issues.get(tpid, {}).get(tiid)
    if target is None:
        raise Fail(404, "404 Not found")
    if any(x["project_id"] == tpid and x["iid"] == tiid for x in i["_links_to"]):
        raise Fail(409, "Issue(s) already assigned")
    link = {
        "id": fake.store.new_id(),
        "project_id": tpid,
        "iid": tiid,
        "link_type": req.arg("link_type") or "relates_to",
    }
    i["_links_to"].append(link)
    return created({"source_issue": i, "target_issue": target, "link_type": link["link_type"]})


@route("DELETE", "/projects/:project/issues/:issue_iid/links/:issue_link_id")
async def issue_link_delete(fake: FakeGitLab, req: Req) -> web.Response:
    _, i = issue(fake, req)
    lid = int(req.params["issue_link_id"])
    link = next((x for x in i["_links_to"] if x["id"] == lid), None)
    if link is None:
        raise Fail(404, "404 Not found")
    i["_links_to"].remove(link)
    return ok(
        {
            "source_issue": i,
            "target_issue": fake.store.issues[link["project_id"]][link["iid"]],
            "link_type": link["link_type"],
        }
    )


def _parse_duration(text: str) -> int:
    units = {"mo": 4 * 5 * 8 * 3600, "w": 5 * 8 * 3600, "d": 8 * 3600, "h": 3600, "m": 60, "s": 1}
    total = 0
    for num, unit in re.findall(r"(\d+)(mo|w|d|h|m|s)", text):
        total += int(num) * units[unit]
    if not total:
        raise Fail(400, "400 Bad request - duration is invalid")
    return total


def _human(seconds: int) -> str | None:
    if not seconds:
        return None
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60}m" if rest else f"{hours}h"


@route("GET", "/projects/:project/issues/:issue_iid/time_stats")
@route("GET", "/projects/:project/merge_requests/:mr_iid/time_stats")
async def time_stats(fake: FakeGitLab, req: Req) -> web.Response:
    return ok(_owner(fake, req)["time_stats"])


def _owner(fake: FakeGitLab, req: Req) -> dict[str, Any]:
    if "issue_iid" in req.params:
        return issue(fake, req)[1]
    from .common import mr

    return mr(fake, req)[1]


@route("POST", "/projects/:project/issues/:issue_iid/time_estimate")
async def time_estimate(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "duration")
    ts = _owner(fake, req)["time_stats"]
    ts["time_estimate"] = _parse_duration(str(req.arg("duration")))
    ts["human_time_estimate"] = _human(ts["time_estimate"])
    return ok(ts)


@route("POST", "/projects/:project/issues/:issue_iid/reset_time_estimate")
async def time_estimate_reset(fake: FakeGitLab, req: Req) -> web.Response:
    ts = _owner(fake, req)["time_stats"]
    ts["time_estimate"], ts["human_time_estimate"] = 0, None
    return ok(ts)


@route("POST", "/projects/:project/issues/:issue_iid/add_spent_time")
@route("POST", "/projects/:project/merge_requests/:mr_iid/add_spent_time")
async def add_spent(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "duration")
    ts = _owner(fake, req)["time_stats"]
    ts["total_time_spent"] += _parse_duration(str(req.arg("duration")))
    ts["human_total_time_spent"] = _human(ts["total_time_spent"])
    return created(ts)


@route("POST", "/projects/:project/issues/:issue_iid/reset_spent_time")
async def reset_spent(fake: FakeGitLab, req: Req) -> web.Response:
    ts = _owner(fake, req)["time_stats"]
    ts["total_time_spent"], ts["human_total_time_spent"] = 0, None
    return ok(ts)


@route("GET", "/projects/:project/issues/:issue_iid/participants")
async def issue_participants(fake: FakeGitLab, req: Req) -> web.Response:
    _, i = issue(fake, req)
    return ok([i["author"]])


@route("GET", "/projects/:project/issues/:issue_iid/closed_by")
async def issue_closed_by(fake: FakeGitLab, req: Req) -> web.Response:
    issue(fake, req)
    return fake.paginate(req, [])


# ---- releases ----------------------------------------------------------------------------------------


@route("GET", "/projects/:project/releases")
async def releases(fake: FakeGitLab, req: Req) -> web.Response:
    pid = project_id(fake, req)
    return fake.paginate(req, list(reversed(fake.store.releases.get(pid, {}).values())))


@route("GET", "/projects/:project/releases/permalink/latest")
async def release_latest(fake: FakeGitLab, req: Req) -> web.Response:
    items = list(fake.store.releases.get(project_id(fake, req), {}).values())
    if not items:
        raise Fail(404, "404 Not found")
    return ok(items[-1])


@route("GET", "/projects/:project/releases/:tag")
async def release(fake: FakeGitLab, req: Req) -> web.Response:
    r = fake.store.releases.get(project_id(fake, req), {}).get(req.params["tag"])
    if r is None:
        raise Fail(404, "404 Not found")
    return ok(r)


@route("POST", "/projects/:project/releases")
async def release_create(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "tag_name")
    pid = project_id(fake, req)
    tag = str(req.arg("tag_name"))
    rels = fake.store.releases.setdefault(pid, {})
    if tag in rels:
        raise Fail(409, "Release already exists")
    repo = fake.store.repos[pid]
    if tag not in repo.tags:
        c = repo.resolve(str(req.arg("ref") or ""))
        if c is None:
            raise Fail(422, "Ref is not specified")
        repo.tags[tag] = {"_sha": c.id, "name": tag, "message": None, "created_at": T0}
    commit = repo.commits[repo.tags[tag]["_sha"]]
    rels[tag] = {
        "tag_name": tag,
        "name": req.arg("name") or tag,
        "description": req.arg("description") or "",
        "created_at": T0,
        "released_at": req.arg("released_at") or T0,
        "upcoming_release": False,
        "author": fake.store.me(),
        "commit": commit.as_json("x"),
        "milestones": [],
        "assets": {"count": 0, "sources": [], "links": []},
        "evidences": [],
    }
    return created(rels[tag])


@route("DELETE", "/projects/:project/releases/:tag")
async def release_delete(fake: FakeGitLab, req: Req) -> web.Response:
    r = fake.store.releases.get(project_id(fake, req), {}).pop(req.params["tag"], None)
    if r is None:
        raise Fail(404, "404 Not found")
    return ok(r)


# ---- milestones, labels, wiki, snippets --------------------------------------------------------------


@route("GET", "/projects/:project/milestones")
@route("GET", "/groups/:group/milestones")
async def milestones(fake: FakeGitLab, req: Req) -> web.Response:
    items = list(fake.store.milestones.get(scope(fake, req), {}).values())
    if req.query.get("state"):
        items = [m for m in items if m["state"] == req.query["state"]]
    return fake.paginate(req, items)


@route("GET", "/projects/:project/milestones/:milestone_id")
@route("GET", "/groups/:group/milestones/:milestone_id")
async def milestone(fake: FakeGitLab, req: Req) -> web.Response:
    m = fake.store.milestones.get(scope(fake, req), {}).get(int(req.params["milestone_id"]))
    if m is None:
        raise Fail(404, "404 Milestone Not Found")
    return ok(m)


@route("POST", "/projects/:project/milestones")
@route("POST", "/groups/:group/milestones")
async def milestone_create(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "title")
    key = scope(fake, req)
    store = fake.store.milestones.setdefault(key, {})
    if any(m["title"] == req.arg("title") for m in store.values()):
        raise Fail(400, "Milestone already exists")
    mid = fake.store.new_id()
    store[mid] = {
        "id": mid,
        "iid": len(store) + 1,
        "title": req.arg("title"),
        "description": req.arg("description"),
        "state": "active",
        "due_date": req.arg("due_date"),
        "start_date": req.arg("start_date"),
        "created_at": T0,
        "updated_at": T0,
        "expired": False,
    }
    return created(store[mid])


@route("GET", "/projects/:project/labels")
@route("GET", "/groups/:group/labels")
async def labels(fake: FakeGitLab, req: Req) -> web.Response:
    items = list(fake.store.labels.get(scope(fake, req), {}).values())
    return fake.paginate(req, filter_text(items, req, "name"))


@route("POST", "/projects/:project/labels")
@route("POST", "/groups/:group/labels")
async def label_create(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "name", "color")
    store = fake.store.labels.setdefault(scope(fake, req), {})
    name, color = str(req.arg("name")), str(req.arg("color"))
    if name in store:
        raise Fail(409, "Label already exists")
    if not re.fullmatch(r"#[0-9A-Fa-f]{6}|[a-z]+", color):
        raise Fail(400, {"color": ["must be a valid color code"]})
    store[name] = _label(fake.store.new_id(), name, color)
    return created(store[name])


@route("GET", "/projects/:project/wikis")
@route("GET", "/groups/:group/wikis")
async def wikis(fake: FakeGitLab, req: Req) -> web.Response:
    items = list(fake.store.wikis.get(scope(fake, req), {}).values())
    if req.query.get("with_content") != "true":
        items = [{k: v for k, v in w.items() if k != "content"} for w in items]
    return ok(items)


@route("GET", "/projects/:project/wikis/:slug")
@route("GET", "/groups/:group/wikis/:slug")
async def wiki(fake: FakeGitLab, req: Req) -> web.Response:
    w = fake.store.wikis.get(scope(fake, req), {}).get(req.params["slug"])
    if w is None:
        raise Fail(404, "404 Wiki Page Not Found")
    return ok(w)


@route("POST", "/projects/:project/wikis")
@route("POST", "/groups/:group/wikis")
async def wiki_create(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "title", "content")
    store = fake.store.wikis.setdefault(scope(fake, req), {})
    slug = str(req.arg("title")).lower().replace(" ", "-")
    store[slug] = {
        "slug": slug,
        "title": req.arg("title"),
        "format": req.arg("format") or "markdown",
        "content": req.arg("content"),
        "encoding": "UTF-8",
    }
    return created(store[slug])


@route("GET", "/snippets")
@route("GET", "/projects/:project/snippets")
async def snippets(fake: FakeGitLab, req: Req) -> web.Response:
    pid = project_id(fake, req) if "project" in req.params else None
    return fake.paginate(req, [s for s in fake.store.snippets.values() if s["project_id"] == pid])


@route("GET", "/snippets/:snippet_id")
@route("GET", "/projects/:project/snippets/:snippet_id")
async def snippet(fake: FakeGitLab, req: Req) -> web.Response:
    s = fake.store.snippets.get(int(req.params["snippet_id"]))
    if s is None:
        raise Fail(404, "404 Snippet Not Found")
    return ok(s)


@route("GET", "/snippets/:snippet_id/raw")
@route("GET", "/projects/:project/snippets/:snippet_id/raw")
async def snippet_raw(fake: FakeGitLab, req: Req) -> web.Response:
    s = fake.store.snippets.get(int(req.params["snippet_id"]))
    if s is None:
        raise Fail(404, "404 Snippet Not Found")
    return web.Response(text=s["_content"], content_type="text/plain")
