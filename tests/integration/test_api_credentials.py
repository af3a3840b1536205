"""Vault-sealed credentials end to end: write-only API, ciphertext only at rest, a wrong or missing master
key stops the start without touching the database, and `gigmcp vault rotate` with the gateway stopped."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from gateway.store import CREDENTIALS_SPEC
from tests.support.api import api, cli, db_path
from tests.support.gateway import FIXTURE_REGISTRY, REPO, Gateway
from vault import MasterKey, open_, write_new_key_file

pytestmark = [pytest.mark.root]
SECRET = "glpat-THE-REAL-SECRET-4b1d9c0e7f"
CLI_SECRET = "cli-SECRET-value-from-stdin-93ab"


def _registry(root: Path) -> Path:
    """The echo server, declaring two credentials it sends to its one upstream host."""
    manifest = yaml.safe_load((FIXTURE_REGISTRY / "servers" / "echo.yaml").read_text())
    manifest["version"] = "0.3.0"  # a version of its own: the shared install of echo@0.1.0 stays untouched
    manifest["package"] = {"path": str(REPO / "servers" / "echo")}
    manifest["egress"] = [{"host": "api.example.com"}]
    manifest["credentials"] = [
        {"id": "api_token", "type": "api_key", "hosts": ["api.example.com"], "env": "ECHO_TOKEN",
         "header": "PRIVATE-TOKEN"},
        {"id": "cli_token", "type": "api_key", "hosts": ["api.example.com"], "env": "ECHO_OTHER"},
    ]
    (root / "servers").mkdir(parents=True)
    (root / "servers" / "echo.yaml").write_text(yaml.safe_dump(manifest))
    return root


def _db_files(gw: Gateway) -> bytes:
    db = db_path(gw)
    return b"".join(p.read_bytes() for p in sorted(db.parent.glob(db.name + "*")))


def _db_digest(gw: Gateway) -> str:
    return hashlib.sha256(_db_files(gw)).hexdigest()


def _failed_start(port: int, env: dict[str, str]) -> tuple[int, list[str]]:
    """Start a gateway that must refuse to start; its exit status and what it printed."""
    gw = Gateway(port=port, env=env)
    log = Path(db_path_for(port)).with_suffix(".log")
    offset = log.stat().st_size if log.exists() else 0
    with pytest.raises(RuntimeError, match="gateway exited with"):
        gw.start(timeout=60)
    assert gw.proc is not None and gw.proc.returncode is not None
    printed = log.read_bytes()[offset:].decode(errors="replace").splitlines()
    return gw.proc.returncode, printed


def db_path_for(port: int) -> Path:
    from tests.support.gateway import shared_data_dir

    return shared_data_dir() / f"gw-{port}.db"


def test_credentials_vault_and_rotation(tmp_path: Path) -> None:
    old_key, new_key = tmp_path / "old.key", tmp_path / "new.key"
    write_new_key_file(old_key)
    write_new_key_file(new_key)
    registry = str(_registry(tmp_path / "registry"))
    gw = Gateway(env={"GIG_MASTER_KEY_FILE": str(old_key), "GIG_REGISTRY_DIR": registry}).start()
    try:
        assert api(gw, "POST", "/api/users", {"name": "erin"})[0] == 201
        status, issued = api(gw, "POST", "/api/tokens", {"name": "t", "user": "erin"})
        token = issued["token"]
        # Write-only: the value goes in, and no answer ever carries it back.
        status, stored = api(gw, "PUT", "/api/credentials/echo/api_token", {"value": SECRET}, token=token)
        assert status == 200 and stored["credential_id"] == "api_token" and SECRET not in json.dumps(stored)
        bad = api(gw, "PUT", "/api/credentials/echo/api_token", {"value": SECRET, "note": SECRET}, token=token)
        assert bad[0] == 400 and bad[1]["error"]["message"] == "unknown field 'note'"
        assert api(gw, "PUT", "/api/credentials/nosuch/api_token", {"value": SECRET}, token=token)[0] == 404
        undeclared = api(gw, "PUT", "/api/credentials/echo/undeclared", {"value": SECRET}, token=token)
        assert undeclared[0] == 404 and "declared by server 'echo'" in undeclared[1]["error"]["message"]
        made = cli(gw, "credential", "set", "echo", "cli_token", "--user", "erin", stdin=CLI_SECRET + "\n",
                   env={"GIG_MASTER_KEY_FILE": str(old_key)})
        assert made.returncode == 0, made.stderr
        status, listing = api(gw, "GET", "/api/credentials", token=token)
        assert status == 200
        assert [(c["server"], c["credential_id"]) for c in listing["credentials"]] == [
            ("echo", "api_token"), ("echo", "cli_token")]
        assert all(set(c) == {"server", "credential_id", "created_at", "updated_at"} for c in listing["credentials"])
        for path in ("/api/credentials", "/api/credentials/echo", "/api/me", "/api/consent/echo",
                     "/api/servers/echo", "/api/tokens", "/api/profiles"):
            status, _, body = gw.request("GET", path, headers={"Authorization": f"Bearer {token}"}, auth=False)
            assert status == 200 and SECRET.encode() not in body and CLI_SECRET.encode() not in body, path
        # Only ciphertext at rest (database, WAL) and nothing in the log.
        raw = _db_files(gw)
        assert SECRET.encode() not in raw and CLI_SECRET.encode() not in raw
        assert b"GIGV" in raw
        assert gw.log_path is not None and SECRET not in gw.log_path.read_text()
        assert api(gw, "DELETE", "/api/credentials/echo/cli_token", token=token)[0] == 204
        assert api(gw, "DELETE", "/api/credentials/echo/cli_token", token=token)[0] == 404
    finally:
        assert gw.stop() == 0
    port = gw.port

    # A wrong key: non-zero exit, one clear line, and the database is byte for byte the same.
    before = _db_digest(gw)
    status, printed = _failed_start(port, {"GIG_MASTER_KEY_FILE": str(new_key), "GIG_REGISTRY_DIR": registry})
    assert status != 0
    assert printed[-1].startswith("gigmcp: ") and "vault: row credentials.sealed" in printed[-1]
    assert "sealed with key" in printed[-1] and "nothing was changed" in printed[-1]
    assert MasterKey.from_file(new_key).key_id in printed[-1]
    assert not any("Traceback" in line for line in printed)
    assert _db_digest(gw) == before
    # No key at all while credentials exist: the same.
    status, printed = _failed_start(port, {"GIG_REGISTRY_DIR": registry})
    assert status != 0 and "credentials are stored but no master key" in printed[-1]
    assert _db_digest(gw) == before

    # Rotation with the gateway stopped, then the gateway starts with the new key only.
    rotated = cli(gw, "vault", "rotate", "--new-key-file", str(new_key), env={"GIG_MASTER_KEY_FILE": str(old_key)})
    assert rotated.returncode == 0, rotated.stderr
    assert "rotation complete" in rotated.stderr
    assert SECRET not in rotated.stdout + rotated.stderr
    gw2 = Gateway(port=port, env={"GIG_MASTER_KEY_FILE": str(new_key), "GIG_REGISTRY_DIR": registry}).start()
    try:
        status, listing = api(gw2, "GET", "/api/credentials", token=token)
        assert status == 200 and [c["credential_id"] for c in listing["credentials"]] == ["api_token"]
        with sqlite3.connect(f"file:{db_path(gw2)}?mode=ro", uri=True) as conn:
            user_id, blob = conn.execute(
                "SELECT c.user_id, c.sealed FROM credentials c JOIN users u ON u.id = c.user_id WHERE u.name = 'erin'"
            ).fetchone()
        ad = CREDENTIALS_SPEC.associated_data(user_id, "echo", "api_token")
        assert open_(MasterKey.from_file(new_key), blob, ad).decode() == SECRET
    finally:
        assert gw2.stop() == 0
    status, printed = _failed_start(port, {"GIG_MASTER_KEY_FILE": str(old_key), "GIG_REGISTRY_DIR": registry})
    assert status != 0 and "sealed with key" in printed[-1]
