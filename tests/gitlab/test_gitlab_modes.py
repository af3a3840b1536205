"""Read-only mode, safe mode, presets, confirmation of destructive actions and the quick-action guard."""

from __future__ import annotations

import pytest
from gigmcp_gitlab.actions import CATALOG

from tests.fake_gitlab import Running

from .conftest import PROJECT, env_for, inproc, run, text

WRITES = {a.name for a in CATALOG if not a.read_only}


@pytest.mark.parametrize("surface", ["dynamic", "domains", "individual"])
async def test_read_only_lists_no_mutating_action(fake: Running, surface: str) -> None:
    async with inproc(env_for(fake, GITLAB_READ_ONLY="true", GITLAB_TOOL_SURFACE=surface)) as client:
        tools = (await client.list_tools()).tools
        assert tools
        for tool in tools:
            assert tool.annotations is not None and tool.annotations.read_only_hint is True, tool.name
            listed = set(tool.input_schema["properties"].get("action", {}).get("enum", []))
            assert not listed & WRITES, tool.name
            assert tool.name.removeprefix("gitlab_") not in WRITES
        if surface == "dynamic":
            found = await client.call_tool("gitlab_find_actions", {"query": "approve merge request", "limit": 20})
            names = {a["name"] for a in found.structured_content["actions"]}
            assert names and not names & WRITES
            domain = await client.call_tool("gitlab_find_actions", {"domain": "merge_requests", "limit": 20})
            everything = {a["name"] for a in domain.structured_content["actions"]} | set(
                domain.structured_content["more"]
            )
            assert "mr_get" in everything and not everything & WRITES


async def test_read_only_refuses_by_name_and_sends_nothing(fake: Running) -> None:
    async with inproc(env_for(fake, GITLAB_READ_ONLY="true")) as client:
        refused = await run(client, "mr_approve", {"project": PROJECT, "mr_iid": 1})
        assert refused.is_error
        assert "read-only" in text(refused) and "mr_approve" in text(refused)
        also = await run(client, "gitlab_mr_merge", {"project": PROJECT, "mr_iid": 1})
        assert also.is_error and "read-only" in text(also)
        ok = await run(client, "mr_get", {"project": PROJECT, "mr_iid": 1})
        assert not ok.is_error
    assert fake.fake.writes() == []


async def test_read_only_still_allows_read_posts(fake: Running) -> None:
    """ci_lint is a POST that changes nothing: it is classed read and stays available."""
    async with inproc(env_for(fake, GITLAB_READ_ONLY="true")) as client:
        lint = await run(client, "ci_lint", {"project": PROJECT, "content": "test:\n  script: true\n"})
        assert not lint.is_error, text(lint)
        assert lint.structured_content["result"]["valid"] is True


async def test_safe_mode_previews_and_records_no_write(fake: Running) -> None:
    async with inproc(env_for(fake, GITLAB_SAFE_MODE="true")) as client:
        tools = (await client.list_tools()).tools
        assert tools[1].annotations is not None and tools[1].annotations.read_only_hint is False
        preview = await run(client, "mr_approve", {"project": PROJECT, "mr_iid": 1})
        assert not preview.is_error, text(preview)
        assert preview.structured_content["status"] == "preview"
        assert preview.structured_content["request"]["method"] == "POST"
        assert preview.structured_content["request"]["path"] == "/projects/101/merge_requests/1/approve"
        assert "nothing was sent" in text(preview).lower()

        inline = await run(
            client,
            "mr_comment_inline",
            {"project": PROJECT, "mr_iid": 1, "path": "src/auth/login.py", "line": 14, "body": "nit"},
        )
        body = inline.structured_content["request"]["body"]
        assert body["position"]["new_line"] == 14 and body["position"]["head_sha"]

        delete = await run(client, "branch_delete", {"project": PROJECT, "branch": "stale/experiment"})
        assert delete.structured_content["status"] == "preview" and delete.structured_content["destructive"]

        read = await run(client, "mr_get", {"project": PROJECT, "mr_iid": 1})
        assert not read.is_error and read.structured_content["result"]["iid"] == 1
    assert fake.fake.writes() == []
    assert fake.fake.requests, "reads still reach GitLab"


async def test_destructive_needs_confirm(fake: Running) -> None:
    async with inproc(env_for(fake)) as client:
        params = {"project": PROJECT, "branch": "stale/experiment"}
        refused = await run(client, "branch_delete", params)
        assert refused.is_error and "confirm" in text(refused)
        assert fake.fake.writes() == []
        done = await run(client, "branch_delete", params, confirm=True)
        assert not done.is_error, text(done)
    assert "stale/experiment" not in fake.fake.store.repos[101].branches


async def test_quick_actions_refused_unless_allowed(fake: Running) -> None:
    body = "Looks good.\n/merge\n"
    async with inproc(env_for(fake)) as client:
        refused = await run(client, "mr_note_create", {"project": PROJECT, "mr_iid": 1, "body": body})
        assert refused.is_error and "/merge" in text(refused)
        fenced = await run(
            client,
            "issue_note_create",
            {"project": PROJECT, "issue_iid": 1, "body": "Run this:\n```\n/usr/bin/make\n```"},
        )
        assert not fenced.is_error, text(fenced)
    assert [r.path for r in fake.fake.writes()] == ["/api/v4/projects/101/issues/1/notes"]
    async with inproc(env_for(fake, GITLAB_ALLOW_QUICK_ACTIONS="true")) as client:
        allowed = await run(client, "issue_note_create", {"project": PROJECT, "issue_iid": 1, "body": "/close"})
        assert not allowed.is_error
    assert fake.fake.store.issues[101][1]["state"] == "closed"


async def test_reviewer_preset_scopes_actions(fake: Running) -> None:
    async with inproc(env_for(fake, GITLAB_PRESET="reviewer", GITLAB_TOOL_SURFACE="domains")) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "gitlab_variables" not in tools and "gitlab_mr_review" in tools
        enum = set(tools["gitlab_merge_requests"].input_schema["properties"]["action"]["enum"])
        assert "mr_approve" in enum and "mr_merge" not in enum
        assert tools["gitlab_repository"].annotations.read_only_hint is True
        merge = await client.call_tool("gitlab_merge_requests", {"action": "mr_merge", "project": PROJECT, "mr_iid": 1})
        assert merge.is_error and "denied" in text(merge)
        approve = await client.call_tool(
            "gitlab_merge_requests", {"action": "mr_approve", "project": PROJECT, "mr_iid": 1}
        )
        assert not approve.is_error, text(approve)


async def test_ci_preset_and_variable_masking(fake: Running) -> None:
    async with inproc(env_for(fake, GITLAB_PRESET="ci")) as client:
        masked = await run(client, "variable_list", {"project": PROJECT})
        assert "s3cret" not in text(masked) and "masked" in text(masked)
        assert all("s3cret" not in str(v) for v in masked.structured_content["items"])
        shown = await run(client, "variable_get", {"project": PROJECT, "key": "DATABASE_URL", "reveal": True})
        assert "s3cret" in text(shown)
        issue = await run(client, "issue_create", {"project": PROJECT, "title": "x"})
        assert issue.is_error and "outside the enabled domains" in text(issue)
