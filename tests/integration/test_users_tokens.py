"""Users and tokens end to end: two users with their own profiles and tokens, isolation, session binding,
revocation and profile-token rotation taking effect on the very next request."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.api import api, cli
from tests.support.gateway import Gateway, RawSession, running_gateway

pytestmark = [pytest.mark.root]
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with running_gateway() as gateway:
        yield gateway


@pytest.fixture(scope="module")
def users(gw: Gateway) -> dict[str, str]:
    """alice made through the API, bob through the CLI (against the running gateway's database)."""
    assert api(gw, "POST", "/api/users", {"name": "alice"})[0] == 201
    status, alice = api(gw, "POST", "/api/tokens", {"name": "laptop", "user": "alice"})
    assert status == 201 and alice["token"].startswith("gig_") and alice["kind"] == "personal"
    made = cli(gw, "user", "add", "bob")
    assert made.returncode == 0, made.stderr
    issued = cli(gw, "token", "create", "--user", "bob", "--name", "cli")
    assert issued.returncode == 0, issued.stderr
    bob = issued.stdout.strip()
    assert bob.startswith("gig_") and "shown once" in issued.stderr
    tokens = {"alice": alice["token"], "bob": bob}
    for name, token in tokens.items():
        assert api(gw, "PUT", f"/api/profiles/{name}-default/servers/echo", token=token)[0] == 200
        assert api(gw, "POST", "/api/consent/echo", {}, token=token)[0] == 200
    return tokens


def _mcp(gw: Gateway, path: str, token: str, body: dict[str, object], session: str = "") -> tuple[int, bytes]:
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               "Authorization": f"Bearer {token}"}
    if session:
        headers |= {"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"}
    status, _, payload = gw.request("POST", path, json.dumps(body).encode(), headers, auth=False)
    return status, payload


def test_each_user_reaches_only_their_own_profile(gw: Gateway, users: dict[str, str]) -> None:
    for name, token in users.items():
        raw = RawSession(gw, token=token).open()
        assert raw.call("echo_echo", {"message": name})["result"]["content"][0]["text"] == name
        assert RawSession(gw, f"/mcp/p/{name}-default", token=token).open().session_id
    # Another user's profile answers exactly like a missing one.
    for path in ("/mcp/p/bob-default", "/mcp/p/no-such-profile"):
        status, payload = _mcp(gw, path, users["alice"], INIT)
        assert status == 404 and b"no such profile" in payload
    assert api(gw, "GET", "/api/profiles/bob-default", token=users["alice"])[0] == 404
    assert api(gw, "GET", "/api/profiles/bob-default", token=users["bob"])[0] == 200
    # Each sandbox belongs to one (server, profile): two users, two sandboxes.
    keys = {tuple(s["key"]) for s in gw.sandboxes() if s["state"] == "running"}
    profiles = {api(gw, "GET", "/api/me", token=t)[1]["default_profile"] for t in users.values()}
    assert len([k for k in keys if k[0] == "echo"]) >= len(profiles)


def test_a_session_is_bound_to_the_token_that_opened_it(gw: Gateway, users: dict[str, str]) -> None:
    raw = RawSession(gw, token=users["alice"]).open()
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    assert _mcp(gw, "/mcp", users["alice"], listing, raw.session_id)[0] == 200
    assert _mcp(gw, "/mcp", users["bob"], listing, raw.session_id)[0] == 404
    # Even a second token of the same user is another credential.
    status, second = api(gw, "POST", "/api/tokens", {"name": "second"}, token=users["alice"])
    assert status == 201
    assert _mcp(gw, "/mcp", second["token"], listing, raw.session_id)[0] == 404
    assert _mcp(gw, "/mcp", users["alice"], listing, raw.session_id)[0] == 200


def test_revoked_tokens_get_401_at_once(gw: Gateway, users: dict[str, str]) -> None:
    status, extra = api(gw, "POST", "/api/tokens", {"name": "temp"}, token=users["alice"])
    assert status == 201
    raw = RawSession(gw, token=extra["token"]).open()
    assert "result" in raw.call("echo_echo", {"message": "before"})
    assert api(gw, "DELETE", f"/api/tokens/{extra['id']}", token=users["bob"])[0] == 404  # not bob's
    assert api(gw, "DELETE", f"/api/tokens/{extra['id']}", token=users["alice"])[0] == 204
    status, _ = _mcp(gw, "/mcp", extra["token"], {"jsonrpc": "2.0", "id": 3, "method": "tools/list"}, raw.session_id)
    assert status == 401
    assert api(gw, "GET", "/api/me", token=extra["token"])[0] == 401
    # The CLI revokes too, against the running gateway's database, with the same immediate effect.
    status, cli_made = api(gw, "POST", "/api/tokens", {"name": "for-cli"}, token=users["bob"])
    assert api(gw, "GET", "/api/me", token=cli_made["token"])[0] == 200
    assert cli(gw, "token", "revoke", str(cli_made["id"])).returncode == 0
    assert api(gw, "GET", "/api/me", token=cli_made["token"])[0] == 401


def test_profile_token_rotation(gw: Gateway, users: dict[str, str]) -> None:
    status, first = api(gw, "POST", "/api/profiles/alice-default/token", {}, token=users["alice"])
    assert status == 201 and first["kind"] == "profile" and first["profile"] == "alice-default"
    raw = RawSession(gw, token=first["token"]).open()  # /mcp: a profile token's own profile
    assert raw.call("echo_echo", {"message": "p"})["result"]["content"][0]["text"] == "p"
    assert RawSession(gw, "/mcp/p/alice-default", token=first["token"]).open().session_id
    assert _mcp(gw, "/mcp/p/bob-default", first["token"], INIT)[0] == 404
    assert api(gw, "GET", "/api/me", token=first["token"])[0] == 403  # not a control-plane credential
    status, second = api(gw, "POST", "/api/profiles/alice-default/token", {"name": "rotated"}, token=users["alice"])
    assert status == 201
    assert _mcp(gw, "/mcp", first["token"], INIT)[0] == 401
    assert RawSession(gw, token=second["token"]).open().call("echo_echo", {"message": "q"})["result"]
    # Rotation leaves personal tokens alone.
    assert api(gw, "GET", "/api/me", token=users["alice"])[0] == 200


def test_token_listing_never_shows_secrets(gw: Gateway, users: dict[str, str]) -> None:
    status, body = api(gw, "GET", "/api/tokens", token=users["alice"])
    assert status == 200 and body["tokens"]
    assert all("token" not in t for t in body["tokens"])
    assert users["alice"] not in json.dumps(body)
    assert any(t["last_used_at"] for t in body["tokens"])
    assert api(gw, "GET", "/api/tokens?user=bob", token=users["alice"])[0] == 403
    status, bobs = api(gw, "GET", "/api/tokens?user=bob")
    assert status == 200 and [t["name"] for t in bobs["tokens"]] == ["cli"]
    listed = cli(gw, "token", "list", "--user", "alice")
    assert listed.returncode == 0 and "laptop" in listed.stdout and users["alice"] not in listed.stdout


def test_users_are_admin_only(gw: Gateway, users: dict[str, str]) -> None:
    assert api(gw, "GET", "/api/users", token=users["alice"])[0] == 403
    status, body = api(gw, "GET", "/api/users")
    assert status == 200 and {"admin", "alice", "bob"} <= {u["name"] for u in body["users"]}
    assert api(gw, "GET", "/api/sandboxes", token=users["alice"])[0] == 403
    assert api(gw, "DELETE", "/api/users/admin")[0] == 409
    assert api(gw, "POST", "/api/users", {"name": "alice"})[0] == 409
    status, body = api(gw, "POST", "/api/users", {"name": "alice", "shoe_size": 42})
    assert status == 400 and body["error"]["message"] == "unknown field 'shoe_size'"
