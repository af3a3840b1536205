"""Consent end to end: no consent, no sandbox process; grant, and it runs; a changed manifest stops the
running sandbox, shows exactly what changed, and nothing runs again until the user consents anew."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.api import api, cli, descendants_with_uid, sandbox_uid
from tests.support.gateway import FIXTURE_REGISTRY, REPO, Gateway, RawSession, running_gateway

pytestmark = [pytest.mark.root]
NEW_HOST = "uploads.example.com"


def _echo_manifest(version: str, hosts: list[str]) -> dict[str, object]:
    manifest = yaml.safe_load((FIXTURE_REGISTRY / "servers" / "echo.yaml").read_text())
    manifest["version"] = version  # versions of its own: the shared install of echo@0.1.0 stays untouched
    manifest["package"] = {"path": str(REPO / "servers" / "echo")}  # the temp registry lives elsewhere
    manifest["egress"] = [{"host": h} for h in hosts]
    return dict(manifest)


def _publish(registry: Path, manifest: dict[str, object]) -> None:
    (registry / "servers").mkdir(parents=True, exist_ok=True)
    (registry / "servers" / "echo.yaml").write_text(yaml.safe_dump(manifest))


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("registry")
    _publish(path, _echo_manifest("0.2.0", ["api.example.com"]))
    return path


@pytest.fixture(scope="module")
def gw(registry: Path) -> Iterator[Gateway]:
    with running_gateway(env={"GIG_REGISTRY_DIR": str(registry)}) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def dana(gw: Gateway) -> str:
    assert api(gw, "POST", "/api/users", {"name": "dana"})[0] == 201
    status, token = api(gw, "POST", "/api/tokens", {"name": "t", "user": "dana"})
    assert status == 201
    assert api(gw, "PUT", "/api/profiles/dana-default/servers/echo", token=token["token"])[0] == 200
    return str(token["token"])


def _dana_sandboxes(gw: Gateway, profile_id: int) -> list[dict[str, object]]:
    return [s for s in gw.sandboxes() if s["key"] == ["echo", profile_id]]


def _profile_id(gw: Gateway, token: str) -> int:
    status, profile = api(gw, "GET", "/api/profiles/dana-default", token=token)
    assert status == 200
    return int(profile["id"])


def _wait(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_no_consent_no_process_then_grant_then_upgrade(gw: Gateway, dana: str, registry: Path) -> None:
    assert gw.proc is not None
    uid = sandbox_uid()
    spawns_before = api(gw, "GET", "/api/sandboxes")[1]["spawns"]
    raw = RawSession(gw, token=dana).open()
    # 1. No consent: the call fails with a message naming the server and what to approve ...
    error = raw.call("echo_echo", {"message": "hi"})["error"]
    assert "consent required" in error["message"]
    assert "approve server 'echo' 0.2.0" in error["message"]
    assert "gigmcp consent grant echo" in error["message"] and "POST /api/consent/echo" in error["message"]
    assert raw.request("tools/list")["result"]["tools"] == []  # nothing of echo is listed either
    # ... and no sandbox was started: none listed, no spawn counted, no process of the sandbox uid.
    listing = api(gw, "GET", "/api/sandboxes")[1]
    assert listing["spawns"] == spawns_before
    assert [s for s in listing["sandboxes"] if s["state"] in ("running", "starting")] == []
    assert descendants_with_uid(gw.proc.pid, uid) == []
    status, pending = api(gw, "GET", "/api/consent", token=dana)
    assert status == 200 and pending["pending"] == ["echo"] and pending["consents"] == []
    status, view = api(gw, "GET", "/api/consent/echo", token=dana)
    assert status == 200 and not view["up_to_date"] and view["consented"] is None
    assert view["diff"]["hosts_added"] == ["api.example.com"]

    # 2. Grant (bound to the hash that was shown) and it runs.
    status, granted = api(gw, "POST", "/api/consent/echo", {"runtime_hash": view["current"]["runtime_hash"]},
                          token=dana)
    assert status == 200 and granted["up_to_date"]
    assert raw.call("echo_echo", {"message": "hi"})["result"]["content"][0]["text"] == "hi"
    profile_id = _profile_id(gw, dana)
    running = [s for s in _dana_sandboxes(gw, profile_id) if s["state"] == "running"]
    assert len(running) == 1
    sandbox_pid = int(running[0]["sandbox_pid"])  # type: ignore[call-overload]
    assert descendants_with_uid(gw.proc.pid, uid)

    # 3. The registry publishes a new version that may reach one more host; the admin installs it.
    _publish(registry, _echo_manifest("0.2.1", ["api.example.com", NEW_HOST]))
    # (Not staged: an upgrade would otherwise keep 0.2.0 serving dana until she approves 0.2.1.)
    status, installed = api(gw, "POST", "/api/servers/install", {"name": "echo", "staged": False})
    assert status == 200 and installed["changed"] and installed["version"] == "0.2.1"
    assert _wait(lambda: not Path(f"/proc/{sandbox_pid}").exists()), "the old sandbox kept running"
    status, view = api(gw, "GET", "/api/consent/echo", token=dana)
    assert status == 200 and not view["up_to_date"]
    assert view["consented"]["version"] == "0.2.0" and view["current"]["version"] == "0.2.1"
    assert view["diff"]["hosts_added"] == [NEW_HOST]
    assert view["diff"]["hosts_removed"] == [] and view["diff"]["hosts_changed"] == []
    assert set(view["diff"]["changes"]) == {"version"}
    shown = cli(gw, "consent", "show", "echo", "--user", "dana")
    assert shown.returncode == 0 and NEW_HOST in shown.stdout and "waiting for consent" in shown.stdout

    # 4. Nothing runs until dana consents again (a stale grant of the old hash is refused too).
    spawns = api(gw, "GET", "/api/sandboxes")[1]["spawns"]
    error = raw.call("echo_echo", {"message": "again"})["error"]
    assert "approve server 'echo' 0.2.1" in error["message"] and "since you approved 0.2.0" in error["message"]
    assert api(gw, "GET", "/api/sandboxes")[1]["spawns"] == spawns
    assert descendants_with_uid(gw.proc.pid, uid) == []
    stale = api(gw, "POST", "/api/consent/echo", {"runtime_hash": granted["current"]["runtime_hash"]}, token=dana)
    assert stale[0] == 409 and stale[1]["error"]["code"] == "manifest_changed"
    granted_cli = cli(gw, "consent", "grant", "echo", "--user", "dana")
    assert granted_cli.returncode == 0, granted_cli.stderr
    assert raw.call("echo_echo", {"message": "again"})["result"]["content"][0]["text"] == "again"


def test_revoking_consent_stops_the_sandbox_and_refuses_calls(gw: Gateway, dana: str) -> None:
    raw = RawSession(gw, token=dana).open()
    if "error" in raw.call("echo_echo", {"message": "x"}):
        assert api(gw, "POST", "/api/consent/echo", {}, token=dana)[0] == 200
        assert "result" in raw.call("echo_echo", {"message": "x"})
    profile_id = _profile_id(gw, dana)
    running = [s for s in _dana_sandboxes(gw, profile_id) if s["state"] == "running"]
    assert running
    assert api(gw, "DELETE", "/api/consent/echo", token=dana)[0] == 204
    assert _wait(lambda: not Path(f"/proc/{running[0]['sandbox_pid']}").exists())
    assert "consent required" in raw.call("echo_echo", {"message": "x"})["error"]["message"]
    assert api(gw, "DELETE", "/api/consent/echo", token=dana)[0] == 404
