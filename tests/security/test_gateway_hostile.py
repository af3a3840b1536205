"""Attacks from inside a real sandbox, through the gateway: a hostile MCP server tries to read the
host, escape its namespaces and exhaust its limits, while another sandbox keeps being served."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.gateway import Gateway, RawSession, running_gateway, shared_data_dir

pytestmark = [pytest.mark.root]
DENIED = ["mount", "setns", "io_uring_setup", "bpf", "keyctl", "perf_event_open", "userfaultfd",
          "open_by_handle_at", "ptrace_sibling", "unshare_newuser", "clone_newuser", "tiocsti"]


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with running_gateway(install="hostile,echo") as gateway:
        yield gateway


def _result(reply: dict[str, Any]) -> Any:
    assert "result" in reply, reply
    structured = reply["result"].get("structuredContent")
    return structured.get("result", structured) if isinstance(structured, dict) else structured


def test_host_files_and_escapes_are_refused(gw: Gateway, tmp_path: Path) -> None:
    canary = tmp_path / "canary.txt"
    canary.write_text("host secret")
    os.chmod(tmp_path, 0o755)
    os.chmod(canary, 0o644)  # world-readable on the host: only the sandbox's mount view hides it
    database = shared_data_dir() / f"gw-{gw.port}.db"
    raw = RawSession(gw).open()
    report = _result(raw.call("hostile_isolation", {"canary_path": str(canary), "database_path": str(database)}))
    assert report["canary"] != "read" and report["database"] != "read" and report["shadow"] != "read", report
    assert report["uid"] != 0 and report["cap_eff"] == "0000000000000000"
    assert report["unshare_cli"]["returncode"] != 0, report["unshare_cli"]
    for check in DENIED:
        assert report[check]["errno"] == "EPERM", (check, report[check])
    assert report["clone3"]["errno"] == "ENOSYS"
    assert report["threads_and_subprocess"]["threads"] is True
    assert not any(k.startswith("GIG_") for k in report["env_keys"])
    for path in ("/etc/shadow", "/root/.bashrc", str(database), str(canary)):
        assert _result(raw.call("hostile_read_file", {"path": path}))["ok"] is False, path


def test_the_process_runs_as_the_sandbox_user_on_the_host(gw: Gateway) -> None:
    RawSession(gw).open().call("hostile_read_file", {"path": "/etc/hostname"})
    entry = next(s for s in gw.sandboxes() if s["state"] == "running" and s["key"][0] == "hostile")
    with open(f"/proc/{entry['sandbox_pid']}/status") as fh:
        uid_line = next(line for line in fh if line.startswith("Uid:"))
    assert all(int(v) != 0 for v in uid_line.split()[1:]), uid_line


async def test_fork_bomb_stops_at_the_pids_limit(gw: Gateway) -> None:
    raw = RawSession(gw).open()
    result = _result(await asyncio.to_thread(raw.call, "hostile_fork_bomb", {"limit": 500}))
    assert result["started"] < 48, result
    assert result["error"], result


async def test_memory_hog_is_killed_and_only_its_sandbox_restarts(gw: Gateway) -> None:
    raw = RawSession(gw).open()
    assert _result(raw.call("echo_echo", {"message": "before"})) == "before"
    echo_before = next(s for s in gw.sandboxes() if s["state"] == "running" and s["key"][0] == "echo")
    hog = asyncio.create_task(asyncio.to_thread(raw.call, "hostile_memory_hog", {"max_mb": 4096}))
    # The gateway keeps serving the other sandbox while the hog runs into its limit.
    for i in range(5):
        assert _result(await asyncio.to_thread(raw.call, "echo_echo", {"message": f"during {i}"})) == f"during {i}"
    reply = await asyncio.wait_for(hog, 60)
    assert "error" in reply, reply
    assert "hostile" in reply["error"]["message"]
    for _ in range(50):  # the supervisor records the cause once the process is reaped
        hostile = next(s for s in gw.sandboxes() if s["key"][0] == "hostile")
        if hostile["last_error"]:
            break
        await asyncio.sleep(0.1)
    assert "out of memory" in hostile["last_error"], (reply, gw.sandboxes())
    echo_after = next(s for s in gw.sandboxes() if s["state"] == "running" and s["key"][0] == "echo")
    assert echo_after["sandbox_pid"] == echo_before["sandbox_pid"]  # untouched
    assert _result(raw.call("hostile_read_file", {"path": "/etc/hostname"}))["ok"] in (True, False)
