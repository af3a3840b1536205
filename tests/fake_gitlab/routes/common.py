"""Lookups and response helpers shared by the fake's routes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..app import Fail
from ..state import T0, public

if TYPE_CHECKING:
    from ..app import FakeGitLab, Req


def ok(obj: Any, status: int = 200) -> web.Response:
    return web.json_response(public(obj), status=status)


def created(obj: Any) -> web.Response:
    return ok(obj, 201)


def no_content() -> web.Response:
    return web.Response(status=204)


def project_id(fake: FakeGitLab, req: Req, key: str = "project") -> int:
    ref = req.params[key]
    if ref.isdigit() and int(ref) in fake.store.projects:
        return int(ref)
    for pid, p in fake.store.projects.items():
        if p["path_with_namespace"].lower() == ref.lower():
            return pid
    raise Fail(404, "404 Project Not Found")


def group_id(fake: FakeGitLab, req: Req, key: str = "group") -> int:
    ref = req.params[key]
    if ref.isdigit() and int(ref) in fake.store.groups:
        return int(ref)
    for gid, g in fake.store.groups.items():
        if g["full_path"].lower() == ref.lower():
            return gid
    raise Fail(404, "404 Group Not Found")


def scope(fake: FakeGitLab, req: Req) -> tuple[str, int]:
    if "project" in req.params:
        return "project", project_id(fake, req)
    return "group", group_id(fake, req)


def mr(fake: FakeGitLab, req: Req) -> tuple[int, dict[str, Any]]:
    pid = project_id(fake, req)
    found = fake.store.mrs.get(pid, {}).get(int(req.params["mr_iid"]))
    if found is None:
        raise Fail(404, "404 Not found")
    return pid, found


def issue(fake: FakeGitLab, req: Req) -> tuple[int, dict[str, Any]]:
    pid = project_id(fake, req)
    found = fake.store.issues.get(pid, {}).get(int(req.params["issue_iid"]))
    if found is None:
        raise Fail(404, "404 Not found")
    return pid, found


def require(req: Req, *names: str) -> None:
    missing = [n for n in names if req.arg(n) in (None, "")]
    if missing:
        raise Fail(400, f"400 Bad request - {', '.join(missing)} is missing")


def note(
    fake: FakeGitLab, body: str, noteable_type: str, noteable_id: int, noteable_iid: int, pid: int, **extra: Any
) -> dict[str, Any]:
    return {
        "id": fake.store.new_id(),
        "type": extra.pop("type", None),
        "body": body,
        "attachment": None,
        "author": fake.store.me(),
        "created_at": T0,
        "updated_at": T0,
        "system": False,
        "noteable_id": noteable_id,
        "noteable_type": noteable_type,
        "project_id": pid,
        "noteable_iid": noteable_iid,
        "resolvable": False,
        "confidential": False,
        "internal": False,
        "imported": False,
        "imported_from": "none",
        **extra,
    }


def filter_text(items: list[dict[str, Any]], req: Req, *fields: str) -> list[dict[str, Any]]:
    q = (req.query.get("search") or "").lower()
    if not q:
        return items
    return [i for i in items if any(q in str(i.get(f) or "").lower() for f in fields)]
