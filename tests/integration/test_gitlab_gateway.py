"""The GitLab server from the bundled catalog, sandboxed behind the gateway, against the fake GitLab:
reviewer and CI flows work, the fake sees the injected token, the server's process never holds it."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fake_gitlab import Running, running_fake
from tests.integration.conftest_egress import Pki, make_pki
from tests.support.api import api
from tests.support.gateway import Gateway, RawSession, running_gateway

pytestmark = [pytest.mark.root]
SECRET = "glpat-" + secrets.token_hex(10)
PROJECT = "acme/platform/api"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
async def fake(pki: Pki) -> AsyncIterator[Running]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(pki.cert_pem), str(pki.key_pem))
    async with running_fake(ssl_context=ctx, tokens={SECRET}) as running:
        yield running


@pytest.fixture(scope="module")
def gw(fake: Running, pki: Pki) -> Iterator[Gateway]:
    port = fake.url.rsplit(":", 1)[1]
    env = {
        "GIG_REGISTRY_DIR": str(Path(__file__).resolve().parents[2] / "registry"),  # the bundled catalog
        "GIG_SERVER_CONFIG_GITLAB__GITLAB_URL": f"https://allowed.test:{port}",
        "GIG_TEST_EGRESS_OVERRIDES": "allowed.test=127.0.0.1",
        "GIG_UPSTREAM_CA_FILE": str(pki.ca_pem),
        "GIG_MASTER_KEY": secrets.token_hex(32),
    }
    with running_gateway(install="gitlab", env=env) as gateway:
        assert api(gateway, "PUT", "/api/credentials/gitlab/gitlab_token", {"value": SECRET})[0] in (200, 201)
        yield gateway


async def _run(raw: RawSession, action: str, params: dict[str, Any]) -> dict[str, Any]:
    reply = await asyncio.to_thread(raw.call, "gitlab_gitlab_execute", {"action": action, "params": params})
    assert "result" in reply, reply
    result = reply["result"]
    if result.get("isError"):
        denied = [r for r in raw.gw.get("/api/audit/egress?decision=deny")[1]["records"]][:3]
        raise AssertionError(f"{result['content'][0]['text'][:500]} / denials: {denied}")
    return dict(result)


async def test_reviewer_flow(gw: Gateway, fake: Running) -> None:
    raw = RawSession(gw).open()
    tools = await asyncio.to_thread(raw.request, "tools/list")
    assert [t["name"] for t in tools["result"]["tools"]] == ["gitlab_gitlab_find_actions", "gitlab_gitlab_execute"]
    mrs = await _run(raw, "mr_list", {"project": PROJECT, "search": "token", "state": "opened"})
    mr = mrs["structuredContent"]["items"][0]
    files = await _run(raw, "mr_changed_files", {"project": PROJECT, "mr_iid": mr["iid"]})
    paths = [f["path"] for f in files["structuredContent"]["files"]]
    assert "src/auth/login.py" in paths
    diff = await _run(raw, "mr_file_diff", {"project": PROJECT, "mr_iid": mr["iid"], "paths": ["src/auth/login.py"]})
    assert "+    if token is None:" in diff["content"][0]["text"]
    comment = await _run(raw, "mr_comment_inline", {"project": PROJECT, "mr_iid": mr["iid"],
                                                    "path": "src/auth/login.py", "line": 13, "body": "Raise here?"})
    assert comment["structuredContent"]["position"]["new_line"] == 13
    await _run(raw, "mr_approve", {"project": PROJECT, "mr_iid": mr["iid"]})
    assert any(r.path.endswith(f"/merge_requests/{mr['iid']}/approve") for r in fake.fake.writes())


async def test_ci_flow(gw: Gateway, fake: Running) -> None:
    raw = RawSession(gw).open()
    latest = await _run(raw, "pipeline_latest", {"project": PROJECT})
    pipeline = latest["structuredContent"]["result"]
    jobs = await _run(raw, "pipeline_jobs", {"project": PROJECT, "pipeline_id": pipeline["id"], "scope": ["failed"]})
    failed = jobs["structuredContent"]["items"][0]
    log = await _run(raw, "job_log", {"project": PROJECT, "job_id": failed["id"]})
    assert log["structuredContent"]["total_lines"] == 50_000
    assert "ERROR: Job failed" in log["content"][0]["text"]
    await _run(raw, "job_retry", {"project": PROJECT, "job_id": failed["id"]})
    assert any(r.path.endswith(f"/jobs/{failed['id']}/retry") for r in fake.fake.writes())


def test_the_fake_saw_the_token_the_sandbox_never_held(gw: Gateway, fake: Running) -> None:
    seen = {r.headers.get("Authorization", r.headers.get("authorization", "")) for r in fake.fake.requests}
    assert seen == {f"Bearer {SECRET}"}, seen
    entry = next(s for s in gw.sandboxes() if s["key"][0] == "gitlab" and s["state"] == "running")
    root = str(entry["sandbox_pid"])
    checked = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            if pid == root or f"PPid:\t{root}" in status:
                environ = Path(f"/proc/{pid}/environ").read_bytes()
                assert SECRET.encode() not in environ
                assert b"GITLAB_TOKEN_PLACEHOLDER=" in environ or pid == root
                checked += 1
        except FileNotFoundError:
            continue
    assert checked >= 2
    assert SECRET not in json.dumps(gw.sandboxes())
