"""Releases and release asset links."""

from __future__ import annotations

from .dsl import PROJECT, TAG, Param, arr, delete, e, get, i, lst, post, put, s

D = "releases"
_REL = "/projects/{project}/releases"
_ONE = _REL + "/{tag}"
_LINKS = Param(
    "links",
    "array",
    "Asset links",
    items={
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "url": {"type": "string"},
            "link_type": {"type": "string", "enum": ["other", "runbook", "image", "package"]},
        },
        "required": ["name", "url"],
    },
)

ACTIONS = (
    lst(
        "release_list",
        D,
        "List releases, newest first",
        _REL,
        PROJECT,
        e("order_by", "Order field", ("released_at", "created_at")),
        e("sort", "Direction", ("asc", "desc")),
        columns=("tag_name", "name", "released_at", "author"),
        aliases=("versions", "changelog"),
    ),
    get(
        "release_get",
        D,
        "Get a release by tag with notes and assets",
        _ONE,
        PROJECT,
        TAG,
        text_fields=("description",),
    ),
    get(
        "release_latest",
        D,
        "The latest release",
        _REL + "/permalink/latest",
        PROJECT,
        text_fields=("description",),
    ),
    post(
        "release_create",
        D,
        "Create a release (creates the tag from ref if missing)",
        _REL,
        PROJECT,
        TAG,
        s("name", "Release title"),
        s("description", "Release notes (Markdown)"),
        s("ref", "Ref to tag if the tag does not exist"),
        arr("milestones", "Milestone titles"),
        s("released_at", "ISO 8601 release date"),
        Param("assets", "object", "Assets", properties={"links": _LINKS.schema()}),
        text_fields=("description",),
    ),
    put(
        "release_update",
        D,
        "Update a release's title, notes or date",
        _ONE,
        PROJECT,
        TAG,
        s("name", "Release title"),
        s("description", "Release notes"),
        s("released_at", "ISO 8601 date"),
        arr("milestones", "Milestone titles"),
        text_fields=("description",),
    ),
    delete("release_delete", D, "Delete a release (the tag stays)", _ONE, PROJECT, TAG),
    lst(
        "release_link_list",
        D,
        "Asset links of a release",
        _ONE + "/assets/links",
        PROJECT,
        TAG,
        columns=("id", "name", "url", "link_type"),
    ),
    post(
        "release_link_create",
        D,
        "Add an asset link to a release",
        _ONE + "/assets/links",
        PROJECT,
        TAG,
        s("name", "Link name", True),
        s("url", "Link URL", True),
        e("link_type", "Type", ("other", "runbook", "image", "package")),
    ),
    delete(
        "release_link_delete",
        D,
        "Remove an asset link",
        _ONE + "/assets/links/{link_id}",
        PROJECT,
        TAG,
        i("link_id", "Link id", True),
    ),
)
