"""Wiki pages of projects and groups."""

from __future__ import annotations

from .dsl import GROUP_OPT, PROJECT_OPT, b, delete, e, get, lst, post, put, s

D = "wiki"
_SCOPE = ("/projects/{project}/wikis", "/groups/{group}/wikis")
_ONE = ("/projects/{project}/wikis/{slug}", "/groups/{group}/wikis/{slug}")
_SLUG = s("slug", "Page slug, e.g. dir/page", True)
_FORMAT = e("format", "Markup format", ("markdown", "rdoc", "asciidoc", "org"))

ACTIONS = (
    lst(
        "wiki_list",
        D,
        "List wiki pages of a project or group",
        _SCOPE,
        PROJECT_OPT,
        GROUP_OPT,
        b("with_content", "Include page content"),
        columns=("slug", "title", "format"),
    ),
    get(
        "wiki_get",
        D,
        "Read a wiki page",
        _ONE,
        PROJECT_OPT,
        GROUP_OPT,
        _SLUG,
        s("version", "Page version SHA"),
        text_fields=("content",),
        aliases=("docs", "documentation"),
    ),
    post(
        "wiki_create",
        D,
        "Create a wiki page",
        _SCOPE,
        PROJECT_OPT,
        GROUP_OPT,
        s("title", "Title", True),
        s("content", "Page content", True),
        _FORMAT,
    ),
    put(
        "wiki_update",
        D,
        "Edit a wiki page",
        _ONE,
        PROJECT_OPT,
        GROUP_OPT,
        _SLUG,
        s("title", "New title"),
        s("content", "New content"),
        _FORMAT,
    ),
    delete("wiki_delete", D, "Delete a wiki page", _ONE, PROJECT_OPT, GROUP_OPT, _SLUG),
)
