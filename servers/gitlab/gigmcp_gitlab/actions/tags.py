"""Tags and protected tags."""

from __future__ import annotations

from .dsl import PROJECT, SEARCH, TAG, delete, e, get, i, lst, post, s

D = "tags"
_T = "/projects/{project}/repository/tags"
_PT = "/projects/{project}/protected_tags"

ACTIONS = (
    lst(
        "tag_list",
        D,
        "List tags, newest first",
        _T,
        PROJECT,
        SEARCH,
        e("order_by", "Order field", ("name", "updated", "version")),
        e("sort", "Direction", ("asc", "desc")),
        columns=("name", "target", "message", "protected", "created_at"),
    ),
    get("tag_get", D, "Get one tag", _T + "/{tag}", PROJECT, TAG),
    post(
        "tag_create",
        D,
        "Create a tag",
        _T,
        PROJECT,
        TAG,
        s("ref", "Branch or SHA to tag", True),
        s("message", "Annotation message (annotated tag)"),
    ),
    delete("tag_delete", D, "Delete a tag", _T + "/{tag}", PROJECT, TAG),
    lst("protected_tag_list", D, "List protected tags", _PT, PROJECT, columns=("name", "create_access_levels")),
    post(
        "tag_protect",
        D,
        "Protect tags matching a name or wildcard",
        _PT,
        PROJECT,
        s("tag", "Tag name or wildcard", True, api="name"),
        i("create_access_level", "0 no one, 30 developers, 40 maintainers"),
    ),
    delete("tag_unprotect", D, "Unprotect a tag", _PT + "/{tag}", PROJECT, s("tag", "Tag name", True)),
)
