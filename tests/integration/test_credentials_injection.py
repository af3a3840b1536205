"""Sealed credentials end to end: the vault holds the secret, the sandbox only a placeholder, the
egress proxy swaps them per request toward the credential's hosts, and scrubs echoes on the way back."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest_egress import Pki, Upstream, make_pki, start_upstream
from tests.support.api import api
from tests.support.gateway import REPO, Gateway, RawSession, running_gateway

pytestmark = [pytest.mark.root]
ADMIN_SECRET = "glpat-admin-" + secrets.token_hex(8)
BOB_SECRET = "glpat-bob-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
async def upstream(pki: Pki) -> AsyncIterator[Upstream]:
    up, runners = await start_upstream(pki)
    yield up
    for runner in runners:
        await runner.cleanup()


@pytest.fixture(scope="module")
def gw(upstream: Upstream, pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    servers = tmp_path_factory.mktemp("reg") / "registry" / "servers"
    servers.mkdir(parents=True)
    (servers / "fetch.yaml").write_text(textwrap.dedent(f"""\
        name: fetch
        version: 0.1.0
        description: fetch, with a credential for allowed.test
        runtime: python
        package: {{path: {REPO / 'servers' / 'fetch'}}}
        command: [gigmcp-fetch]
        egress:
          - {{host: allowed.test, ports: [{upstream.https_port}]}}
          - {{host: other.test, ports: [{upstream.https_port}]}}
        credentials:
          - id: token
            type: api_key
            hosts: [allowed.test]
            env: FETCH_TOKEN
            header: Authorization
            format: "Bearer {{secret}}"
        """))
    env = {
        "GIG_REGISTRY_DIR": str(servers.parent),
        "GIG_TEST_EGRESS_OVERRIDES": "allowed.test=127.0.0.1,other.test=127.0.0.1",
        "GIG_UPSTREAM_CA_FILE": str(pki.ca_pem),
        "GIG_MASTER_KEY": secrets.token_hex(32),
    }
    with running_gateway(install="fetch", env=env) as gateway:
        assert api(gateway, "PUT", "/api/credentials/fetch/token", {"value": ADMIN_SECRET})[0] in (200, 201)
        yield gateway


async def _fetch(raw: RawSession, **args: Any) -> dict[str, Any]:
    reply = await asyncio.to_thread(raw.call, "fetch_fetch", args)
    assert "result" in reply, reply
    structured = reply["result"].get("structuredContent") or {}
    assert structured, reply
    return dict(structured.get("result", structured))


def _sandbox_environ(gw: Gateway, profile_id: int) -> list[bytes]:
    entry = next(s for s in gw.sandboxes() if s["key"] == ["fetch", profile_id] and s["state"] == "running")
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                if f"PPid:\t{entry['sandbox_pid']}" in status or pid == str(entry["sandbox_pid"]):
                    found.append(Path(f"/proc/{pid}/environ").read_bytes())
            except OSError:
                continue
    assert found
    return found


async def test_upstream_gets_the_secret_the_sandbox_never_has(gw: Gateway, upstream: Upstream) -> None:
    raw = RawSession(gw).open()
    got = await _fetch(raw, url=f"https://allowed.test:{upstream.https_port}/ok", bearer_from_env="FETCH_TOKEN")
    assert got["status"] == 200, got
    seen = upstream.last()
    assert seen["headers"]["authorization"] == f"Bearer {ADMIN_SECRET}"
    # The upstream echoed the header back; the proxy scrubbed it to the placeholder in body and headers.
    assert ADMIN_SECRET not in json.dumps(got)
    echoed = json.loads(got["body"])["headers"]["authorization"]
    assert echoed.startswith("Bearer ") and echoed != f"Bearer {ADMIN_SECRET}"
    placeholder = echoed.removeprefix("Bearer ")
    for environ in _sandbox_environ(gw, 1):
        assert ADMIN_SECRET.encode() not in environ
    assert any(f"FETCH_TOKEN={placeholder}".encode() in e for e in _sandbox_environ(gw, 1))


async def test_hosts_not_bound_to_the_credential_get_only_the_placeholder(gw: Gateway, upstream: Upstream) -> None:
    raw = RawSession(gw).open()
    got = await _fetch(raw, url=f"https://other.test:{upstream.https_port}/ok", bearer_from_env="FETCH_TOKEN")
    assert got["status"] == 200, got
    sent = upstream.last()["headers"]["authorization"]
    assert ADMIN_SECRET not in sent and sent.startswith("Bearer gig")


async def test_two_users_each_get_their_own_secret(gw: Gateway, upstream: Upstream) -> None:
    assert api(gw, "POST", "/api/users", {"name": "bob"})[0] == 201
    status, issued = api(gw, "POST", "/api/tokens", {"name": "t", "user": "bob"})
    assert status == 201
    bob = issued["token"]
    assert api(gw, "PUT", "/api/profiles/bob-default/servers/fetch", token=bob)[0] == 200
    assert api(gw, "POST", "/api/consent/fetch", {}, token=bob)[0] == 200
    assert api(gw, "PUT", "/api/credentials/fetch/token", {"value": BOB_SECRET}, token=bob)[0] in (200, 201)
    url = f"https://allowed.test:{upstream.https_port}/ok"
    bob_raw = RawSession(gw, token=bob).open()
    await _fetch(bob_raw, url=url, bearer_from_env="FETCH_TOKEN")
    assert upstream.last()["headers"]["authorization"] == f"Bearer {BOB_SECRET}"
    await _fetch(RawSession(gw).open(), url=url, bearer_from_env="FETCH_TOKEN")
    assert upstream.last()["headers"]["authorization"] == f"Bearer {ADMIN_SECRET}"
    # A credential updated through the API applies to the next request (resolved per request).
    newer = "glpat-bob-new-" + secrets.token_hex(6)
    assert api(gw, "PUT", "/api/credentials/fetch/token", {"value": newer}, token=bob)[0] in (200, 201)
    await _fetch(bob_raw, url=url, bearer_from_env="FETCH_TOKEN")
    assert upstream.last()["headers"]["authorization"] == f"Bearer {newer}"
