"""Small constructors and shared parameters that keep the per-domain action tables short."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .model import Action, Kind, Param

__all__ = ["Action", "Kind", "Param"]

PER_PAGE = Param("per_page", "integer", "Items per page (1-100, default 20)", minimum=1, maximum=100, where="none")
CURSOR = Param("cursor", "string", "Opaque next_cursor from a previous page", where="none")

PROJECT = Param("project", "string", "Project id, full path (group/sub/project) or URL", True, ref="project")
PROJECT_OPT = Param("project", "string", "Project id, path or URL (omit for other scopes)", ref="project")
GROUP = Param("group", "string", "Group id, full path or URL", True, ref="group")
GROUP_OPT = Param("group", "string", "Group id, path or URL (omit for other scopes)", ref="group")
MR_IID = Param("mr_iid", "integer", "Merge request IID (the !N number) or MR URL", True, ref="mr")
ISSUE_IID = Param("issue_iid", "integer", "Issue IID (the #N number) or issue URL", True, ref="issue")
PIPELINE_ID = Param("pipeline_id", "integer", "Pipeline id or pipeline URL", True, ref="pipeline")
JOB_ID = Param("job_id", "integer", "Job id or job URL", True, ref="job")
SHA = Param("sha", "string", "Commit SHA, branch or tag", True, ref="commit")
REF_OPT = Param("ref", "string", "Branch, tag or commit SHA (default: default branch)")
BRANCH = Param("branch", "string", "Branch name", True)
TAG = Param("tag", "string", "Tag name", True, api="tag_name")
USER_ID = Param("user_id", "integer", "Numeric user id", True)
NOTE_ID = Param("note_id", "integer", "Note id", True)
DISCUSSION_ID = Param("discussion_id", "string", "Discussion id", True)
SEARCH = Param("search", "string", "Free-text filter")
STATE_ISSUE = Param("state", "string", "State filter", enum=("opened", "closed", "all"))
STATE_MR = Param("state", "string", "State filter", enum=("opened", "closed", "locked", "merged", "all"))
SORT = Param("sort", "string", "Sort direction", enum=("asc", "desc"))
LABELS = Param("labels", "array", "Label names", csv=True)
ASSIGNEE_IDS = Param("assignee_ids", "array", "Assignee user ids", items={"type": "integer"})
REVIEWER_IDS = Param("reviewer_ids", "array", "Reviewer user ids", items={"type": "integer"})
MILESTONE_ID = Param("milestone_id", "integer", "Milestone id")
BODY = Param("body", "string", "Markdown text", True)
TITLE = Param("title", "string", "Title", True)
TITLE_OPT = Param("title", "string", "New title")
DESCRIPTION = Param("description", "string", "Markdown description")
CONFIDENTIAL = Param("confidential", "boolean", "Confidential")
DUE_DATE = Param("due_date", "string", "Due date YYYY-MM-DD")
VISIBILITY = Param("visibility", "string", "Visibility", enum=("private", "internal", "public"))
ACCESS_LEVEL = Param(
    "access_level",
    "integer",
    "10 guest, 15 planner, 20 reporter, 30 developer, 40 maintainer, 50 owner",
    True,
)
DURATION = Param("duration", "string", "Duration like 1h30m or 3d", True)
FILE_PATH = Param("path", "string", "File path in the repository", True, api="file_path")
CREATED_AFTER = Param("created_after", "string", "ISO 8601 lower bound on creation time")
UPDATED_AFTER = Param("updated_after", "string", "ISO 8601 lower bound on update time")


def _build(
    name: str,
    domain: str,
    summary: str,
    method: str,
    path: str | tuple[str, ...],
    params: tuple[Param, ...],
    kind: Kind,
    idempotent: bool,
    **kw: Any,
) -> Action:
    paths = (path,) if isinstance(path, str) else path
    paginated = bool(kw.pop("paginated", False))
    if paginated:
        params = (*params, PER_PAGE, CURSOR)
    fixed: Mapping[str, Any] = kw.pop("fixed", {})
    return Action(
        name=name,
        domain=domain,
        summary=summary,
        method=method,
        path=paths,
        params=params,
        kind=kind,
        idempotent=idempotent,
        paginated=paginated,
        fixed=fixed,
        **kw,
    )


def get(name: str, domain: str, summary: str, path: str | tuple[str, ...], *params: Param, **kw: Any) -> Action:
    """A GET that reads one object."""
    return _build(name, domain, summary, "GET", path, params, Kind.READ, True, **kw)


def lst(name: str, domain: str, summary: str, path: str | tuple[str, ...], *params: Param, **kw: Any) -> Action:
    """A paginated GET that lists objects."""
    return _build(name, domain, summary, "GET", path, params, Kind.READ, True, paginated=True, **kw)


def post(name: str, domain: str, summary: str, path: str | tuple[str, ...], *params: Param, **kw: Any) -> Action:
    """A POST that creates or triggers something (not idempotent)."""
    idem = bool(kw.pop("idempotent", False))
    kind = kw.pop("kind", Kind.WRITE)
    return _build(name, domain, summary, "POST", path, params, kind, idem, **kw)


def put(name: str, domain: str, summary: str, path: str | tuple[str, ...], *params: Param, **kw: Any) -> Action:
    """A PUT that updates in place (idempotent unless told otherwise)."""
    idem = bool(kw.pop("idempotent", True))
    return _build(name, domain, summary, "PUT", path, params, Kind.WRITE, idem, **kw)


def delete(name: str, domain: str, summary: str, path: str | tuple[str, ...], *params: Param, **kw: Any) -> Action:
    """A DELETE: destructive, needs confirm."""
    return _build(name, domain, summary, "DELETE", path, params, Kind.DESTRUCTIVE, True, **kw)


def destructive_post(
    name: str, domain: str, summary: str, path: str | tuple[str, ...], *params: Param, **kw: Any
) -> Action:
    """A POST/PUT that destroys data or history (erase, transfer): needs confirm."""
    method = str(kw.pop("method", "POST"))
    return _build(name, domain, summary, method, path, params, Kind.DESTRUCTIVE, False, **kw)


def opt(p: Param, desc: str = "") -> Param:
    """The same parameter, optional."""
    return Param(**{**p.__dict__, "required": False, "desc": desc or p.desc})


def req(p: Param, desc: str = "") -> Param:
    """The same parameter, required."""
    return Param(**{**p.__dict__, "required": True, "desc": desc or p.desc})


def s(name: str, desc: str, required: bool = False, **kw: Any) -> Param:
    return Param(name, "string", desc, required, **kw)


def i(name: str, desc: str, required: bool = False, **kw: Any) -> Param:
    return Param(name, "integer", desc, required, **kw)


def b(name: str, desc: str, required: bool = False, **kw: Any) -> Param:
    return Param(name, "boolean", desc, required, **kw)


def arr(name: str, desc: str, item_type: str = "string", required: bool = False, **kw: Any) -> Param:
    return Param(name, "array", desc, required, items={"type": item_type}, **kw)


def e(name: str, desc: str, values: tuple[str, ...], required: bool = False, **kw: Any) -> Param:
    return Param(name, "string", desc, required, enum=values, **kw)


NOTE_COLUMNS = ("id", "author", "created_at", "system", "body")


def note_actions(
    prefix: str,
    domain: str,
    base: str,
    parent: Param,
    noun: str,
    *,
    create_summary: str,
    internal_desc: str,
    create_aliases: tuple[str, ...],
) -> tuple[Action, ...]:
    """The four comment (note) actions GitLab offers on an issue, a merge request, ...: one shape, one place."""
    return (
        lst(f"{prefix}_note_list", domain, f"List comments (notes) on {noun}", base + "/notes", PROJECT, parent,
            SORT, e("order_by", "Order field", ("created_at", "updated_at")), columns=NOTE_COLUMNS,
            text_fields=("body",), aliases=("comments",)),
        post(f"{prefix}_note_create", domain, create_summary, base + "/notes", PROJECT, parent, BODY,
             b("internal", internal_desc), guard=("body",), text_fields=("body",), aliases=create_aliases),
        put(f"{prefix}_note_update", domain, f"Edit a comment on {noun}", base + "/notes/{note_id}", PROJECT,
            parent, NOTE_ID, BODY, guard=("body",), text_fields=("body",)),
        delete(f"{prefix}_note_delete", domain, f"Delete a comment on {noun}", base + "/notes/{note_id}", PROJECT,
               parent, NOTE_ID),
    )
