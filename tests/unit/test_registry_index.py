"""The signed index: deterministic build, ed25519 signature verified before parsing, tamper refusal,
and the committed bundled index kept in sync with registry/servers/*.yaml."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.catalog import Catalog, load_catalog
from gateway.config import REPO_ROOT, Config, load_config
from gateway.manifest import ManifestError
from gateway.registry_index import (
    BUNDLED_INDEX,
    RegistryError,
    build_index,
    bundled_pubkey,
    keygen,
    load_verified,
    read_directory,
    sign,
    verify,
)

REGISTRY = REPO_ROOT / "registry"


def _signed_copy(tmp: Path) -> tuple[Path, str]:
    """A copy of the bundled registry with an index signed by a fresh test key."""
    registry = tmp / "registry"
    shutil.copytree(REGISTRY, registry, ignore=shutil.ignore_patterns("index.json*", "keys"))
    private, public = keygen()
    index = build_index(read_directory(registry))
    (registry / "index.json").write_bytes(index)
    (registry / "index.json.sig").write_text(sign(index, private))
    return registry, public


def test_bundled_index_is_in_sync_with_the_manifests() -> None:
    built = build_index(read_directory(REGISTRY))
    assert built == BUNDLED_INDEX.read_bytes(), (
        "registry/index.json is stale: run `gigmcp registry build-index && gigmcp registry sign` "
        "(the signing key is not in the repository; see docs/manifest.md)"
    )


def test_bundled_signature_verifies_with_the_bundled_public_key() -> None:
    index = BUNDLED_INDEX.read_bytes()
    verify(index, Path(f"{BUNDLED_INDEX}.sig").read_text(), bundled_pubkey())
    catalog = Catalog.from_index(BUNDLED_INDEX.as_uri(), bundled_pubkey())
    assert {"echo", "gitlab", "mcp-server-fetch", "everything", "memory", "filesystem"} <= set(catalog.names())


def test_default_configuration_reads_the_verified_bundled_index() -> None:
    config = load_config({"GIG_BEARER_TOKEN": "x" * 20, "GIG_DATA_DIR": "/tmp/gig-unit"})
    assert config.registry_index_url == BUNDLED_INDEX.as_uri()
    assert config.registry_pubkey == bundled_pubkey()
    assert load_catalog(config).get("everything") is not None
    dev = load_config({"GIG_BEARER_TOKEN": "x" * 20, "GIG_DATA_DIR": "/tmp/gig-unit",
                       "GIG_REGISTRY_DIR": str(REGISTRY)})
    assert dev.registry_index_url is None


def test_tampered_index_is_refused_before_parsing(tmp_path: Path) -> None:
    registry, public = _signed_copy(tmp_path)
    index = registry / "index.json"
    url = index.as_uri()
    load_verified(url, public)  # the untouched copy verifies
    document = json.loads(index.read_bytes())
    document["servers"]["mcp-server-fetch"]["versions"]["2026.10.24"]["manifest"]["egress"][0]["host"] = "evil.example"
    index.write_text(json.dumps(document))
    with pytest.raises(RegistryError, match="tampered"):
        load_verified(url, public)
    index.write_bytes(b"{not json at all")  # garbage is refused by the signature, never parsed
    with pytest.raises(RegistryError, match="does not verify"):
        load_verified(url, public)
    with pytest.raises(ManifestError, match="tampered"):
        load_catalog(_config(url, public))


def test_tampered_or_missing_signature_is_refused(tmp_path: Path) -> None:
    registry, public = _signed_copy(tmp_path)
    url = (registry / "index.json").as_uri()
    sig = registry / "index.json.sig"
    good = sig.read_text()
    sig.write_text(("0" if good[0] != "0" else "1") + good[1:])
    with pytest.raises(RegistryError, match="does not verify"):
        load_verified(url, public)
    sig.write_text("zz")
    with pytest.raises(RegistryError, match="malformed"):
        load_verified(url, public)
    sig.unlink()
    with pytest.raises(RegistryError, match="no signature"):
        load_verified(url, public)


def test_another_key_is_refused(tmp_path: Path) -> None:
    registry, _public = _signed_copy(tmp_path)
    _private, other = keygen()
    with pytest.raises(RegistryError, match="does not verify"):
        load_verified((registry / "index.json").as_uri(), other)


def test_lock_files_are_signed_with_the_index(tmp_path: Path) -> None:
    registry, public = _signed_copy(tmp_path)
    index = registry / "index.json"
    text = index.read_text()
    assert "locks/mcp-server-fetch-2026.10.24.txt" in text
    index.write_text(text.replace("markdownify==", "markdownifx==", 1))
    with pytest.raises(RegistryError):
        load_verified(index.as_uri(), public)


def test_cli_build_sign_verify_and_refuse(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    shutil.copytree(REGISTRY, registry, ignore=shutil.ignore_patterns("index.json*", "keys"))
    (tmp_path / "servers").symlink_to(REPO_ROOT / "servers")  # local packages resolve beside the registry

    def gig(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "gateway", "registry", *args], capture_output=True, text=True,
                              cwd=REPO_ROOT, timeout=60)

    key, pub = tmp_path / "signing.key", tmp_path / "registry.pub"
    assert gig("keygen", "--private", str(key), "--public", str(pub)).returncode == 0
    assert key.stat().st_mode & 0o077 == 0, "the private key is readable by others"
    assert gig("keygen", "--private", str(key), "--public", str(pub)).returncode == 1  # never overwrites
    assert gig("lint", str(registry)).returncode == 0
    assert gig("build-index", str(registry)).returncode == 0
    index = registry / "index.json"
    assert gig("sign", str(index), "--key", str(key)).returncode == 0
    ok = gig("verify", str(index), "--pubkey-file", str(pub))
    assert ok.returncode == 0 and "signature verified" in ok.stdout
    index.write_bytes(index.read_bytes().replace(b"modelcontextprotocol.io", b"modelcontextprotocol.xyz"))
    bad = gig("verify", str(index), "--pubkey-file", str(pub))
    assert bad.returncode == 1 and "tampered" in bad.stderr
    # lint reports a bad manifest with its file and field
    (registry / "servers" / "bad.yaml").write_text(
        "name: bad\nversion: 1.0.0\ndescription: d\nruntime: python\npackage: {path: servers/echo}\n"
        "command: [x]\negress: [{host: x.pastebin.com}]\n")
    linted = gig("lint", str(registry))
    assert linted.returncode == 1 and "bad.yaml" in linted.stderr and "egress[0].host" in linted.stderr
    assert gig("build-index", str(registry)).returncode == 1


def _config(url: str, pubkey: str) -> Config:
    return load_config({"GIG_BEARER_TOKEN": "x" * 20, "GIG_DATA_DIR": "/tmp/gig-unit",
                        "GIG_REGISTRY_INDEX_URL": url, "GIG_REGISTRY_PUBKEY": pubkey})
