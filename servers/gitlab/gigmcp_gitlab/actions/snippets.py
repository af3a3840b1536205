"""Snippets: personal and project snippets, with raw content."""

from __future__ import annotations

from .dsl import PROJECT_OPT, VISIBILITY, Param, delete, get, i, lst, post, put, s

D = "snippets"
_SCOPE = ("/projects/{project}/snippets", "/snippets")
_ONE = ("/projects/{project}/snippets/{snippet_id}", "/snippets/{snippet_id}")
_SID = i("snippet_id", "Snippet id or URL", True, ref="snippet")
_FILES = Param(
    "files",
    "array",
    "Snippet files",
    items={
        "type": "object",
        "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
        "required": ["file_path", "content"],
    },
)
_COLS = ("id", "title", "visibility", "author", "updated_at")

ACTIONS = (
    lst("snippet_list", D, "List your snippets, or a project's snippets", _SCOPE, PROJECT_OPT, columns=_COLS),
    lst("snippet_list_public", D, "List all public snippets", "/snippets/public", columns=_COLS),
    get("snippet_get", D, "Get a snippet's metadata", _ONE, PROJECT_OPT, _SID, text_fields=("description",)),
    get(
        "snippet_content",
        D,
        "Raw content of a snippet",
        ("/projects/{project}/snippets/{snippet_id}/raw", "/snippets/{snippet_id}/raw"),
        PROJECT_OPT,
        _SID,
        handler="raw_file",
        raw=True,
    ),
    post(
        "snippet_create",
        D,
        "Create a snippet (personal, or in a project)",
        _SCOPE,
        PROJECT_OPT,
        s("title", "Title", True),
        _FILES,
        s("description", "Description"),
        VISIBILITY,
    ),
    put(
        "snippet_update",
        D,
        "Update a snippet",
        _ONE,
        PROJECT_OPT,
        _SID,
        s("title", "Title"),
        s("description", "Description"),
        VISIBILITY,
        Param(
            "files",
            "array",
            "File changes",
            items={
                "type": "object",
                "properties": {
                    "action": {"type": "string", "enum": ["create", "update", "delete", "move"]},
                    "file_path": {"type": "string"},
                    "previous_path": {"type": "string"},
                    "content": {"type": "string"},
                },
                "required": ["action", "file_path"],
            },
        ),
    ),
    delete("snippet_delete", D, "Delete a snippet", _ONE, PROJECT_OPT, _SID),
)
