"""Behaviour against the fake: auth headers, id resolution, URLs, pagination, budgets, surfaces, writes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from gigmcp_gitlab.client import GitLabClient
from gigmcp_gitlab.config import Settings

from tests.fake_gitlab import Running, running_fake

from .conftest import PROJECT, TOKEN, env_for, inproc, run, text

ENCODED = "/api/v4/projects/acme%2Fplatform%2Fapi"


async def test_auth_header_variants(fake: Running) -> None:
    fake.fake.tokens.add("{{gitlab_token}}")
    async with inproc(env_for(fake, GITLAB_AUTH_HEADER="private-token")) as client:
        assert not (await run(client, "user_current")).is_error
    assert fake.fake.requests[-1].headers.get("PRIVATE-TOKEN") == TOKEN
    assert "Authorization" not in fake.fake.requests[-1].headers
    async with inproc(env_for(fake, GITLAB_TOKEN="", GITLAB_TOKEN_PLACEHOLDER="{{gitlab_token}}")) as client:
        assert not (await run(client, "user_current")).is_error
    assert fake.fake.requests[-1].headers.get("Authorization") == "Bearer {{gitlab_token}}"
    fake.fake.require_auth = False
    async with inproc(env_for(fake, GITLAB_TOKEN="")) as client:
        assert not (await run(client, "user_current")).is_error
    headers = {k.lower() for k in fake.fake.requests[-1].headers}
    assert "authorization" not in headers and "private-token" not in headers


async def test_project_path_resolved_once_to_numeric_id(fake: Running) -> None:
    async with inproc(env_for(fake)) as client:
        for action, params in (
            ("mr_get", {"mr_iid": 1}),
            ("issue_list", {}),
            ("pipeline_latest", {}),
            ("branch_list", {}),
        ):
            result = await run(client, action, {"project": PROJECT, **params})
            assert not result.is_error, text(result)
    paths = [r.path for r in fake.fake.requests]
    assert paths.count(ENCODED) == 1
    assert all("%2F" not in p for p in paths if p != ENCODED)
    assert "/api/v4/projects/101/merge_requests/1" in paths


async def test_mangled_encoded_path_falls_back_to_search(fake: Running) -> None:
    fake.fake.inject(404, path=r"^/projects/acme%2Fplatform%2Fapi$")
    async with inproc(env_for(fake)) as client:
        result = await run(client, "project_get", {"project": PROJECT})
    assert not result.is_error, text(result)
    assert result.structured_content["result"]["id"] == 101


async def test_gitlab_urls_accepted_wherever_an_id_is(fake: Running) -> None:
    async with inproc(env_for(fake)) as client:
        mr = await run(client, "mr_get", {"project": "https://gitlab.example/acme/platform/api/-/merge_requests/1"})
        assert not mr.is_error, text(mr)
        assert mr.structured_content["result"]["iid"] == 1
        job = await run(client, "job_get", {"job_id": "https://gitlab.example/acme/platform/api/-/jobs/5012"})
        assert job.structured_content["result"]["name"] == "test-unit"
        issue = await run(client, "issue_get", {"project": PROJECT, "issue_iid": "#2"})
        assert issue.structured_content["result"]["title"] == "Add dark mode"
        ref = await run(client, "mr_get", {"project": PROJECT, "mr_iid": "acme/platform/api!1"})
        assert not ref.is_error
        blob = await run(
            client, "file_get", {"project": "https://gitlab.example/acme/platform/api/-/blob/main/README.md"}
        )
        assert "The acme API service." in text(blob)


async def test_pagination_cursor(fake: Running) -> None:
    async with inproc(env_for(fake)) as client:
        first = await run(client, "mr_list", {"project": PROJECT, "per_page": 5})
        cursor = first.structured_content["next_cursor"]
        assert first.structured_content["pagination"]["total"] == 12
        second = await run(client, "mr_list", {"project": PROJECT, "cursor": cursor})
        one = [i["iid"] for i in first.structured_content["items"]]
        two = [i["iid"] for i in second.structured_content["items"]]
        assert len(one) == len(two) == 5 and not set(one) & set(two)
        assert second.structured_content["pagination"]["page"] == 2
        bad = await run(client, "mr_list", {"project": PROJECT, "cursor": "%%%"})
        assert bad.is_error and "cursor" in text(bad)


async def test_result_budget_truncates_lists_with_a_continuation(fake: Running) -> None:
    async with inproc(env_for(fake, GITLAB_MAX_RESULT_BYTES="2000")) as client:
        first = await run(client, "mr_list", {"project": PROJECT, "per_page": 100, "state": "all"})
        got = [i["iid"] for i in first.structured_content["items"]]
        assert 0 < len(got) < 12 and len(text(first).encode()) <= 2000
        seen = list(got)
        cursor = first.structured_content.get("next_cursor")
        while cursor:
            page = await run(client, "mr_list", {"project": PROJECT, "cursor": cursor})
            seen += [i["iid"] for i in page.structured_content["items"]]
            cursor = page.structured_content.get("next_cursor")
        assert sorted(seen) == list(range(1, 13))

        big = await run(client, "file_get", {"project": PROJECT, "path": "docs/changelog.md"})
        assert big.structured_content["next_start_line"] and len(text(big).encode()) <= 2000
        nxt, calls = big.structured_content["next_start_line"], 1
        while nxt:
            rest = await run(client, "file_get", {"project": PROJECT, "path": "docs/changelog.md", "start_line": nxt})
            assert rest.structured_content["start_line"] == nxt
            nxt, calls = rest.structured_content["next_start_line"], calls + 1
        assert rest.structured_content["end_line"] == 400 and calls > 2

        detail = await run(client, "job_get", {"project": PROJECT, "job_id": 5012})
        truncated = detail.structured_content.get("truncated")
        if truncated:
            more = await run(
                client, "job_get", {"project": PROJECT, "job_id": 5012}, result_offset=truncated["next_result_offset"]
            )
            assert "continuing at byte" in text(more)

        log = await run(client, "job_log", {"project": PROJECT, "job_id": 5012, "tail_lines": 500})
        body = text(log)
        assert len(body.encode()) <= 2000 and "ERROR: Job failed" in body


async def test_job_log_forward_paging_and_grep(fake: Running) -> None:
    async with inproc(env_for(fake)) as client:
        head = await run(client, "job_log", {"project": PROJECT, "job_id": 5012, "start_line": 1, "max_lines": 10})
        assert head.structured_content["first_line"] == 1 and "[prepare_executor]" in text(head)
        nxt = await run(
            client, "job_log", {"project": PROJECT, "job_id": 5012, "cursor": head.structured_content["next_cursor"]}
        )
        assert nxt.structured_content["first_line"] == 11
        grep = await run(client, "job_log", {"project": PROJECT, "job_id": 5012, "pattern": "failed|error"})
        assert grep.structured_content["matches"] == 3
        assert "exit code 1" in text(grep)


async def test_domains_and_individual_surfaces(fake: Running) -> None:
    async with inproc(env_for(fake, GITLAB_TOOL_SURFACE="domains")) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert len(tools) == 21
        mr = tools["gitlab_merge_requests"]
        assert mr.annotations is not None and mr.annotations.destructive_hint is True
        result = await client.call_tool(
            "gitlab_mr_review", {"action": "mr_changed_files", "project": PROJECT, "mr_iid": 1, "body": "ignored"}
        )
        assert not result.is_error, text(result)
        assert result.structured_content["ignored_params"] == ["body"]
        wrong = await client.call_tool("gitlab_jobs", {"action": "mr_get", "project": PROJECT, "mr_iid": 1})
        assert wrong.is_error and "gitlab_merge_requests" in text(wrong)
    async with inproc(env_for(fake, GITLAB_TOOL_SURFACE="individual")) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "confirm" in tools["gitlab_branch_delete"].input_schema["properties"]
        assert tools["gitlab_mr_get"].annotations.read_only_hint is True
        assert tools["gitlab_branch_delete"].annotations.destructive_hint is True
        result = await client.call_tool("gitlab_pipeline_jobs", {"project": PROJECT, "pipeline_id": 1001})
        assert not result.is_error and result.structured_content["count"] == 4


READS: list[tuple[str, dict[str, Any]]] = [
    ("project_list", {"search": "api"}),
    ("project_get", {"project": PROJECT}),
    ("project_languages", {"project": PROJECT}),
    ("project_events", {"project": PROJECT}),
    ("group_list", {}),
    ("group_get", {"group": "acme/platform"}),
    ("group_subgroups", {"group": "acme"}),
    ("group_projects", {"group": "acme", "include_subgroups": True}),
    ("namespace_list", {}),
    ("user_current", {}),
    ("token_info", {}),
    ("user_list", {"search": "bo"}),
    ("user_get", {"user_id": 2}),
    ("todo_list", {}),
    ("member_list", {"project": PROJECT}),
    ("member_list", {"group": "acme"}),
    ("member_get", {"project": PROJECT, "user_id": 3}),
    ("issue_list", {"project": PROJECT, "labels": "bug"}),
    ("issue_list", {"group": "acme"}),
    ("issue_get", {"project": PROJECT, "issue_iid": 1}),
    ("issue_note_list", {"project": PROJECT, "issue_iid": 1}),
    ("issue_time_stats", {"project": PROJECT, "issue_iid": 1}),
    ("issue_link_list", {"project": PROJECT, "issue_iid": 1}),
    ("issue_related_mrs", {"project": PROJECT, "issue_iid": 1}),
    ("mr_list", {"group": "acme/platform"}),
    ("mr_commits", {"project": PROJECT, "mr_iid": 1}),
    ("mr_pipelines", {"project": PROJECT, "mr_iid": 1}),
    ("mr_approvals", {"project": PROJECT, "mr_iid": 1}),
    ("mr_approval_state", {"project": PROJECT, "mr_iid": 1}),
    ("mr_participants", {"project": PROJECT, "mr_iid": 1}),
    ("mr_versions", {"project": PROJECT, "mr_iid": 1}),
    ("mr_note_list", {"project": PROJECT, "mr_iid": 1}),
    ("mr_discussion_list", {"project": PROJECT, "mr_iid": 1}),
    ("mr_draft_list", {"project": PROJECT, "mr_iid": 1}),
    ("mr_closes_issues", {"project": PROJECT, "mr_iid": 1}),
    ("mr_time_stats", {"project": PROJECT, "mr_iid": 1}),
    ("pipeline_list", {"project": PROJECT, "status": "failed"}),
    ("pipeline_get", {"project": PROJECT, "pipeline_id": 1000}),
    ("pipeline_variables", {"project": PROJECT, "pipeline_id": 1001}),
    ("pipeline_test_report_summary", {"project": PROJECT, "pipeline_id": 1001}),
    ("pipeline_schedule_list", {"project": PROJECT}),
    ("ci_lint_project", {"project": PROJECT}),
    ("job_list", {"project": PROJECT, "scope": ["failed", "success"]}),
    ("job_artifacts_list", {"project": PROJECT, "job_id": 5012}),
    ("job_artifact_file", {"project": PROJECT, "job_id": 5012, "artifact_path": "reports/junit.xml"}),
    ("job_artifact_file", {"project": PROJECT, "job_id": 5012, "artifact_path": "bin/tool"}),
    (
        "job_artifact_file_by_ref",
        {"project": PROJECT, "ref_name": "main", "artifact_path": "reports/junit.xml", "job": "test-unit"},
    ),
    ("runner_list", {"project": PROJECT}),
    ("repo_tree", {"project": PROJECT, "recursive": True}),
    ("repo_tree", {"project": PROJECT, "path": "src/auth"}),
    ("file_blame", {"project": PROJECT, "path": "README.md"}),
    ("commit_list", {"project": PROJECT, "ref": "feature/login"}),
    ("commit_get", {"project": PROJECT, "sha": "main"}),
    ("commit_diff", {"project": PROJECT, "sha": "feature/login"}),
    ("commit_refs", {"project": PROJECT, "sha": "main"}),
    ("commit_statuses", {"project": PROJECT, "sha": "main"}),
    ("compare", {"project": PROJECT, "from": "main", "to": "feature/login"}),
    ("merge_base", {"project": PROJECT, "refs": ["main", "feature/login"]}),
    ("contributors", {"project": PROJECT}),
    ("branch_list", {"project": PROJECT}),
    ("branch_get", {"project": PROJECT, "branch": "feature/login"}),
    ("protected_branch_list", {"project": PROJECT}),
    ("protected_branch_get", {"project": PROJECT, "branch": "main"}),
    ("tag_list", {"project": PROJECT}),
    ("tag_get", {"project": PROJECT, "tag": "v1.0.0"}),
    ("release_list", {"project": PROJECT}),
    ("release_get", {"project": PROJECT, "tag": "v1.0.0"}),
    ("release_latest", {"project": PROJECT}),
    ("milestone_list", {"project": PROJECT}),
    ("milestone_get", {"project": PROJECT, "milestone_id": 400}),
    ("label_list", {"project": PROJECT}),
    ("wiki_list", {"project": PROJECT}),
    ("wiki_get", {"project": PROJECT, "slug": "home"}),
    ("snippet_list", {}),
    ("snippet_get", {"snippet_id": 600}),
    ("snippet_content", {"snippet_id": 600}),
    ("search_global", {"scope": "projects", "query": "api"}),
    ("search_group", {"group": "acme", "scope": "issues", "query": "token"}),
    ("search_project", {"project": PROJECT, "scope": "blobs", "query": "def login"}),
    ("search_project", {"project": PROJECT, "scope": "commits", "query": "harden"}),
    ("variable_list", {"group": "acme"}),
    ("environment_list", {"project": PROJECT}),
    ("environment_get", {"project": PROJECT, "environment_id": 200}),
    ("deployment_list", {"project": PROJECT}),
    ("deployment_get", {"project": PROJECT, "deployment_id": 300}),
    ("instance_version", {}),
]


async def test_read_actions_against_the_fake(fake: Running) -> None:
    async with inproc(env_for(fake)) as client:
        for action, params in READS:
            result = await run(client, action, params)
            assert not result.is_error, f"{action}: {text(result)}"
            assert "Internal error" not in text(result)
            assert isinstance(result.structured_content, dict)
    assert fake.fake.writes() == []


async def test_write_actions_against_the_fake(fake: Running) -> None:
    store = fake.fake.store
    async with inproc(env_for(fake)) as client:

        async def ok(action: str, params: dict[str, Any], **extra: Any) -> Any:
            result = await run(client, action, params, **extra)
            assert not result.is_error, f"{action}: {text(result)}"
            return result

        issue = await ok(
            "issue_create", {"project": PROJECT, "title": "New bug", "description": "Steps", "labels": ["bug"]}
        )
        iid = issue.structured_content["result"]["iid"]
        await ok("issue_note_create", {"project": PROJECT, "issue_iid": iid, "body": "Confirmed."})
        await ok(
            "issue_link_create",
            {"project": PROJECT, "issue_iid": iid, "target_project": PROJECT, "target_issue_iid": 1},
        )
        await ok("issue_time_estimate", {"project": PROJECT, "issue_iid": iid, "duration": "3h"})
        await ok("issue_time_spent_add", {"project": PROJECT, "issue_iid": iid, "duration": "1h30m"})
        assert store.issues[101][iid]["time_stats"]["total_time_spent"] == 5400
        await ok("issue_close", {"project": PROJECT, "issue_iid": iid})
        assert store.issues[101][iid]["state"] == "closed"

        await ok("branch_create", {"project": PROJECT, "branch": "fix/x", "ref": "main"})
        await ok(
            "file_create",
            {
                "project": PROJECT,
                "path": "src/new.py",
                "branch": "fix/x",
                "content": "x = 1\n",
                "commit_message": "add",
            },
        )
        await ok(
            "file_update",
            {
                "project": PROJECT,
                "path": "src/new.py",
                "branch": "fix/x",
                "content": "x = 2\n",
                "commit_message": "edit",
            },
        )
        await ok(
            "commit_create",
            {
                "project": PROJECT,
                "branch": "fix/x",
                "commit_message": "multi",
                "actions": [
                    {"action": "create", "file_path": "a.txt", "content": "a"},
                    {"action": "delete", "file_path": "old/legacy.py"},
                ],
            },
        )
        await ok(
            "file_delete",
            {"project": PROJECT, "path": "a.txt", "branch": "fix/x", "commit_message": "rm"},
            confirm=True,
        )
        pick = await ok("commit_cherry_pick", {"project": PROJECT, "sha": "feature/login", "branch": "fix/x"})
        assert "refs" not in text(pick)
        mr = await ok(
            "mr_create",
            {
                "project": PROJECT,
                "source_branch": "fix/x",
                "target_branch": "main",
                "title": "Fix x",
                "labels": "bug,ui",
            },
        )
        new_iid = mr.structured_content["result"]["iid"]
        assert store.mrs[101][new_iid]["labels"] == ["bug", "ui"]
        await ok("mr_update", {"project": PROJECT, "mr_iid": new_iid, "title": "Draft: Fix x"})
        blocked = await run(client, "mr_merge", {"project": PROJECT, "mr_iid": new_iid})
        assert blocked.is_error and "405" in text(blocked)
        await ok("mr_update", {"project": PROJECT, "mr_iid": new_iid, "title": "Fix x"})
        stale = await run(client, "mr_merge", {"project": PROJECT, "mr_iid": new_iid, "sha": "0" * 40})
        assert stale.is_error and "409" in text(stale)
        await ok("mr_merge", {"project": PROJECT, "mr_iid": new_iid})
        assert store.mrs[101][new_iid]["state"] == "merged"

        draft = await ok(
            "mr_comment_inline",
            {
                "project": PROJECT,
                "mr_iid": 1,
                "path": "src/auth/login.py",
                "line": 11,
                "side": "new",
                "body": "typo?",
                "draft": True,
            },
        )
        assert draft.structured_content["position"]["old_line"] == 11
        await ok(
            "mr_comment_inline",
            {
                "project": PROJECT,
                "mr_iid": 1,
                "path": "src/auth/login.py",
                "line": 13,
                "side": "old",
                "body": "why removed?",
            },
        )
        ranged = await ok(
            "mr_comment_inline",
            {
                "project": PROJECT,
                "mr_iid": 1,
                "path": "src/auth/login.py",
                "line": 13,
                "end_line": 15,
                "body": "this block",
            },
        )
        assert ranged.structured_content["position"]["line_range"]["end"]["new_line"] == 15
        await ok("mr_draft_create", {"project": PROJECT, "mr_iid": 1, "note": "Overall fine."})
        await ok("mr_draft_publish_all", {"project": PROJECT, "mr_iid": 1})
        threads = await ok("mr_discussion_list", {"project": PROJECT, "mr_iid": 1, "unresolved_only": True})
        did = threads.structured_content["items"][0]["id"]
        await ok("mr_discussion_reply", {"project": PROJECT, "mr_iid": 1, "discussion_id": did, "body": "done"})
        await ok("mr_discussion_resolve", {"project": PROJECT, "mr_iid": 1, "discussion_id": did, "resolved": True})
        notes = await ok("mr_note_list", {"project": PROJECT, "mr_iid": 1})
        assert "IGNORE" not in text(notes)

        pipe = await ok(
            "pipeline_create", {"project": PROJECT, "ref": "main", "variables": [{"key": "DEPLOY", "value": "no"}]}
        )
        pid = pipe.structured_content["result"]["id"]
        assert store.pipelines[101][pid]["_variables"] == [{"key": "DEPLOY", "value": "no", "variable_type": "env_var"}]
        await ok("pipeline_cancel", {"project": PROJECT, "pipeline_id": pid})
        await ok("job_play", {"project": PROJECT, "job_id": 5013})
        created = await ok(
            "variable_create", {"project": PROJECT, "key": "API_KEY", "value": "topsecret", "masked": True}
        )
        assert "topsecret" not in text(created)
        await ok("tag_create", {"project": PROJECT, "tag": "v1.1.0", "ref": "main"})
        await ok("release_create", {"project": PROJECT, "tag": "v1.1.0", "name": "1.1", "description": "Notes"})
        await ok("milestone_create", {"project": PROJECT, "title": "v2"})
        bad = await run(client, "label_create", {"project": PROJECT, "name": "x", "color": "not a color"})
        assert bad.is_error and "color" in text(bad)
        await ok("wiki_create", {"project": PROJECT, "title": "Runbook", "content": "steps"})
        await ok("environment_stop", {"project": PROJECT, "environment_id": 201})
        await ok("environment_delete", {"project": PROJECT, "environment_id": 201}, confirm=True)
        await ok("member_add", {"project": "acme/web", "user_id": 3, "access_level": 30})
        await ok("branch_protect", {"project": PROJECT, "branch": "release/*", "push_access_level": 40})
    assert "release/*" in store.repos[101].protected_branches


async def test_ce_instance_degrades_gracefully() -> None:
    async with running_fake(version="16.2.0", enterprise=False) as fake:
        async with inproc(env_for(fake)) as client:
            version = await run(client, "instance_version")
            assert version.structured_content["edition"] == "ce" and "Community" in text(version)
            state = await run(client, "mr_approval_state", {"project": 101, "mr_iid": 1})
            assert state.is_error and "Premium" in text(state)
            approvals = await run(client, "mr_approvals", {"project": 101, "mr_iid": 1})
            assert not approvals.is_error
        assert not any(r.path.endswith("/approval_state") for r in fake.fake.requests)


async def test_concurrency_limit(fake: Running) -> None:
    fake.fake.delay = 0.05
    settings = Settings.from_env(env_for(fake, GITLAB_MAX_CONCURRENCY="2"))
    client = GitLabClient(settings)
    try:
        await asyncio.gather(*(client.request("GET", "/user") for _ in range(8)))
    finally:
        await client.aclose()
    assert fake.fake.max_in_flight == 2


@pytest.mark.parametrize("surface", ["dynamic", "domains", "individual"])
async def test_tool_errors_are_results_not_crashes(fake: Running, surface: str) -> None:
    async with inproc(env_for(fake, GITLAB_TOOL_SURFACE=surface)) as client:
        result = await client.call_tool("gitlab_nope", {})
        assert result.is_error


async def test_user_text_is_framed_as_untrusted(fake: Running) -> None:
    async with inproc(env_for(fake)) as client:
        mr = await run(client, "mr_get", {"project": PROJECT, "mr_iid": 1})
    body = text(mr)
    frame = body.index('<untrusted-content source="mr_get description">')
    assert frame < body.index("IGNORE PREVIOUS INSTRUCTIONS") < body.index("</untrusted-content>")
    assert body.startswith("Text inside <untrusted-content>")
    assert mr.structured_content["untrusted"] is True


async def test_version_detection_failure_degrades(fake: Running) -> None:
    fake.fake.inject(403, path=r"^/(version|metadata)$", times=10)
    async with inproc(env_for(fake)) as client:
        version = await run(client, "instance_version")
        assert version.is_error and "version" in text(version)
        state = await run(client, "mr_approval_state", {"project": PROJECT, "mr_iid": 1})
        assert not state.is_error, text(state)
    assert any(r.path.endswith("/approval_state") for r in fake.fake.requests)


@pytest.mark.parametrize("surface_safe", [False, True])
async def test_every_action_runs_without_internal_error(fake: Running, surface_safe: bool) -> None:
    """Each of the catalogue's actions, called with plausible required params, gives a result or a mapped
    GitLab error, never an internal error. Safe mode must then have recorded no write at all."""
    from gigmcp_gitlab.actions import CATALOG
    from gigmcp_gitlab.finder import example

    env = env_for(fake, GITLAB_SAFE_MODE="true" if surface_safe else "")
    async with inproc(env) as client:
        for action in CATALOG:
            params = example(action)
            for p in action.params:
                if p.required and p.ref == "project":
                    params[p.name] = PROJECT
                elif p.required and p.ref == "group":
                    params[p.name] = "acme"
            if any(p.name == "project" for p in action.params) and "project" not in params:
                params["project"] = PROJECT
            result = await run(client, action.name, params, confirm=True)
            assert "Internal error" not in text(result), f"{action.name}: {text(result)}"
            assert isinstance(result.structured_content, dict)
    if surface_safe:  # only the two read-classified POSTs (CI lint, Markdown render) may reach GitLab
        assert {r.path for r in fake.fake.writes()} <= {"/api/v4/projects/101/ci/lint", "/api/v4/markdown"}
