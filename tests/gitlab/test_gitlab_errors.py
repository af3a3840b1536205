"""Each GitLab failure the fake produces is mapped to a message that says what to do; retries work."""

from __future__ import annotations

import time

import pytest

from tests.fake_gitlab import Running

from .conftest import PROJECT, env_for, inproc, run, text


@pytest.mark.parametrize(
    ("status", "needle"),
    [
        (401, "GITLAB_TOKEN"),
        (403, "scope"),
        (404, "IIDs are the"),
        (409, "already exists"),
        (422, "Fix the fields"),
    ],
)
async def test_status_mapping(fake: Running, status: int, needle: str) -> None:
    fake.fake.inject(status, path=r"^/projects/101/merge_requests/1$", body={"message": f"boom {status}"})
    async with inproc(env_for(fake)) as client:
        result = await run(client, "mr_get", {"project": 101, "mr_iid": 1})
    assert result.is_error
    assert f"({status}" in text(result) and f"boom {status}" in text(result) and needle in text(result)
    assert result.structured_content["status"] == status


async def test_natural_404_and_409(fake: Running) -> None:
    async with inproc(env_for(fake)) as client:
        missing = await run(client, "mr_get", {"project": PROJECT, "mr_iid": 999})
        assert missing.is_error and "Not found (404)" in text(missing)
        no_project = await run(client, "mr_get", {"project": "acme/nope", "mr_iid": 1})
        assert no_project.is_error and "acme/nope" in text(no_project)
        dup = await run(
            client,
            "mr_create",
            {"project": PROJECT, "source_branch": "feature/login", "target_branch": "main", "title": "again"},
        )
        assert dup.is_error and "Conflict (409)" in text(dup) and "!1" in text(dup)


async def test_401_without_token(fake: Running) -> None:
    async with inproc(env_for(fake, GITLAB_TOKEN="")) as client:
        result = await run(client, "user_current")
    assert result.is_error and "401" in text(result) and "gateway" in text(result)
    assert fake.fake.requests[-1].auth() == ""


async def test_429_retry_after_is_honoured_for_reads(fake: Running) -> None:
    fake.fake.inject(429, path=r"^/user$", headers={"Retry-After": "1"})
    async with inproc(env_for(fake)) as client:
        start = time.monotonic()
        result = await run(client, "user_current")
        elapsed = time.monotonic() - start
    assert not result.is_error, text(result)
    assert elapsed >= 0.9
    assert [r.path for r in fake.fake.requests].count("/api/v4/user") == 2


async def test_429_on_write_is_reported_with_retry_after(fake: Running) -> None:
    fake.fake.inject(429, path=r"/approve$", headers={"Retry-After": "7"}, body={"message": "Retry later"})
    async with inproc(env_for(fake)) as client:
        result = await run(client, "mr_approve", {"project": PROJECT, "mr_iid": 1})
    assert result.is_error and "429" in text(result) and "7 s" in text(result)
    assert result.structured_content["retry_after"] == 7
    assert len([r for r in fake.fake.writes() if r.path.endswith("/approve")]) == 1


async def test_429_with_long_retry_after_is_not_slept(fake: Running) -> None:
    fake.fake.inject(429, path=r"^/user$", headers={"Retry-After": "3600"})
    async with inproc(env_for(fake)) as client:
        start = time.monotonic()
        result = await run(client, "user_current")
    assert time.monotonic() - start < 5
    assert result.is_error and "3600 s" in text(result)


async def test_5xx_is_retried_with_backoff(fake: Running) -> None:
    fake.fake.inject(502, path=r"^/projects/101/pipelines/latest$", times=2)
    async with inproc(env_for(fake)) as client:
        result = await run(client, "pipeline_latest", {"project": 101})
    assert not result.is_error, text(result)
    assert [r.path for r in fake.fake.requests].count("/api/v4/projects/101/pipelines/latest") == 3


async def test_5xx_gives_up_after_max_retries(fake: Running) -> None:
    fake.fake.inject(503, path=r"^/projects/101$", times=10)
    async with inproc(env_for(fake, GITLAB_MAX_RETRIES="2")) as client:
        result = await run(client, "project_get", {"project": 101})
    assert result.is_error and "server error (503) after 3 attempt(s)" in text(result)


async def test_5xx_on_non_idempotent_write_is_not_retried(fake: Running) -> None:
    fake.fake.inject(500, path=r"/notes$", method="POST", times=5)
    async with inproc(env_for(fake)) as client:
        result = await run(client, "mr_note_create", {"project": PROJECT, "mr_iid": 1, "body": "hello"})
    assert result.is_error and "(500)" in text(result)
    assert len(fake.fake.writes()) == 1


async def test_unreachable_gitlab() -> None:
    env = {"GITLAB_URL": "http://127.0.0.1:9", "GITLAB_TOKEN": "x", "GITLAB_MAX_RETRIES": "0", "GITLAB_TIMEOUT": "3"}
    async with inproc(env) as client:
        result = await run(client, "user_current")
    assert result.is_error and "Cannot reach GitLab" in text(result)


async def test_validation_errors_name_the_problem(fake: Running) -> None:
    async with inproc(env_for(fake)) as client:
        bad = await run(client, "mr_get", {"project": PROJECT, "mr_iid": 1, "mr_idd": 2})
        assert bad.is_error and "mr_idd" in text(bad) and "did you mean" in text(bad)
        missing = await run(client, "mr_get", {"project": PROJECT})
        assert missing.is_error and "mr_iid" in text(missing)
        unknown = await run(client, "merge_request_gett", {})
        assert unknown.is_error and "Did you mean" in text(unknown)
        odd = await client.call_tool(
            "gitlab_execute", {"action": "mr_get", "params": {"project": PROJECT, "mr_iid": 1, "confirm": "maybe"}}
        )
        assert odd.is_error and "confirm" in text(odd)
        enum = await run(client, "mr_list", {"project": PROJECT, "state": "open"})
        assert enum.is_error and "opened" in text(enum)
        line = await run(
            client,
            "mr_comment_inline",
            {"project": PROJECT, "mr_iid": 1, "path": "src/auth/login.py", "line": 30, "body": "x"},
        )
        assert line.is_error and "not part of the diff" in text(line) and "10-18" in text(line)
    assert fake.fake.writes() == []
