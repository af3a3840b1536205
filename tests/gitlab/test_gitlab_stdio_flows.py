"""End-to-end flows over stdio (mcp SDK Client + StdioServerParameters) against the fake GitLab."""

from __future__ import annotations

from tests.fake_gitlab import Running

from .conftest import PROJECT, TOKEN, env_for, over_stdio, run, text


async def test_reviewer_flow_over_stdio(fake: Running) -> None:
    async with over_stdio(env_for(fake)) as client:
        tools = await client.list_tools()
        assert [t.name for t in tools.tools] == ["gitlab_find_actions", "gitlab_execute"]

        found = await client.call_tool("gitlab_find_actions", {"query": "list merge requests"})
        assert "mr_list" in text(found)

        mrs = await run(client, "mr_list", {"project": PROJECT, "search": "token", "state": "opened"})
        assert not mrs.is_error, text(mrs)
        item = mrs.structured_content["items"][0]
        assert item["iid"] == 1 and item["title"] == "Harden token checks"

        files = await run(client, "mr_changed_files", {"project": PROJECT, "mr_iid": 1})
        assert not files.is_error, text(files)
        paths = {f["path"]: f for f in files.structured_content["files"]}
        assert paths["src/auth/login.py"]["status"] == "modified"
        assert paths["docs/guide.md"]["status"] == "added"
        assert paths["old/legacy.py"]["status"] == "deleted"
        assert paths["config/app.yaml"]["old_path"] == "config/settings.yaml"
        assert set(files.structured_content["diff_refs"]) == {"base_sha", "start_sha", "head_sha"}

        diff = await run(client, "mr_file_diff", {"project": PROJECT, "mr_iid": 1, "paths": ["src/auth/login.py"]})
        assert not diff.is_error, text(diff)
        assert "+    if token is None:" in text(diff)
        assert "<untrusted-content" in text(diff)
        assert diff.structured_content["diff_refs"]["head_sha"] == files.structured_content["diff_refs"]["head_sha"]

        comment = await run(
            client,
            "mr_comment_inline",
            {
                "project": PROJECT,
                "mr_iid": 1,
                "path": "src/auth/login.py",
                "line": 13,
                "body": "Should a missing token raise instead?",
            },
        )
        assert not comment.is_error, text(comment)
        assert comment.structured_content["position"]["new_line"] == 13

        approve = await run(client, "mr_approve", {"project": PROJECT, "mr_iid": 1})
        assert not approve.is_error, text(approve)
        assert approve.structured_content["result"]["approved"] is True

    posted = [r for r in fake.fake.writes() if r.path.endswith("/merge_requests/1/discussions")]
    assert len(posted) == 1
    position = posted[0].json()["position"]
    assert position["new_path"] == "src/auth/login.py" and position["new_line"] == 13
    assert position["head_sha"] == files.structured_content["diff_refs"]["head_sha"]
    assert all(r.auth() == TOKEN for r in fake.fake.requests)
    discussions = fake.fake.store.mrs[101][1]["_discussions"]
    assert discussions[-1]["notes"][0]["position"]["new_line"] == 13


async def test_ci_flow_over_stdio(fake: Running) -> None:
    async with over_stdio(env_for(fake)) as client:
        latest = await run(client, "pipeline_latest", {"project": PROJECT})
        assert not latest.is_error, text(latest)
        pipeline = latest.structured_content["result"]
        assert pipeline["status"] == "failed"

        jobs = await run(
            client, "pipeline_jobs", {"project": PROJECT, "pipeline_id": pipeline["id"], "scope": ["failed"]}
        )
        failed = jobs.structured_content["items"]
        assert [j["name"] for j in failed] == ["test-unit"]

        log = await run(client, "job_log", {"project": PROJECT, "job_id": failed[0]["id"]})
        assert not log.is_error, text(log)
        meta = log.structured_content
        assert meta["total_lines"] == 50_000
        assert meta["mode"] == "tail" and meta["last_line"] == 50_000 and meta["lines_returned"] <= 200
        assert meta["next_cursor"]
        body = text(log)
        assert "ERROR: Job failed: exit code 1" in body
        assert "FAILED tests/test_auth.py::test_login_rejects_expired_token" in body
        assert "\x1b[" not in body and "section_end" not in body
        assert "[cleanup_file_variables]" in body
        assert len(body.encode()) < 40_000

        earlier = await run(
            client, "job_log", {"project": PROJECT, "job_id": failed[0]["id"], "cursor": meta["next_cursor"]}
        )
        assert earlier.structured_content["last_line"] < meta["first_line"]

        retry = await run(client, "job_retry", {"project": PROJECT, "job_id": failed[0]["id"]})
        assert not retry.is_error, text(retry)
        assert retry.structured_content["result"]["status"] == "pending"

    retries = [r for r in fake.fake.writes() if r.path.endswith(f"/jobs/{failed[0]['id']}/retry")]
    assert len(retries) == 1


async def test_standalone_console_script(fake: Running) -> None:
    """The `gigmcp-gitlab` console script over stdio with GITLAB_TOKEN."""
    env = env_for(fake, GITLAB_TOOL_SURFACE="individual", GITLAB_PRESET="readonly")
    async with over_stdio(env, console_script=True) as client:
        tools = await client.list_tools()
        names = {t.name for t in tools.tools}
        assert "gitlab_user_current" in names and "gitlab_mr_approve" not in names
        me = await client.call_tool("gitlab_user_current", {})
        assert not me.is_error, text(me)
        assert me.structured_content["result"]["username"] == "alice"
        version = await client.call_tool("gitlab_instance_version", {})
        assert version.structured_content["edition"] == "ee"
    assert fake.fake.requests and all(r.headers.get("Authorization") == f"Bearer {TOKEN}" for r in fake.fake.requests)
