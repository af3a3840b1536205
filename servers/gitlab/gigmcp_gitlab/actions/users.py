"""Users: current user, token info, lookup, events, todos."""

from __future__ import annotations

from .dsl import SEARCH, USER_ID, b, e, get, i, lst, post, s

D = "users"
_UCOLS = ("id", "username", "name", "state")

ACTIONS = (
    get(
        "user_current",
        D,
        "The authenticated user (whoami)",
        "/user",
        aliases=("whoami", "me", "current user", "who am i"),
    ),
    get(
        "token_info",
        D,
        "Scopes and expiry of the current personal access token",
        "/personal_access_tokens/self",
        aliases=("scopes", "token scopes"),
    ),
    lst(
        "user_list",
        D,
        "Find users by username, name or email",
        "/users",
        SEARCH,
        s("username", "Exact username"),
        b("active", "Only active users"),
        columns=_UCOLS,
    ),
    get("user_get", D, "Get one user by id", "/users/{user_id}", USER_ID),
    get(
        "user_status",
        D,
        "Status (emoji, message, availability) of a user",
        "/users/{user_id}/status",
        USER_ID,
    ),
    lst(
        "user_events",
        D,
        "Contribution events of a user",
        "/users/{user_id}/events",
        USER_ID,
        e(
            "event_action",
            "Event action",
            ("approved", "closed", "commented", "created", "merged", "pushed"),
            api="action",
        ),
        s("after", "After YYYY-MM-DD"),
        s("before", "Before YYYY-MM-DD"),
        columns=("created_at", "action_name", "target_type", "target_title", "project_id"),
    ),
    lst(
        "user_projects",
        D,
        "Projects owned by a user",
        "/users/{user_id}/projects",
        USER_ID,
        SEARCH,
        columns=("id", "path_with_namespace", "visibility", "last_activity_at"),
    ),
    lst(
        "todo_list",
        D,
        "Your pending to-do items",
        "/todos",
        e(
            "todo_action",
            "To-do action",
            (
                "assigned",
                "mentioned",
                "build_failed",
                "marked",
                "approval_required",
                "directly_addressed",
                "review_requested",
            ),
            api="action",
        ),
        i("project_id", "Only this project (numeric id)"),
        e("type", "Target type", ("Issue", "MergeRequest", "Commit", "Epic", "DesignManagement::Design")),
        e("state", "State", ("pending", "done")),
        columns=("id", "action_name", "target_type", "state", "body"),
        text_fields=("body",),
    ),
    post(
        "todo_mark_done",
        D,
        "Mark one to-do item as done",
        "/todos/{todo_id}/mark_as_done",
        i("todo_id", "To-do id", True),
        idempotent=True,
    ),
    post("todo_mark_all_done", D, "Mark all to-do items as done", "/todos/mark_as_done", idempotent=True),
)
