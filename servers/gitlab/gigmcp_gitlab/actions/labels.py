"""Labels of projects and groups."""

from __future__ import annotations

from .dsl import GROUP_OPT, PROJECT_OPT, SEARCH, b, delete, get, i, lst, post, put, s

D = "labels"
_SCOPE = ("/projects/{project}/labels", "/groups/{group}/labels")
_ONE = ("/projects/{project}/labels/{label}", "/groups/{group}/labels/{label}")
_LABEL = s("label", "Label id or name", True)
_COLS = ("id", "name", "color", "open_issues_count", "open_merge_requests_count", "description")

ACTIONS = (
    lst(
        "label_list",
        D,
        "List labels of a project or group",
        _SCOPE,
        PROJECT_OPT,
        GROUP_OPT,
        SEARCH,
        b("with_counts", "Include issue/MR counts"),
        b("include_ancestor_groups", "Include inherited labels"),
        columns=_COLS,
    ),
    get("label_get", D, "Get one label", _ONE, PROJECT_OPT, GROUP_OPT, _LABEL),
    post(
        "label_create",
        D,
        "Create a label",
        _SCOPE,
        PROJECT_OPT,
        GROUP_OPT,
        s("name", "Label name", True),
        s("color", "Color like #FF0000 or a CSS name", True),
        s("description", "Description"),
        i("priority", "Priority (project labels)"),
    ),
    put(
        "label_update",
        D,
        "Rename or recolor a label",
        _ONE,
        PROJECT_OPT,
        GROUP_OPT,
        _LABEL,
        s("new_name", "New name"),
        s("color", "New color"),
        s("description", "New description"),
    ),
    delete("label_delete", D, "Delete a label", _ONE, PROJECT_OPT, GROUP_OPT, _LABEL),
    post(
        "label_subscribe",
        D,
        "Subscribe to a label",
        ("/projects/{project}/labels/{label}/subscribe", "/groups/{group}/labels/{label}/subscribe"),
        PROJECT_OPT,
        GROUP_OPT,
        _LABEL,
        idempotent=True,
    ),
)
