"""Uninstall cascades: sandboxes stop, memberships, toggles, consents and credentials go, files go."""

from __future__ import annotations

import secrets

import pytest

from tests.integration.test_gateway_supervisor import _wait_gone
from tests.support.api import api
from tests.support.gateway import RawSession, running_gateway, shared_data_dir

pytestmark = [pytest.mark.root]


def test_uninstall_cascades_cleanly() -> None:
    with running_gateway(install="echob", env={"GIG_MASTER_KEY": secrets.token_hex(32)}) as gw:
        raw = RawSession(gw).open()
        assert raw.call("echob_echo", {"message": "x"})["result"]["content"][0]["text"] == "x"
        sandbox = next(s for s in gw.sandboxes() if s["key"][0] == "echob" and s["state"] == "running")
        assert api(gw, "PUT", "/api/profiles/admin-default/tools/echob/add", {"enabled": False})[0] == 200
        status, body = api(gw, "DELETE", "/api/servers/echob")
        assert status == 200 and body == {"uninstalled": "echob"}
        assert _wait_gone([int(sandbox["sandbox_pid"]), int(sandbox["pid"])]) == []
        assert not list((shared_data_dir() / "servers").glob("echob@*"))
        assert "echob" not in api(gw, "GET", "/api/servers")[1]["installed"]
        assert api(gw, "GET", "/api/consent/echob")[0] == 404
        tools = api(gw, "GET", "/api/profiles/admin-default/tools")[1]
        assert "echob" not in str(tools)
        # The profile no longer offers it, and a call is a clean protocol error, not a crash.
        listed = RawSession(gw).open().request("tools/list")
        assert not any(t["name"].startswith("echob_") for t in listed["result"]["tools"])
        assert "error" in RawSession(gw).open().call("echob_echo", {"message": "y"})
        assert api(gw, "DELETE", "/api/servers/echob")[0] == 404
        # Reinstalling works and asks for consent again (boot installs were auto-consented only at boot).
        status, installed = api(gw, "POST", "/api/servers/install", {"name": "echob"})
        assert status == 200 and installed["changed"]
