"""Milestones of projects and groups."""

from __future__ import annotations

from .dsl import (
    DESCRIPTION,
    DUE_DATE,
    GROUP_OPT,
    PROJECT_OPT,
    SEARCH,
    delete,
    e,
    get,
    i,
    lst,
    post,
    put,
    s,
)

D = "milestones"
_SCOPE = ("/projects/{project}/milestones", "/groups/{group}/milestones")
_ONE = ("/projects/{project}/milestones/{milestone_id}", "/groups/{group}/milestones/{milestone_id}")
_MID = i("milestone_id", "Milestone id (not iid)", True, ref="milestone")
_COLS = ("id", "iid", "title", "state", "due_date", "expired")

ACTIONS = (
    lst(
        "milestone_list",
        D,
        "List milestones of a project or group",
        _SCOPE,
        PROJECT_OPT,
        GROUP_OPT,
        e("state", "State", ("active", "closed")),
        s("title", "Exact title"),
        SEARCH,
        columns=_COLS,
        aliases=("sprints", "iterations", "roadmap"),
    ),
    get(
        "milestone_get",
        D,
        "Get one milestone",
        _ONE,
        PROJECT_OPT,
        GROUP_OPT,
        _MID,
        text_fields=("description",),
    ),
    post(
        "milestone_create",
        D,
        "Create a milestone",
        _SCOPE,
        PROJECT_OPT,
        GROUP_OPT,
        s("title", "Title", True),
        DESCRIPTION,
        DUE_DATE,
        s("start_date", "Start date YYYY-MM-DD"),
    ),
    put(
        "milestone_update",
        D,
        "Update or close a milestone",
        _ONE,
        PROJECT_OPT,
        GROUP_OPT,
        _MID,
        s("title", "Title"),
        DESCRIPTION,
        DUE_DATE,
        s("start_date", "Start date"),
        e("state_event", "Close or activate", ("close", "activate")),
    ),
    delete("milestone_delete", D, "Delete a milestone", _ONE, PROJECT_OPT, GROUP_OPT, _MID),
    lst(
        "milestone_issues",
        D,
        "Issues in a milestone",
        (
            "/projects/{project}/milestones/{milestone_id}/issues",
            "/groups/{group}/milestones/{milestone_id}/issues",
        ),
        PROJECT_OPT,
        GROUP_OPT,
        _MID,
        columns=("iid", "title", "state", "assignees"),
    ),
    lst(
        "milestone_mrs",
        D,
        "Merge requests in a milestone",
        (
            "/projects/{project}/milestones/{milestone_id}/merge_requests",
            "/groups/{group}/milestones/{milestone_id}/merge_requests",
        ),
        PROJECT_OPT,
        GROUP_OPT,
        _MID,
        columns=("iid", "title", "state", "author"),
    ),
)
