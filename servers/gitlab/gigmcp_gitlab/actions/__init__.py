"""The action catalogue: every GitLab action, grouped into domains."""

from __future__ import annotations

from types import MappingProxyType

from . import (
    branches,
    environments,
    groups,
    instance,
    issues,
    jobs,
    labels,
    members,
    merge_requests,
    milestones,
    mr_review,
    pipelines,
    projects,
    releases,
    repository,
    search,
    snippets,
    tags,
    users,
    variables,
    wiki,
)
from .model import Action, Kind, Param

DOMAINS: MappingProxyType[str, str] = MappingProxyType(
    {
        "projects": "projects: list, get, create, fork, archive, transfer",
        "groups": "groups and namespaces, subgroups, group projects",
        "users": "current user (whoami), token scopes, users, events, to-dos",
        "members": "project/group members and access requests",
        "issues": "issues, comments, threads, links, time tracking",
        "merge_requests": "MRs: list, get, create, update, merge, approve, rebase, commits, pipelines",
        "mr_review": "MR review: changed files, per-file diffs, inline comments, threads, drafts",
        "pipelines": "pipelines: list, latest, run, retry, cancel, variables, jobs, tests, schedules, lint",
        "jobs": "jobs: get, log tail, retry, cancel, play, artifacts, runners",
        "repository": "tree, files, blame, commits, diffs, compare, cherry-pick, refs",
        "branches": "branches and branch protection",
        "tags": "tags and tag protection",
        "releases": "releases and asset links",
        "milestones": "project/group milestones",
        "labels": "project/group labels",
        "wiki": "project/group wiki pages",
        "snippets": "personal and project snippets",
        "search": "search GitLab, a group or a project (code, issues, MRs, commits)",
        "variables": "CI/CD variables (values masked unless reveal)",
        "environments": "environments and deployments",
        "instance": "GitLab version/edition, Markdown rendering",
    }
)

_MODULES = (
    projects,
    groups,
    users,
    members,
    issues,
    merge_requests,
    mr_review,
    pipelines,
    jobs,
    repository,
    branches,
    tags,
    releases,
    milestones,
    labels,
    wiki,
    snippets,
    search,
    variables,
    environments,
    instance,
)

CATALOG: tuple[Action, ...] = tuple(a for m in _MODULES for a in m.ACTIONS)
BY_NAME: MappingProxyType[str, Action] = MappingProxyType({a.name: a for a in CATALOG})

__all__ = ["BY_NAME", "CATALOG", "DOMAINS", "Action", "Kind", "Param"]
