"""Search across GitLab, a group, or a project."""

from __future__ import annotations

from .dsl import GROUP, PROJECT, e, lst, s

D = "search"
_GLOBAL = (
    "projects",
    "issues",
    "merge_requests",
    "milestones",
    "snippet_titles",
    "users",
    "blobs",
    "commits",
    "wiki_blobs",
    "notes",
)
_GROUP = (
    "projects",
    "issues",
    "merge_requests",
    "milestones",
    "users",
    "blobs",
    "commits",
    "wiki_blobs",
    "notes",
)
_PROJECT = ("issues", "merge_requests", "milestones", "notes", "wiki_blobs", "commits", "blobs", "users")
_Q = s("query", "Search text", True, api="search")

ACTIONS = (
    lst(
        "search_global",
        D,
        "Search all of GitLab (blobs/commits need advanced search)",
        "/search",
        e("scope", "What to search", _GLOBAL, True),
        _Q,
        e("state", "Issue/MR state", ("opened", "closed", "merged")),
        handler="search",
        aliases=("find", "grep", "code search"),
    ),
    lst(
        "search_group",
        D,
        "Search within a group",
        "/groups/{group}/search",
        GROUP,
        e("scope", "What to search", _GROUP, True),
        _Q,
        e("state", "Issue/MR state", ("opened", "closed", "merged")),
        handler="search",
    ),
    lst(
        "search_project",
        D,
        "Search within a project (blobs = code search)",
        "/projects/{project}/search",
        PROJECT,
        e("scope", "What to search", _PROJECT, True),
        _Q,
        s("ref", "Ref for blobs/commits"),
        handler="search",
        aliases=("code search", "grep", "find in repo"),
    ),
)
