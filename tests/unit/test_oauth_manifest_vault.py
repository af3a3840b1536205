"""`type: oauth2` credentials name their vendor; OAuth secrets are covered by the vault's start check and
by `gigmcp vault rotate` like every other sealed column."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

import pytest

from gateway.credentials import VaultStartError, open_vault
from gateway.manifest import ManifestError, parse_manifest
from gateway.oauth import OAuthService, OAuthSettings
from gateway.store import VAULT_TABLES, Store
from tests.support.idp.fake import oauth_env
from vault import MasterKey, SQLiteRowSource, generate_key_hex, rotate

MANIFEST: dict[str, Any] = {
    "name": "demo", "version": "1.0.0", "description": "d", "runtime": "python", "package": {"path": "x"},
    "command": ["demo"], "egress": [{"host": "gitlab.example"}],
    "credentials": [{"id": "account", "type": "oauth2", "vendor": "gitlab", "hosts": ["gitlab.example"],
                     "header": "Authorization", "format": "Bearer {secret}"}],
}


def _credential(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(MANIFEST)
    data["credentials"][0].update(changes)
    return data


def test_oauth2_credentials_name_their_vendor() -> None:
    manifest = parse_manifest(MANIFEST)
    assert manifest.credentials[0].vendor == "gitlab"
    assert parse_manifest(manifest.to_data()) == manifest
    other = parse_manifest(_credential(vendor="gitlab-corp"))
    assert other.runtime_hash() != manifest.runtime_hash()  # the vendor is part of what is consented to
    for bad, message in ((_credential(vendor=None), "names its OAuth vendor"),
                         (_credential(type="api_key"), "other types have none"),
                         (_credential(vendor="Git_Lab"), "not a valid OAuth vendor name")):
        with pytest.raises(ManifestError, match=message) as caught:
            parse_manifest(bad)
        assert caught.value.path == "credentials[0].vendor"


def test_manifests_without_oauth_keep_their_runtime_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _credential(type="api_key")
    del data["credentials"][0]["vendor"]
    manifest = parse_manifest(data)
    assert "vendor" not in manifest.to_data()["credentials"][0]
    hashed: list[bytes] = []
    real = hashlib.sha256

    def spy(blob: bytes) -> Any:
        hashed.append(blob)
        return real(blob)

    monkeypatch.setattr("gateway.manifest.hashlib.sha256", spy)
    manifest.runtime_hash()
    # The empty field is left out of what is hashed, so hashes (and consents) from before it existed hold.
    assert b'"vendor"' not in hashed[-1] and b'"format":"Bearer {secret}"' in hashed[-1]
    parse_manifest(MANIFEST).runtime_hash()
    assert b'"vendor":"gitlab"' in hashed[-1]


async def test_oauth_secrets_are_checked_at_start_and_rotated(tmp_path: Path) -> None:
    async with oauth_env(tmp_path) as env:
        await env.connect()
        old_key = env.service._sealer._key  # type: ignore[union-attr]
        assert env.service.tokens is not None
        before = await env.service.tokens.access_token(env.user_id, "fake")
        with pytest.raises(VaultStartError, match="oauth"):
            await open_vault(env.store, MasterKey.from_hex(generate_key_hex()))
        new_key = MasterKey.from_hex(generate_key_hex())
        report = await rotate(SQLiteRowSource(env.store.conn, VAULT_TABLES), old_key, new_key)
        assert report.rewrapped == 3  # the client secret, the access token and the refresh token
        assert await open_vault(env.store, new_key) is new_key
        rotated = OAuthService(env.store, new_key, OAuthSettings("http://gw.test:8080"))
        try:
            assert rotated.tokens is not None
            assert await rotated.tokens.access_token(env.user_id, "fake") == before
            assert (await rotated.refresh_now(env.user_id, "fake")) is not None  # the client secret opens too
            assert env.fake.calls["refresh_token"] == 1
        finally:
            await rotated.close()


async def test_without_a_master_key_oauth_is_unavailable(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "gig.db")
    service = OAuthService(store, None, OAuthSettings("http://gw.test:8080"))
    try:
        assert not service.available and service.tokens is None
        assert await service.token_for_profile(1, "gitlab") is None
        from gateway.oauth import OAuthUnavailable, vendors_from_env

        with pytest.raises(OAuthUnavailable, match="GIG_MASTER_KEY"):
            await service.load_env(vendors_from_env({"GIG_OAUTH_GITLAB_CLIENT_ID": "app"}))
    finally:
        await service.close()
        await store.close()
