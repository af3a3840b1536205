"""The consent diff: what a changed manifest adds, removes or changes, and the consent error message."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.consent import ConsentRequired, diff_manifests
from gateway.manifest import parse_manifest
from sandbox.supervisor import Unavailable

BASE: dict[str, Any] = {
    "name": "echo",
    "version": "0.1.0",
    "description": "echo",
    "runtime": "python",
    "command": ["gigmcp-echo"],
    "package": {"path": "servers/echo"},
    "tools": [{"name": "echo"}, {"name": "add"}],
    "egress": [{"host": "api.example.com", "ports": [443], "methods": ["GET"]}],
}


def data(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(BASE)
    out.update(changes)
    return parse_manifest(out).to_data()


def test_identical_manifests_have_an_empty_diff() -> None:
    diff = diff_manifests(data(), data())
    assert diff.empty
    assert diff.to_data()["hosts_added"] == [] and diff.to_data()["changes"] == {}


def test_an_added_host_is_listed_exactly() -> None:
    after = data(version="0.1.1", egress=[*BASE["egress"], {"host": "uploads.example.com"}])
    diff = diff_manifests(data(), after)
    assert diff.hosts_added == ("uploads.example.com",)
    assert diff.hosts_removed == () and diff.hosts_changed == ()
    assert diff.changes["version"] == ("0.1.0", "0.1.1")
    assert set(diff.changes) == {"version"}


def test_removed_and_changed_hosts() -> None:
    after = data(egress=[{"host": "api.example.com", "ports": [443], "methods": ["GET", "POST"]}])
    assert diff_manifests(data(), after).hosts_changed == ("api.example.com",)
    assert diff_manifests(data(), data(egress=[])).hosts_removed == ("api.example.com",)


def test_rule_order_and_host_case_do_not_count_as_changes() -> None:
    two = [{"host": "a.example.com", "ports": [443, 8443]}, {"host": "b.example.com"}]
    swapped = [{"host": "B.example.com"}, {"host": "a.example.com", "ports": [8443, 443]}]
    assert diff_manifests(data(egress=two), data(egress=swapped)).empty


def test_tools_command_and_package_changes() -> None:
    after = data(tools=[{"name": "echo"}, {"name": "rm"}], command=["other"], package={"path": "servers/other"})
    diff = diff_manifests(data(), after)
    assert diff.tools_added == ("rm",) and diff.tools_removed == ("add",)
    assert diff.changes["command"] == (["gigmcp-echo"], ["other"])
    assert "package" in diff.changes


def test_credentials_are_compared_by_id_when_a_manifest_declares_them() -> None:
    # Manifest data may grow a credentials section; the diff reads it without knowing its schema.
    before = {**data(), "credentials": [{"id": "token", "hosts": ["api.example.com"]}]}
    after = {**data(), "credentials": [{"id": "token", "hosts": ["*.example.com"]}, {"id": "oauth"}]}
    diff = diff_manifests(before, after)
    assert diff.credentials_added == ("oauth",)
    assert diff.credentials_changed == ("token",)
    assert diff.credentials_removed == ()


def test_nothing_approved_yet_lists_everything_as_added() -> None:
    diff = diff_manifests(None, data())
    assert diff.hosts_added == ("api.example.com",)
    assert diff.tools_added == ("add", "echo")
    assert diff.changes == {}


hosts = st.lists(st.from_regex(r"[a-z]{1,8}\.example\.com", fullmatch=True), max_size=5, unique=True)


@given(hosts, hosts)
def test_diff_is_antisymmetric(before: list[str], after: list[str]) -> None:
    a = data(egress=[{"host": h} for h in before])
    b = data(egress=[{"host": h} for h in after])
    forward, backward = diff_manifests(a, b), diff_manifests(b, a)
    assert forward.hosts_added == backward.hosts_removed
    assert forward.hosts_removed == backward.hosts_added
    assert set(forward.hosts_added) == set(after) - set(before)
    assert diff_manifests(a, a).empty


def test_consent_required_names_the_server_and_how_to_approve() -> None:
    exc = ConsentRequired("echo", "0.1.1", "ab" * 32, approved_version="0.1.0")
    assert isinstance(exc, Unavailable)  # the MCP front door reports it like a server that cannot start
    message = str(exc)
    assert "'echo' 0.1.1" in message and "abababababab" in message
    assert "gigmcp consent grant echo" in message and "POST /api/consent/echo" in message
    assert "since you approved 0.1.0" in message
