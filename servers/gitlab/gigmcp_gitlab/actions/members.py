"""Members of projects and groups: list (incl. inherited), add, change role, remove."""

from __future__ import annotations

from .dsl import ACCESS_LEVEL, GROUP_OPT, PROJECT_OPT, USER_ID, delete, get, lst, opt, post, put, s

D = "members"
_SCOPE = ("/projects/{project}/members", "/groups/{group}/members")
_ONE = ("/projects/{project}/members/{user_id}", "/groups/{group}/members/{user_id}")
_COLS = ("id", "username", "name", "access_level", "expires_at")

ACTIONS = (
    lst(
        "member_list",
        D,
        "List members of a project or group (give project or group)",
        ("/projects/{project}/members/all", "/groups/{group}/members/all"),
        PROJECT_OPT,
        GROUP_OPT,
        s("query", "Filter by name or username"),
        columns=_COLS,
    ),
    get(
        "member_get",
        D,
        "Get one member (incl. inherited) of a project or group",
        ("/projects/{project}/members/all/{user_id}", "/groups/{group}/members/all/{user_id}"),
        PROJECT_OPT,
        GROUP_OPT,
        USER_ID,
    ),
    post(
        "member_add",
        D,
        "Add a user to a project or group",
        _SCOPE,
        PROJECT_OPT,
        GROUP_OPT,
        USER_ID,
        ACCESS_LEVEL,
        s("expires_at", "Expiry YYYY-MM-DD"),
    ),
    put(
        "member_update",
        D,
        "Change a member's role or expiry",
        _ONE,
        PROJECT_OPT,
        GROUP_OPT,
        USER_ID,
        ACCESS_LEVEL,
        s("expires_at", "Expiry YYYY-MM-DD"),
    ),
    delete("member_remove", D, "Remove a member from a project or group", _ONE, PROJECT_OPT, GROUP_OPT, USER_ID),
    lst(
        "member_access_requests",
        D,
        "Pending access requests of a project or group",
        ("/projects/{project}/access_requests", "/groups/{group}/access_requests"),
        PROJECT_OPT,
        GROUP_OPT,
        columns=("id", "username", "requested_at"),
    ),
    put(
        "member_access_request_approve",
        D,
        "Approve an access request",
        (
            "/projects/{project}/access_requests/{user_id}/approve",
            "/groups/{group}/access_requests/{user_id}/approve",
        ),
        PROJECT_OPT,
        GROUP_OPT,
        USER_ID,
        opt(ACCESS_LEVEL, "Role to grant (default developer)"),
    ),
)
