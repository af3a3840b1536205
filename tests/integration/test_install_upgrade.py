"""A staged upgrade: the new version (with a new egress host) is installed beside the old one, the old
one keeps serving until the user consents, then calls switch to the new one while a call already
running on the old one completes normally."""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.api import api
from tests.support.gateway import FIXTURE_REGISTRY, REPO, Gateway, RawSession, running_gateway

pytestmark = [pytest.mark.root]
NEW_HOST = "uploads.example.com"


def _publish(registry: Path, version: str, hosts: list[str]) -> None:
    manifest = yaml.safe_load((FIXTURE_REGISTRY / "servers" / "echo.yaml").read_text())
    # Versions of its own: installs are shared between test gateways, per version.
    manifest["version"] = version
    manifest["package"] = {"path": str(REPO / "servers" / "echo")}
    manifest["egress"] = [{"host": h} for h in hosts]
    (registry / "servers").mkdir(parents=True, exist_ok=True)
    (registry / "servers" / "echo.yaml").write_text(yaml.safe_dump(manifest))


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("registry")
    _publish(path, "0.7.0", [])
    return path


@pytest.fixture(scope="module")
def gw(registry: Path) -> Iterator[Gateway]:
    with running_gateway(env={"GIG_REGISTRY_DIR": str(registry)}) as gateway:
        yield gateway


def _serving(raw: RawSession) -> str:
    reply = raw.call("echo_whoami")
    assert "result" in reply, reply
    cwd = str(reply["result"]["structuredContent"]["cwd"])
    return cwd.rsplit("/", 1)[-1]


def _echo_sandbox(gw: Gateway) -> dict[str, Any]:
    return next(s for s in gw.sandboxes() if s["key"][0] == "echo" and s["state"] == "running")


def _gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        time.sleep(0.1)
    return False


def test_old_version_serves_until_consent_then_switches_without_dropping_calls(gw: Gateway,
                                                                                registry: Path) -> None:
    raw = RawSession(gw).open()
    assert _serving(raw) == "echo@0.7.0"
    old_pid = int(_echo_sandbox(gw)["sandbox_pid"])

    # The registry publishes 0.8.0, which may reach one more host; the admin stages it.
    _publish(registry, "0.8.0", [NEW_HOST])
    status, installed = api(gw, "POST", "/api/servers/install", {"name": "echo", "staged": True})
    assert status == 200 and installed["changed"] and installed["version"] == "0.8.0", installed
    status, view = api(gw, "GET", "/api/consent/echo")
    assert status == 200 and not view["up_to_date"] and view["diff"]["hosts_added"] == [NEW_HOST]

    # Not yet approved: the old version keeps serving, from the very same process.
    assert _serving(raw) == "echo@0.7.0"
    assert int(_echo_sandbox(gw)["sandbox_pid"]) == old_pid

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        slow = pool.submit(RawSession(gw).open().call, "echo_slow", {"seconds": 3})
        deadline = time.monotonic() + 10
        while not any(s["key"][0] == "echo" and s["inflight"] for s in gw.sandboxes()):
            assert time.monotonic() < deadline, "the slow call never started"
            time.sleep(0.05)
        status, granted = api(gw, "POST", "/api/consent/echo", {"runtime_hash": view["current"]["runtime_hash"]})
        assert status == 200 and granted["up_to_date"]
        # The next call runs the new version, in a new sandbox, while the slow call is still running.
        assert _serving(raw) == "echo@0.8.0"
        assert not slow.done(), "the slow call ended before the switch: the test proves nothing"
        assert int(_echo_sandbox(gw)["sandbox_pid"]) != old_pid
        assert Path(f"/proc/{old_pid}").exists(), "the old sandbox was stopped with a call in flight"
        result = slow.result(timeout=30)
    assert "result" in result, result
    assert result["result"]["content"][0]["text"] == "slept 3.0"
    assert _gone(old_pid), "the old sandbox kept running after its last call"
    assert _serving(raw) == "echo@0.8.0"
