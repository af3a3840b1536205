"""Real third-party servers from the real package registries, installed and run sandboxed.

`@modelcontextprotocol/server-everything` and `@modelcontextprotocol/server-filesystem` come from npm
(`npm ci --ignore-scripts` from the catalog's lock), `mcp-server-fetch` from PyPI (wheels only, every
file pinned by hash). The gateway boot-installs them (auto-consented for the admin) from a temporary
registry built from the bundled manifests; fetch is configured to reach only the local TLS test host.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest_egress import Pki, Upstream, make_pki, start_upstream
from tests.support.gateway import REPO, Gateway, RawSession, running_gateway, shared_data_dir

pytestmark = [pytest.mark.root, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
async def upstream(pki: Pki) -> AsyncIterator[Upstream]:
    up, runners = await start_upstream(pki)
    yield up
    for runner in runners:
        await runner.cleanup()


def _registry(root: Path) -> Path:
    """The bundled manifests of the three servers; fetch ignores robots.txt (the test host has none)."""
    registry = root / "registry"
    (registry / "servers").mkdir(parents=True)
    shutil.copytree(REPO / "registry" / "locks", registry / "locks")
    for name in ("everything", "filesystem", "mcp-server-fetch"):
        data = yaml.safe_load((REPO / "registry" / "servers" / f"{name}.yaml").read_text())
        if name == "mcp-server-fetch":
            data["command"] = [*data["command"], "--ignore-robots-txt"]
        (registry / "servers" / f"{name}.yaml").write_text(yaml.safe_dump(data))
    return registry


@pytest.fixture(scope="module")
def gw(upstream: Upstream, pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    env = {
        "GIG_REGISTRY_DIR": str(_registry(tmp_path_factory.mktemp("reg"))),
        "GIG_SERVER_CONFIG_MCP_SERVER_FETCH__SITE": f"https://allowed.test:{upstream.https_port}",
        "GIG_TEST_EGRESS_OVERRIDES": "allowed.test=127.0.0.1,evil.test=127.0.0.1",
        "GIG_UPSTREAM_CA_FILE": str(pki.ca_pem),
    }
    with running_gateway(install="everything,mcp-server-fetch,filesystem", env=env) as gateway:
        yield gateway


def _text(reply: dict[str, Any]) -> str:
    assert "result" in reply, reply
    return "".join(str(c.get("text", "")) for c in reply["result"].get("content", []))


async def test_everything_from_npm_answers_through_the_gateway(gw: Gateway) -> None:
    raw = RawSession(gw).open()
    tools = {t["name"] for t in raw.request("tools/list")["result"]["tools"]}
    assert "everything_echo" in tools and "mcp-server-fetch_fetch" in tools
    reply = await asyncio.to_thread(raw.call, "everything_echo", {"message": "from npm"})
    assert "from npm" in _text(reply)
    sandbox = next(s for s in gw.sandboxes() if s["key"][0] == "everything" and s["state"] == "running")
    assert sandbox["sandbox_pid"]


async def test_fetch_from_pypi_reaches_the_allowed_host_only(gw: Gateway, upstream: Upstream) -> None:
    raw = RawSession(gw).open()
    url = f"https://allowed.test:{upstream.https_port}/ok?from=pypi"
    reply = await asyncio.to_thread(raw.call, "mcp-server-fetch_fetch", {"url": url, "raw": True})
    assert "result" in reply and not reply["result"].get("isError"), reply
    assert '"path": "/ok?from=pypi"' in _text(reply) or "/ok?from=pypi" in _text(reply)
    assert any(s["path"] == "/ok?from=pypi" for s in upstream.seen)
    before = len(upstream.seen)
    refused = await asyncio.to_thread(raw.call, "mcp-server-fetch_fetch",
                                      {"url": f"https://evil.test:{upstream.https_port}/steal", "raw": True})
    outcome = json.dumps(refused)
    assert "error" in refused or refused["result"].get("isError"), outcome
    assert len(upstream.seen) == before, "a refused request reached the upstream"
    # Audit rows reach the database in batches (a few tens of milliseconds later): wait for this one.
    deadline = time.monotonic() + 10
    while True:
        status, body = gw.get("/api/audit/egress?limit=200&server=mcp-server-fetch")
        assert status == 200
        if any(r["host"] == "evil.test" and r["decision"] == "deny" for r in body["records"]):
            break
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.1)


async def test_filesystem_writes_only_its_profile_data_dir(gw: Gateway) -> None:
    raw = RawSession(gw).open()
    wrote = await asyncio.to_thread(raw.call, "filesystem_write_file", {"path": "/data/hello.txt", "content": "hi"})
    assert "result" in wrote and not wrote["result"].get("isError"), wrote
    sandbox = next(s for s in gw.sandboxes() if s["key"][0] == "filesystem" and s["state"] == "running")
    host_file = shared_data_dir() / "profiles" / str(sandbox["key"][1]) / "filesystem" / "hello.txt"
    assert host_file.read_text() == "hi"
    outside = await asyncio.to_thread(raw.call, "filesystem_write_file", {"path": "/tmp/../etc/x", "content": "x"})
    assert "error" in outside or outside["result"].get("isError"), outside
