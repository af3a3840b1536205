"""Repository routes of the fake: tree, files, blame, commits, diffs, compare, branches, tags."""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..app import Fail, route
from ..state import T0, Repo, diff_files
from .common import created, no_content, ok, project_id, require

if TYPE_CHECKING:
    from ..app import FakeGitLab, Req


def _repo(fake: FakeGitLab, req: Req) -> tuple[int, Repo]:
    pid = project_id(fake, req)
    return pid, fake.store.repos[pid]


def _commit_or_404(repo: Repo, ref: str) -> Any:
    c = repo.resolve(ref)
    if c is None:
        raise Fail(404, "404 Commit Not Found")
    return c


def _web(fake: FakeGitLab, pid: int) -> str:
    return str(fake.store.projects[pid]["web_url"])


@route("GET", "/projects/:project/repository/tree")
async def tree(fake: FakeGitLab, req: Req) -> web.Response:
    _, repo = _repo(fake, req)
    commit = _commit_or_404(repo, req.query.get("ref") or repo.default_branch)
    base = (req.query.get("path") or "").strip("/")
    recursive = req.query.get("recursive") == "true"
    entries: dict[str, str] = {}
    for path in commit.files:
        if base and not path.startswith(base + "/"):
            continue
        rest = path[len(base) + 1 :] if base else path
        parts = rest.split("/")
        prefix = f"{base}/" if base else ""
        if recursive:
            for i in range(1, len(parts)):
                entries[prefix + "/".join(parts[:i])] = "tree"
            entries[prefix + rest] = "blob"
        else:
            entries[prefix + parts[0]] = "blob" if len(parts) == 1 else "tree"
    if base and not entries:
        raise Fail(404, "404 Tree Not Found")
    items = [
        {
            "id": hashlib.sha1(p.encode(), usedforsecurity=False).hexdigest(),
            "name": p.rsplit("/", 1)[-1],
            "type": t,
            "path": p,
            "mode": "040000" if t == "tree" else "100644",
        }
        for p, t in sorted(entries.items(), key=lambda kv: (kv[1] != "tree", kv[0]))
    ]
    return fake.paginate(req, items)


def _file_meta(repo: Repo, path: str, ref: str) -> dict[str, Any]:
    commit = _commit_or_404(repo, ref)
    if path not in commit.files:
        raise Fail(404, "404 File Not Found")
    content = commit.files[path].encode()
    last = commit
    for sha_ in repo.ancestors(commit.id):
        c = repo.commits[sha_]
        if c.files.get(path) == commit.files[path]:
            last = c
    return {
        "file_name": path.rsplit("/", 1)[-1],
        "file_path": path,
        "size": len(content),
        "encoding": "base64",
        "content_sha256": hashlib.sha256(content).hexdigest(),
        "ref": ref,
        "blob_id": hashlib.sha1(content, usedforsecurity=False).hexdigest(),
        "commit_id": commit.id,
        "last_commit_id": last.id,
        "execute_filemode": False,
        "content": base64.b64encode(content).decode(),
    }


@route("GET", "/projects/:project/repository/files/:file_path")
async def file_get(fake: FakeGitLab, req: Req) -> web.Response:
    _, repo = _repo(fake, req)
    if not req.query.get("ref"):
        raise Fail(400, "400 Bad request - ref is missing, ref is empty")
    return ok(_file_meta(repo, req.params["file_path"], req.query["ref"]))


@route("GET", "/projects/:project/repository/files/:file_path/blame")
async def blame(fake: FakeGitLab, req: Req) -> web.Response:
    pid, repo = _repo(fake, req)
    ref = req.query.get("ref")
    if not ref:
        raise Fail(400, "400 Bad request - ref is missing")
    meta = _file_meta(repo, req.params["file_path"], ref)
    lines = base64.b64decode(meta["content"]).decode().splitlines()
    start = int(req.query.get("range[start]", 1))
    end = int(req.query.get("range[end]", len(lines)))
    commit = repo.commits[meta["last_commit_id"]].as_json(_web(fake, pid))
    return ok([{"commit": commit, "lines": lines[start - 1 : end]}])


def _write(fake: FakeGitLab, req: Req, change: str) -> web.Response:
    require(req, "branch", "commit_message")
    _, repo = _repo(fake, req)
    path = req.params["file_path"]
    branch = str(req.arg("branch"))
    start = str(req.arg("start_branch") or branch)
    if start not in repo.branches:
        raise Fail(400, "400 Bad request - You can only create or edit files when you are on a branch")
    files = dict(repo.commits[repo.branches[start]].files)
    if change == "create":
        if path in files:
            raise Fail(400, "A file with this name already exists")
        files[path] = _content(req)
    elif change == "update":
        if path not in files:
            raise Fail(400, "A file with this name doesn't exist")
        files[path] = _content(req)
    else:
        if path not in files:
            raise Fail(400, "A file with this name doesn't exist")
        del files[path]
    c = repo.commit(repo.branches[start], str(req.arg("commit_message")), "Alice", files)
    repo.branches[branch] = c.id
    if change == "delete":
        return no_content()
    return created({"file_path": path, "branch": branch})


def _content(req: Req) -> str:
    content = str(req.arg("content") or "")
    if req.arg("encoding") == "base64":
        return base64.b64decode(content).decode()
    return content


@route("POST", "/projects/:project/repository/files/:file_path")
async def file_create(fake: FakeGitLab, req: Req) -> web.Response:
    return _write(fake, req, "create")


@route("PUT", "/projects/:project/repository/files/:file_path")
async def file_update(fake: FakeGitLab, req: Req) -> web.Response:
    resp = _write(fake, req, "update")
    resp.set_status(200)
    return resp


@route("DELETE", "/projects/:project/repository/files/:file_path")
async def file_delete(fake: FakeGitLab, req: Req) -> web.Response:
    return _write(fake, req, "delete")


@route("GET", "/projects/:project/repository/commits")
async def commits(fake: FakeGitLab, req: Req) -> web.Response:
    pid, repo = _repo(fake, req)
    head = _commit_or_404(repo, req.query.get("ref_name") or repo.default_branch)
    items = [repo.commits[s] for s in repo.ancestors(head.id)]
    if req.query.get("path"):
        path = req.query["path"]
        items = [
            c for c in items if c.files.get(path) != (repo.commits[c.parent].files.get(path) if c.parent else None)
        ]
    return fake.paginate(req, [c.as_json(_web(fake, pid)) for c in items])


@route("GET", "/projects/:project/repository/commits/:sha")
async def commit(fake: FakeGitLab, req: Req) -> web.Response:
    pid, repo = _repo(fake, req)
    return ok(_commit_or_404(repo, req.params["sha"]).as_json(_web(fake, pid), stats=True))


@route("GET", "/projects/:project/repository/commits/:sha/diff")
async def commit_diff(fake: FakeGitLab, req: Req) -> web.Response:
    _, repo = _repo(fake, req)
    c = _commit_or_404(repo, req.params["sha"])
    before = repo.commits[c.parent].files if c.parent else {}
    return fake.paginate(req, diff_files(before, c.files))


@route("GET", "/projects/:project/repository/commits/:sha/refs")
async def commit_refs(fake: FakeGitLab, req: Req) -> web.Response:
    _, repo = _repo(fake, req)
    c = _commit_or_404(repo, req.params["sha"])
    kind = req.query.get("type", "all")
    out = []
    if kind in ("all", "branch"):
        out += [{"type": "branch", "name": b} for b, s in sorted(repo.branches.items()) if c.id in repo.ancestors(s)]
    if kind in ("all", "tag"):
        out += [{"type": "tag", "name": t} for t, d in sorted(repo.tags.items()) if c.id in repo.ancestors(d["_sha"])]
    return fake.paginate(req, out)


@route("GET", "/projects/:project/repository/commits/:sha/statuses")
async def commit_statuses(fake: FakeGitLab, req: Req) -> web.Response:
    _, repo = _repo(fake, req)
    _commit_or_404(repo, req.params["sha"])
    return fake.paginate(req, [])


@route("GET", "/projects/:project/repository/commits/:sha/comments")
async def commit_comments(fake: FakeGitLab, req: Req) -> web.Response:
    _, repo = _repo(fake, req)
    _commit_or_404(repo, req.params["sha"])
    return fake.paginate(req, [])


def _pick(fake: FakeGitLab, req: Req, revert: bool) -> web.Response:
    require(req, "branch")
    pid, repo = _repo(fake, req)
    c = _commit_or_404(repo, req.params["sha"])
    branch = str(req.arg("branch"))
    if branch not in repo.branches:
        raise Fail(404, "404 Branch Not Found")
    target = repo.commits[repo.branches[branch]]
    parent_files = repo.commits[c.parent].files if c.parent else {}
    files = dict(target.files)
    src, dst = (c.files, parent_files) if revert else (parent_files, c.files)
    changed = False
    for path in set(src) | set(dst):
        if src.get(path) != dst.get(path):
            if files.get(path) != src.get(path) and files.get(path) != dst.get(path):
                raise Fail(
                    400,
                    {"message": "Sorry, we cannot cherry-pick this commit automatically.", "error_code": "conflict"},
                )
            changed = changed or files.get(path) != dst.get(path)
            if dst.get(path) is None:
                files.pop(path, None)
            else:
                files[path] = dst[path]
    if not changed:
        raise Fail(400, {"message": "Sorry, we cannot cherry-pick this commit automatically.", "error_code": "empty"})
    if req.flag("dry_run"):
        return ok({"dry_run": "success"})
    title = f'Revert "{c.title}"' if revert else str(req.arg("message") or c.title)
    new = repo.commit(target.id, title, "Alice", files)
    repo.branches[branch] = new.id
    return created(new.as_json(_web(fake, pid)))


@route("POST", "/projects/:project/repository/commits/:sha/cherry_pick")
async def cherry_pick(fake: FakeGitLab, req: Req) -> web.Response:
    return _pick(fake, req, revert=False)


@route("POST", "/projects/:project/repository/commits/:sha/revert")
async def revert(fake: FakeGitLab, req: Req) -> web.Response:
    return _pick(fake, req, revert=True)


@route("POST", "/projects/:project/repository/commits")
async def commit_create(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "branch", "commit_message", "actions")
    pid, repo = _repo(fake, req)
    branch = str(req.arg("branch"))
    start = str(req.arg("start_branch") or branch)
    if start not in repo.branches:
        raise Fail(400, "400 Bad request - branch not found")
    files = dict(repo.commits[repo.branches[start]].files)
    for act in req.body["actions"]:
        path = act["file_path"]
        kind = act["action"]
        if kind in ("create", "update"):
            if (kind == "create") == (path in files):
                raise Fail(400, f"A file with this name {'already exists' if kind == 'create' else 'does not exist'}")
            files[path] = act.get("content", "")
        elif kind == "delete":
            files.pop(path, None)
        elif kind == "move":
            files[path] = files.pop(act["previous_path"])
    c = repo.commit(repo.branches[start], str(req.arg("commit_message")), "Alice", files)
    repo.branches[branch] = c.id
    return created(c.as_json(_web(fake, pid), stats=True))


@route("GET", "/projects/:project/repository/compare")
async def compare(fake: FakeGitLab, req: Req) -> web.Response:
    pid, repo = _repo(fake, req)
    a = _commit_or_404(repo, req.query.get("from", ""))
    b = _commit_or_404(repo, req.query.get("to", ""))
    base = a if req.query.get("straight") == "true" else repo.commits[repo.merge_base(b.id, a.id)]
    shas = [s for s in repo.ancestors(b.id) if s not in repo.ancestors(base.id)]
    return ok(
        {
            "commit": b.as_json(_web(fake, pid)),
            "commits": [repo.commits[s].as_json(_web(fake, pid)) for s in reversed(shas)],
            "diffs": diff_files(base.files, b.files),
            "compare_timeout": False,
            "compare_same_ref": a.id == b.id,
            "web_url": f"{_web(fake, pid)}/-/compare/{a.id[:8]}...{b.id[:8]}",
        }
    )


@route("GET", "/projects/:project/repository/merge_base")
async def merge_base(fake: FakeGitLab, req: Req) -> web.Response:
    pid, repo = _repo(fake, req)
    refs = req.list_arg("refs")
    if len(refs) < 2:
        raise Fail(400, "Provide at least 2 refs")
    commits_ = [_commit_or_404(repo, r) for r in refs]
    return ok(repo.commits[repo.merge_base(commits_[0].id, commits_[1].id)].as_json(_web(fake, pid)))


@route("GET", "/projects/:project/repository/contributors")
async def contributors(fake: FakeGitLab, req: Req) -> web.Response:
    _, repo = _repo(fake, req)
    counts: dict[str, int] = {}
    for c in repo.commits.values():
        counts[c.author] = counts.get(c.author, 0) + 1
    return fake.paginate(
        req,
        [
            {"name": n, "email": f"{n.lower()}@example.com", "commits": k, "additions": 0, "deletions": 0}
            for n, k in sorted(counts.items())
        ],
    )


# ---- branches and tags -------------------------------------------------------------------------------


def _branch(fake: FakeGitLab, pid: int, repo: Repo, name: str) -> dict[str, Any]:
    c = repo.commits[repo.branches[name]]
    default = repo.commits[repo.branches[repo.default_branch]]
    return {
        "name": name,
        "merged": c.id in repo.ancestors(default.id) and name != repo.default_branch,
        "protected": name in repo.protected_branches,
        "default": name == repo.default_branch,
        "developers_can_push": False,
        "developers_can_merge": False,
        "can_push": True,
        "web_url": f"{_web(fake, pid)}/-/tree/{name}",
        "commit": c.as_json(_web(fake, pid)),
    }


@route("GET", "/projects/:project/repository/branches")
async def branches(fake: FakeGitLab, req: Req) -> web.Response:
    pid, repo = _repo(fake, req)
    q = (req.query.get("search") or "").lower()
    return fake.paginate(req, [_branch(fake, pid, repo, b) for b in sorted(repo.branches) if q in b.lower()])


@route("GET", "/projects/:project/repository/branches/:branch")
async def branch(fake: FakeGitLab, req: Req) -> web.Response:
    pid, repo = _repo(fake, req)
    if req.params["branch"] not in repo.branches:
        raise Fail(404, "404 Branch Not Found")
    return ok(_branch(fake, pid, repo, req.params["branch"]))


@route("POST", "/projects/:project/repository/branches")
async def branch_create(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "branch", "ref")
    pid, repo = _repo(fake, req)
    name = str(req.arg("branch"))
    if name in repo.branches:
        raise Fail(400, "Branch already exists")
    c = repo.resolve(str(req.arg("ref")))
    if c is None:
        raise Fail(400, "Invalid reference name: " + str(req.arg("ref")))
    repo.branches[name] = c.id
    return created(_branch(fake, pid, repo, name))


@route("DELETE", "/projects/:project/repository/branches/:branch")
async def branch_delete(fake: FakeGitLab, req: Req) -> web.Response:
    _, repo = _repo(fake, req)
    name = req.params["branch"]
    if name not in repo.branches:
        raise Fail(404, "404 Branch Not Found")
    if name in repo.protected_branches or name == repo.default_branch:
        raise Fail(403, "403 Forbidden")
    del repo.branches[name]
    return no_content()


@route("DELETE", "/projects/:project/repository/merged_branches")
async def merged_delete(fake: FakeGitLab, req: Req) -> web.Response:
    _repo(fake, req)
    return web.json_response({"message": "202 Accepted"}, status=202)


@route("GET", "/projects/:project/protected_branches")
async def protected_branches(fake: FakeGitLab, req: Req) -> web.Response:
    _, repo = _repo(fake, req)
    return fake.paginate(req, list(repo.protected_branches.values()))


@route("GET", "/projects/:project/protected_branches/:branch")
async def protected_branch(fake: FakeGitLab, req: Req) -> web.Response:
    _, repo = _repo(fake, req)
    pb = repo.protected_branches.get(req.params["branch"])
    if pb is None:
        raise Fail(404, "404 Not found")
    return ok(pb)


@route("POST", "/projects/:project/protected_branches")
async def protect(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "name")
    _, repo = _repo(fake, req)
    name = str(req.arg("name"))
    if name in repo.protected_branches:
        raise Fail(409, "Protected branch '" + name + "' already exists")
    level = int(req.arg("push_access_level") or 40)
    repo.protected_branches[name] = {
        "id": len(repo.protected_branches) + 1,
        "name": name,
        "allow_force_push": bool(req.arg("allow_force_push")),
        "code_owner_approval_required": False,
        "push_access_levels": [{"id": 9, "access_level": level, "access_level_description": "Maintainers"}],
        "merge_access_levels": [
            {
                "id": 10,
                "access_level": int(req.arg("merge_access_level") or 40),
                "access_level_description": "Maintainers",
            }
        ],
    }
    return created(repo.protected_branches[name])


@route("DELETE", "/projects/:project/protected_branches/:branch")
async def unprotect(fake: FakeGitLab, req: Req) -> web.Response:
    _, repo = _repo(fake, req)
    if repo.protected_branches.pop(req.params["branch"], None) is None:
        raise Fail(404, "404 Not found")
    return no_content()


def _tag(fake: FakeGitLab, pid: int, repo: Repo, name: str) -> dict[str, Any]:
    t = repo.tags[name]
    c = repo.commits[t["_sha"]]
    rel = fake.store.releases.get(pid, {}).get(name)
    return {
        "commit": c.as_json(_web(fake, pid)),
        "release": {"tag_name": name, "description": rel["description"]} if rel else None,
        "name": name,
        "target": c.id,
        "message": t.get("message"),
        "protected": name in repo.protected_tags,
        "created_at": t.get("created_at", T0),
    }


@route("GET", "/projects/:project/repository/tags")
async def tags(fake: FakeGitLab, req: Req) -> web.Response:
    pid, repo = _repo(fake, req)
    return fake.paginate(req, [_tag(fake, pid, repo, t) for t in sorted(repo.tags, reverse=True)])


@route("GET", "/projects/:project/repository/tags/:tag")
async def tag(fake: FakeGitLab, req: Req) -> web.Response:
    pid, repo = _repo(fake, req)
    if req.params["tag"] not in repo.tags:
        raise Fail(404, "404 Tag Not Found")
    return ok(_tag(fake, pid, repo, req.params["tag"]))


@route("POST", "/projects/:project/repository/tags")
async def tag_create(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "tag_name", "ref")
    pid, repo = _repo(fake, req)
    name = str(req.arg("tag_name"))
    if name in repo.tags:
        raise Fail(400, "Tag " + name + " already exists")
    c = repo.resolve(str(req.arg("ref")))
    if c is None:
        raise Fail(400, "Target " + str(req.arg("ref")) + " is invalid")
    repo.tags[name] = {"_sha": c.id, "name": name, "message": req.arg("message"), "created_at": T0}
    return created(_tag(fake, pid, repo, name))


@route("DELETE", "/projects/:project/repository/tags/:tag")
async def tag_delete(fake: FakeGitLab, req: Req) -> web.Response:
    _, repo = _repo(fake, req)
    if repo.tags.pop(req.params["tag"], None) is None:
        raise Fail(404, "404 Tag Not Found")
    return no_content()


@route("GET", "/projects/:project/protected_tags")
async def protected_tags(fake: FakeGitLab, req: Req) -> web.Response:
    _, repo = _repo(fake, req)
    return fake.paginate(req, list(repo.protected_tags.values()))


@route("POST", "/projects/:project/protected_tags")
async def tag_protect(fake: FakeGitLab, req: Req) -> web.Response:
    require(req, "name")
    _, repo = _repo(fake, req)
    name = str(req.arg("name"))
    repo.protected_tags[name] = {
        "name": name,
        "create_access_levels": [
            {
                "id": 1,
                "access_level": int(req.arg("create_access_level") or 40),
                "access_level_description": "Maintainers",
            }
        ],
    }
    return created(repo.protected_tags[name])


@route("DELETE", "/projects/:project/protected_tags/:tag")
async def tag_unprotect(fake: FakeGitLab, req: Req) -> web.Response:
    _, repo = _repo(fake, req)
    repo.protected_tags.pop(req.params["tag"], None)
    return no_content()
