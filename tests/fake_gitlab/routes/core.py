"""Instance, users, groups, namespaces, projects, members and search routes of the fake."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..app import Fail, route
from ..state import T0
from .common import created, filter_text, group_id, no_content, ok, project_id, require, scope

if TYPE_CHECKING:
    from ..app import FakeGitLab, Req


@route("GET", "/version")
async def version(fake: FakeGitLab, req: Req) -> web.Response:
    return ok(
        {
            "version": fake.version,
            "revision": "6a0f7c1e",
            "kas": {"enabled": True, "externalUrl": None, "externalK8sProxyUrl": None, "version": "17.5.0"},
            "enterprise": fake.enterprise,
        }
    )


@route("GET", "/metadata")
async def metadata(fake: FakeGitLab, req: Req) -> web.Response:
    return ok(
        {"version": fake.version, "revision": "6a0f7c1e", "kas": {"enabled": True}, "enterprise": fake.enterprise}
    )


@route("GET", "/user")
async def current_user(fake: FakeGitLab, req: Req) -> web.Response:
    return ok(fake.store.users[fake.store.current_user])


@route("GET", "/personal_access_tokens/self")
async def token_self(fake: FakeGitLab, req: Req) -> web.Response:
    return ok(
        {
            "id": 42,
            "name": "mcp",
            "revoked": False,
            "created_at": T0,
            "description": "",
            "scopes": ["api"],
            "user_id": fake.store.current_user,
            "last_used_at": T0,
            "active": True,
            "expires_at": "2027-01-01",
        }
    )


@route("GET", "/users")
async def users(fake: FakeGitLab, req: Req) -> web.Response:
    items = [fake.store.user(uid) for uid in sorted(fake.store.users)]
    if req.query.get("username"):
        items = [u for u in items if u["username"] == req.query["username"]]
    return fake.paginate(req, filter_text(items, req, "username", "name"))


@route("GET", "/users/:user_id")
async def user(fake: FakeGitLab, req: Req) -> web.Response:
    uid = int(req.params["user_id"])
    if uid not in fake.store.users:
        raise Fail(404, "404 User Not Found")
    return ok(fake.store.user(uid))


@route("GET", "/users/:user_id/status")
async def user_status(fake: FakeGitLab, req: Req) -> web.Response:
    return ok(
        {
            "emoji": "coffee",
            "availability": "not_set",
            "message": "Working",
            "message_html": "Working",
            "clear_status_at": None,
        }
    )


@route("GET", "/todos")
async def todos(fake: FakeGitLab, req: Req) -> web.Response:
    return fake.paginate(
        req,
        [
            {
                "id": 900,
                "project": {"id": 101},
                "author": fake.store.user(2),
                "action_name": "review_requested",
                "target_type": "MergeRequest",
                "target": {"iid": 1},
                "target_url": "https://gitlab.example/acme/platform/api/-/merge_requests/1",
                "body": "Harden token checks",
                "state": "pending",
                "created_at": T0,
                "updated_at": T0,
            }
        ],
    )


def _groups(fake: FakeGitLab) -> list[dict[str, Any]]:
    return [fake.store.groups[g] for g in sorted(fake.store.groups)]


@route("GET", "/groups")
async def groups(fake: FakeGitLab, req: Req) -> web.Response:
    items = _groups(fake)
    if req.query.get("top_level_only") == "true":
        items = [g for g in items if g["parent_id"] is None]
    return fake.paginate(req, filter_text(items, req, "name", "path", "full_path"))


@route("GET", "/groups/:group")
async def group(fake: FakeGitLab, req: Req) -> web.Response:
    return ok(fake.store.groups[group_id(fake, req)])


@route("GET", "/groups/:group/subgroups")
async def subgroups(fake: FakeGitLab, req: Req) -> web.Response:
    gid = group_id(fake, req)
    return fake.paginate(req, [g for g in _groups(fake) if g["parent_id"] == gid])


@route("GET", "/groups/:group/descendant_groups")
async def descendants(fake: FakeGitLab, req: Req) -> web.Response:
    gid = group_id(fake, req)
    prefix = fake.store.groups[gid]["full_path"] + "/"
    return fake.paginate(req, [g for g in _groups(fake) if g["full_path"].startswith(prefix)])


@route("GET", "/groups/:group/projects")
async def group_projects(fake: FakeGitLab, req: Req) -> web.Response:
    gid = group_id(fake, req)
    full = fake.store.groups[gid]["full_path"]
    deep = req.query.get("include_subgroups") == "true"
    items = [
        p
        for p in _projects(fake)
        if p["namespace"]["id"] == gid or (deep and p["path_with_namespace"].startswith(full + "/"))
    ]
    return fake.paginate(req, filter_text(items, req, "name", "path"))


@route("POST", "/groups")
async def group_create(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "name", "path")
    gid = fake.store.new_id()
    parent = req.arg("parent_id")
    prefix = fake.store.groups[int(parent)]["full_path"] + "/" if parent else ""
    fake.store.groups[gid] = {
        "id": gid,
        "name": req.arg("name"),
        "path": req.arg("path"),
        "full_path": prefix + req.arg("path"),
        "full_name": req.arg("name"),
        "description": req.arg("description", ""),
        "visibility": req.arg("visibility", "private"),
        "parent_id": int(parent) if parent else None,
        "created_at": T0,
        "web_url": f"https://gitlab.example/groups/{prefix}{req.arg('path')}",
    }
    return created(fake.store.groups[gid])


@route("DELETE", "/groups/:group")
async def group_delete(fake: FakeGitLab, req: Req) -> web.Response:
    gid = group_id(fake, req)
    del fake.store.groups[gid]
    return web.json_response({"message": "202 Accepted"}, status=202)


@route("GET", "/namespaces")
async def namespaces(fake: FakeGitLab, req: Req) -> web.Response:
    items = [
        {
            "id": g["id"],
            "name": g["name"],
            "path": g["path"],
            "kind": "group",
            "full_path": g["full_path"],
            "parent_id": g["parent_id"],
        }
        for g in _groups(fake)
    ]
    return fake.paginate(req, filter_text(items, req, "full_path"))


def _projects(fake: FakeGitLab) -> list[dict[str, Any]]:
    return [fake.store.projects[p] for p in sorted(fake.store.projects)]


@route("GET", "/projects")
async def projects(fake: FakeGitLab, req: Req) -> web.Response:
    items = filter_text(
        _projects(fake),
        req,
        "name",
        "path",
        "path_with_namespace" if req.query.get("search_namespaces") == "true" else "path",
    )
    return fake.paginate(req, items)


@route("GET", "/projects/:project")
async def project(fake: FakeGitLab, req: Req) -> web.Response:
    return ok(fake.store.projects[project_id(fake, req)])


@route("POST", "/projects")
async def project_create(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "name")
    pid = fake.store.new_id()
    path = req.arg("path") or str(req.arg("name")).lower().replace(" ", "-")
    from ..state import _project

    _project(fake.store, pid, path, int(req.arg("namespace_id") or 10), req.arg("description", ""))
    return created(fake.store.projects[pid])


@route("PUT", "/projects/:project")
async def project_update(fake: FakeGitLab, req: Req) -> web.Response:
    p = fake.store.projects[project_id(fake, req)]
    for key in ("name", "description", "visibility", "default_branch", "merge_method"):
        if key in req.body:
            p[key] = req.body[key]
    return ok(p)


@route("DELETE", "/projects/:project")
async def project_delete(fake: FakeGitLab, req: Req) -> web.Response:
    del fake.store.projects[project_id(fake, req)]
    return web.json_response({"message": "202 Accepted"}, status=202)


@route("POST", "/projects/:project/archive")
async def project_archive(fake: FakeGitLab, req: Req) -> web.Response:
    p = fake.store.projects[project_id(fake, req)]
    p["archived"] = True
    return created(p)


@route("POST", "/projects/:project/unarchive")
async def project_unarchive(fake: FakeGitLab, req: Req) -> web.Response:
    p = fake.store.projects[project_id(fake, req)]
    p["archived"] = False
    return created(p)


@route("GET", "/projects/:project/languages")
async def languages(fake: FakeGitLab, req: Req) -> web.Response:
    project_id(fake, req)
    return ok({"Python": 92.5, "YAML": 7.5})


@route("GET", "/projects/:project/events")
async def project_events(fake: FakeGitLab, req: Req) -> web.Response:
    pid = project_id(fake, req)
    return fake.paginate(
        req,
        [
            {
                "id": 1,
                "project_id": pid,
                "action_name": "pushed to",
                "target_id": None,
                "target_iid": None,
                "target_type": None,
                "author_id": 2,
                "target_title": None,
                "created_at": T0,
                "author": fake.store.user(2),
                "author_username": "bob",
            }
        ],
    )


@route("GET", "/projects/:project/members/all")
@route("GET", "/groups/:group/members/all")
@route("GET", "/projects/:project/members")
@route("GET", "/groups/:group/members")
async def members(fake: FakeGitLab, req: Req) -> web.Response:
    key = scope(fake, req)
    items = [
        {**fake.store.user(uid), **m, "created_at": T0, "expires_at": None, "membership_state": "active"}
        for uid, m in sorted(fake.store.members.get(key, {}).items())
    ]
    q = (req.query.get("query") or "").lower()
    if q:
        items = [m for m in items if q in m["username"] or q in m["name"].lower()]
    return fake.paginate(req, items)


@route("GET", "/projects/:project/members/all/:user_id")
@route("GET", "/groups/:group/members/all/:user_id")
async def member(fake: FakeGitLab, req: Req) -> web.Response:
    key = scope(fake, req)
    uid = int(req.params["user_id"])
    m = fake.store.members.get(key, {}).get(uid)
    if m is None:
        raise Fail(404, "404 Member Not Found")
    return ok({**fake.store.user(uid), **m, "expires_at": None})


@route("POST", "/projects/:project/members")
@route("POST", "/groups/:group/members")
async def member_add(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "user_id", "access_level")
    key = scope(fake, req)
    uid = int(req.arg("user_id"))
    if uid in fake.store.members.setdefault(key, {}):
        raise Fail(409, "Member already exists")
    fake.store.members[key][uid] = {"access_level": int(req.arg("access_level"))}
    return created({**fake.store.user(uid), "access_level": int(req.arg("access_level"))})


@route("PUT", "/projects/:project/members/:user_id")
@route("PUT", "/groups/:group/members/:user_id")
async def member_update(fake: FakeGitLab, req: Req) -> web.Response:
    key = scope(fake, req)
    uid = int(req.params["user_id"])
    if uid not in fake.store.members.get(key, {}):
        raise Fail(404, "404 Member Not Found")
    fake.store.members[key][uid]["access_level"] = int(req.arg("access_level"))
    return ok({**fake.store.user(uid), **fake.store.members[key][uid]})


@route("DELETE", "/projects/:project/members/:user_id")
@route("DELETE", "/groups/:group/members/:user_id")
async def member_remove(fake: FakeGitLab, req: Req) -> web.Response:
    key = scope(fake, req)
    fake.store.members.get(key, {}).pop(int(req.params["user_id"]), None)
    return no_content()


def _search(fake: FakeGitLab, req: Req, pids: list[int]) -> web.Response:
    scope_ = req.query.get("scope")
    q = (req.query.get("search") or "").lower()
    if not scope_ or not q:
        raise Fail(400, "400 Bad request - scope, search are missing")
    items: list[dict[str, Any]] = []
    if scope_ == "projects":
        items = [fake.store.projects[p] for p in pids if q in fake.store.projects[p]["path_with_namespace"]]
    elif scope_ == "issues":
        items = [i for p in pids for i in fake.store.issues.get(p, {}).values() if q in i["title"].lower()]
    elif scope_ == "merge_requests":
        items = [m for p in pids for m in fake.store.mrs.get(p, {}).values() if q in m["title"].lower()]
    elif scope_ == "users":
        items = [fake.store.user(u) for u in fake.store.users if q in fake.store.users[u]["username"]]
    elif scope_ == "commits":
        items = [
            c.as_json(fake.store.projects[p]["web_url"]) | {"project_id": p}
            for p in pids
            for c in fake.store.repos[p].commits.values()
            if q in c.title.lower()
        ]
    elif scope_ == "blobs":
        for p in pids:
            repo = fake.store.repos[p]
            head = repo.commits[repo.branches[repo.default_branch]]
            for path, content in sorted(head.files.items()):
                for n, line in enumerate(content.splitlines(), 1):
                    if q in line.lower():
                        items.append(
                            {
                                "basename": path.rsplit(".", 1)[0],
                                "data": line + "\n",
                                "path": path,
                                "filename": path,
                                "id": None,
                                "ref": repo.default_branch,
                                "startline": n,
                                "project_id": p,
                            }
                        )
                        break
    else:
        items = []
    return fake.paginate(req, items)


@route("GET", "/search")
async def search_global(fake: FakeGitLab, req: Req) -> web.Response:
    return _search(fake, req, sorted(fake.store.projects))


@route("GET", "/groups/:group/search")
async def search_group(fake: FakeGitLab, req: Req) -> web.Response:
    full = fake.store.groups[group_id(fake, req)]["full_path"]
    return _search(
        fake,
        req,
        [p for p, d in sorted(fake.store.projects.items()) if d["path_with_namespace"].startswith(full + "/")],
    )


@route("GET", "/projects/:project/search")
async def search_project(fake: FakeGitLab, req: Req) -> web.Response:
    return _search(fake, req, [project_id(fake, req)])


@route("POST", "/markdown")
async def markdown(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "text")
    return created({"html": f"<p>{req.arg('text')}</p>"})
