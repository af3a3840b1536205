"""Branches and protected branches."""

from __future__ import annotations

from .dsl import BRANCH, PROJECT, SEARCH, b, delete, get, i, lst, post, s

D = "branches"
_B = "/projects/{project}/repository/branches"
_PB = "/projects/{project}/protected_branches"

ACTIONS = (
    lst(
        "branch_list",
        D,
        "List branches",
        _B,
        PROJECT,
        SEARCH,
        columns=("name", "merged", "protected", "default", "commit"),
    ),
    get("branch_get", D, "Get one branch with its head commit", _B + "/{branch}", PROJECT, BRANCH),
    post(
        "branch_create",
        D,
        "Create a branch from a ref",
        _B,
        PROJECT,
        BRANCH,
        s("ref", "Source branch, tag or SHA", True),
        aliases=("new branch",),
    ),
    delete("branch_delete", D, "Delete a branch", _B + "/{branch}", PROJECT, BRANCH),
    delete(
        "branch_delete_merged",
        D,
        "Delete all branches merged into the default branch",
        "/projects/{project}/repository/merged_branches",
        PROJECT,
    ),
    lst(
        "protected_branch_list",
        D,
        "List protected branches and their access levels",
        _PB,
        PROJECT,
        SEARCH,
        columns=("name", "push_access_levels", "merge_access_levels", "allow_force_push"),
    ),
    get("protected_branch_get", D, "Get one protected branch rule", _PB + "/{branch}", PROJECT, BRANCH),
    post(
        "branch_protect",
        D,
        "Protect a branch (or wildcard)",
        _PB,
        PROJECT,
        s("branch", "Branch name or wildcard", True, api="name"),
        i("push_access_level", "0 no one, 30 developers, 40 maintainers"),
        i("merge_access_level", "0 no one, 30 developers, 40 maintainers"),
        b("allow_force_push", "Allow force push"),
        b("code_owner_approval_required", "Require code owners"),
    ),
    delete("branch_unprotect", D, "Remove protection from a branch", _PB + "/{branch}", PROJECT, BRANCH),
)
