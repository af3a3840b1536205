"""The action catalogue: size, schema validity of every action, annotations and safety classes."""

from __future__ import annotations

import re
from typing import Any

import gigmcp_gitlab.handlers  # noqa: F401  (registers handlers)
import pytest
from gigmcp_gitlab.actions import BY_NAME, CATALOG, DOMAINS, Kind
from gigmcp_gitlab.config import Settings
from gigmcp_gitlab.executor import HANDLERS
from gigmcp_gitlab.policy import PRESETS, Policy
from gigmcp_gitlab.server import to_tool
from gigmcp_gitlab.surfaces import make_surface

REQUIRED_DOMAINS = {
    "projects",
    "groups",
    "users",
    "members",
    "issues",
    "merge_requests",
    "mr_review",
    "pipelines",
    "jobs",
    "repository",
    "branches",
    "tags",
    "releases",
    "milestones",
    "labels",
    "wiki",
    "snippets",
    "search",
    "variables",
    "environments",
    "instance",
}
READ_POSTS = {"ci_lint", "markdown_render"}
RESERVED = {"action", "confirm", "result_offset", "params"}


def walk(schema: dict[str, Any], where: str) -> None:
    assert isinstance(schema.get("type"), str), f"{where}: property without type"
    if schema["type"] == "array":
        assert isinstance(schema.get("items"), dict), f"{where}: array without items"
        walk(schema["items"], where + ".items")
    for name, prop in (schema.get("properties") or {}).items():
        walk(prop, f"{where}.{name}")


def test_at_least_150_unique_actions_in_every_domain() -> None:
    assert len(CATALOG) >= 150
    assert len(BY_NAME) == len(CATALOG)
    assert set(DOMAINS) == REQUIRED_DOMAINS
    assert {a.domain for a in CATALOG} == REQUIRED_DOMAINS


@pytest.mark.parametrize("action", CATALOG, ids=lambda a: a.name)
def test_action_schema_is_portable(action: Any) -> None:
    schema = action.input_schema()
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    walk(schema, action.name)
    names = [p.name for p in action.params]
    assert len(names) == len(set(names)), "duplicate parameter"
    assert not set(names) & RESERVED, "parameter name reserved by the surfaces"
    assert action.placeholders() <= set(names), "route placeholder without a parameter"
    assert re.fullmatch(r"[a-z][a-z0-9_]{2,50}", action.name)
    assert action.summary and len(action.summary) < 120
    if action.handler:
        assert action.handler in HANDLERS


@pytest.mark.parametrize("action", CATALOG, ids=lambda a: a.name)
def test_safety_class_matches_method(action: Any) -> None:
    if action.method == "GET":
        assert action.kind is Kind.READ and action.idempotent
    elif action.kind is Kind.READ:
        assert action.name in READ_POSTS
    if action.method == "DELETE":
        assert action.kind is Kind.DESTRUCTIVE


def test_every_issue_capability_is_covered() -> None:
    wanted = {
        "issue_note_create",
        "issue_link_create",
        "issue_time_spent_add",
        "mr_create",
        "mr_update",
        "mr_merge",
        "mr_approve",
        "mr_rebase",
        "mr_discussion_list",
        "mr_draft_create",
        "mr_comment_inline",
        "mr_changed_files",
        "mr_file_diff",
        "pipeline_list",
        "pipeline_get",
        "pipeline_create",
        "pipeline_retry",
        "pipeline_cancel",
        "pipeline_variables",
        "job_list",
        "job_get",
        "job_log",
        "job_retry",
        "job_cancel",
        "job_artifacts_list",
        "job_artifact_file",
        "repo_tree",
        "file_get",
        "file_create",
        "file_update",
        "file_delete",
        "file_blame",
        "commit_list",
        "commit_diff",
        "compare",
        "commit_cherry_pick",
        "commit_refs",
        "branch_protect",
        "tag_protect",
        "release_create",
        "milestone_list",
        "label_create",
        "wiki_get",
        "snippet_content",
        "search_global",
        "search_group",
        "search_project",
        "variable_list",
        "environment_list",
        "deployment_list",
        "user_current",
        "instance_version",
        "member_list",
        "group_get",
        "project_get",
    }
    assert wanted <= set(BY_NAME)


@pytest.mark.parametrize("surface", ["dynamic", "domains", "individual"])
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_surface_and_preset_builds(surface: str, preset: str) -> None:
    settings = Settings.from_env({"GITLAB_TOOL_SURFACE": surface, "GITLAB_PRESET": preset})
    tools = [to_tool(t) for t in make_surface(surface, Policy(settings)).tools()]
    assert tools
    for tool in tools:
        walk(tool.input_schema, tool.name)
        if preset == "readonly":
            assert tool.annotations is not None and tool.annotations.read_only_hint


def test_domain_tools_have_no_type_conflicts() -> None:
    for domain in DOMAINS:
        seen: dict[str, str] = {}
        for a in CATALOG:
            if a.domain != domain:
                continue
            for p in a.params:
                assert seen.setdefault(p.name, p.type) == p.type, f"{domain}.{p.name} has two types"
