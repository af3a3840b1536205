"""The signed registry index: every manifest of a registry in one JSON document, signed with ed25519.

Format (`schema_version` 1)::

    {"schema_version": 1,
     "servers": {"<name>": {"latest": "<version>",
                            "versions": {"<version>": {"manifest": {...as written in YAML...},
                                                       "files": {"<lock path>": "<lock text>"}}}}}}

The signature is detached: `index.json.sig` holds the hex of an ed25519 signature over the exact bytes
of `index.json`. The gateway verifies it against its one trusted public key *before* parsing anything,
so a tampered index is refused without its content ever being interpreted. The index is built
deterministically (sorted keys, no timestamp), so a test can tell when the committed index is stale.
Lock files (hashed requirements, package-lock.json) are inlined because they decide what gets
installed: they must be covered by the signature, not fetched beside it.
"""

from __future__ import annotations

import binascii
import json
import os
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.manifest import ManifestError

INDEX_SCHEMA_VERSION = 1
MAX_INDEX_BYTES = 32 * 1024 * 1024
REGISTRY_ROOT = Path(__file__).resolve().parent.parent / "registry"
BUNDLED_INDEX = REGISTRY_ROOT / "index.json"
BUNDLED_PUBKEY = REGISTRY_ROOT / "keys" / "registry-ed25519.pub"


class RegistryError(ValueError):
    """The index cannot be trusted or read; the message says which and why, in one sentence."""


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One server version as the index (or a registry directory) ships it."""

    data: Mapping[str, Any]  # the manifest as written, with {parameter} templates
    files: Mapping[str, str]  # lock path -> content


# ---- keys and signatures --------------------------------------------------------------------------
def keygen() -> tuple[str, str]:
    """A new keypair as (private hex, public hex): 32 raw bytes each."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes_raw().hex()
    return private, key.public_key().public_bytes_raw().hex()


def _hex_bytes(text: str, what: str, size: int) -> bytes:
    try:
        raw = binascii.unhexlify(text.strip())
    except (binascii.Error, ValueError):
        raise RegistryError(f"{what} is not hex") from None
    if len(raw) != size:
        raise RegistryError(f"{what} must be {size} bytes ({size * 2} hex digits), got {len(raw)}")
    return raw


def public_key(text: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(_hex_bytes(text, "the registry public key", 32))


def sign(index: bytes, private_hex: str) -> str:
    key = Ed25519PrivateKey.from_private_bytes(_hex_bytes(private_hex, "the signing key", 32))
    return key.sign(index).hex()


def verify(index: bytes, signature_hex: str, pubkey_hex: str) -> None:
    """Raise `RegistryError` unless `signature_hex` is the trusted key's signature over `index`."""
    key = public_key(pubkey_hex)
    try:
        signature = _hex_bytes(signature_hex, "the index signature", 64)
    except RegistryError as exc:
        raise RegistryError(f"the registry index signature is malformed: {exc}") from None
    try:
        key.verify(signature, index)
    except InvalidSignature:
        raise RegistryError(
            "the registry index signature does not verify with the trusted public key: "
            "the index or its signature was tampered with (or signed by another key); refusing it"
        ) from None


def bundled_pubkey() -> str:
    return BUNDLED_PUBKEY.read_text().strip()


# ---- building ---------------------------------------------------------------------------------------
def read_directory(registry_dir: Path) -> dict[str, IndexEntry]:
    """`<registry>/servers/*.yaml` with their lock files, keyed by server name (not yet validated)."""
    out: dict[str, IndexEntry] = {}
    for path in sorted((registry_dir / "servers").glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise ManifestError("", f"{path.name}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ManifestError("", f"{path.name}: expected a mapping")
        name = str(data.get("name", path.stem))
        if name in out:
            raise ManifestError("name", f"{path.name}: server {name!r} is defined twice")
        files: dict[str, str] = {}
        package = data.get("package")
        lock = package.get("lock") if isinstance(package, dict) else None
        if isinstance(lock, str):
            lock_path = registry_dir / lock
            try:
                files[lock] = lock_path.read_text()
            except OSError as exc:
                raise ManifestError("package.lock", f"{path.name}: cannot read {lock_path}: {exc.strerror}") from None
        out[name] = IndexEntry(data, files)
    return out


def build_index(entries: Mapping[str, IndexEntry]) -> bytes:
    servers = {
        name: {"latest": str(entry.data.get("version")),
               "versions": {str(entry.data.get("version")): {"manifest": entry.data, "files": dict(entry.files)}}}
        for name, entry in sorted(entries.items())
    }
    document = {"schema_version": INDEX_SCHEMA_VERSION, "servers": servers}
    return (json.dumps(document, sort_keys=True, indent=1, ensure_ascii=False) + "\n").encode()


# ---- reading ----------------------------------------------------------------------------------------
def fetch(url: str) -> bytes:
    """The bytes at a file:// or https:// URL (at most 32 MB)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "file":
        path = Path(urllib.parse.unquote(parts.path))
        try:
            with path.open("rb") as fh:
                data = fh.read(MAX_INDEX_BYTES + 1)
        except OSError as exc:
            raise RegistryError(f"cannot read {path}: {exc.strerror}") from None
    elif parts.scheme == "https":
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - scheme checked above
                data = resp.read(MAX_INDEX_BYTES + 1)
        except OSError as exc:
            raise RegistryError(f"cannot fetch {url}: {exc}") from None
    else:
        raise RegistryError(f"{url!r}: the registry index URL must be file:// or https://")
    if len(data) > MAX_INDEX_BYTES:
        raise RegistryError(f"{url}: larger than {MAX_INDEX_BYTES} bytes")
    return data


def parse_index(index: bytes) -> dict[str, dict[str, IndexEntry]]:
    """name -> version -> entry, from index bytes whose signature was already verified."""
    try:
        document = json.loads(index)
    except ValueError as exc:
        raise RegistryError(f"the registry index is not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("schema_version") != INDEX_SCHEMA_VERSION:
        raise RegistryError(f"the registry index must have schema_version {INDEX_SCHEMA_VERSION}")
    servers = document.get("servers")
    if not isinstance(servers, dict):
        raise RegistryError("the registry index has no servers mapping")
    out: dict[str, dict[str, IndexEntry]] = {}
    for name, server in servers.items():
        versions = server.get("versions") if isinstance(server, dict) else None
        if not isinstance(versions, dict) or server.get("latest") not in versions:
            raise RegistryError(f"servers.{name}: expected latest and versions")
        out[name] = {}
        for version, item in versions.items():
            if not isinstance(item, dict) or not isinstance(item.get("manifest"), dict):
                raise RegistryError(f"servers.{name}.versions.{version}: expected a manifest")
            files = item.get("files", {})
            if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
                raise RegistryError(f"servers.{name}.versions.{version}.files: expected path -> text")
            out[name][version] = IndexEntry(item["manifest"], files)
        # The latest version first: the catalog offers it for a bare name.
        latest = server["latest"]
        out[name] = {latest: out[name][latest], **{v: e for v, e in out[name].items() if v != latest}}
    return out


def load_verified(url: str, pubkey_hex: str) -> tuple[bytes, dict[str, dict[str, IndexEntry]]]:
    """Fetch the index and `<url>.sig`, verify, then parse. Nothing is parsed before verification."""
    index = fetch(url)
    try:
        signature = fetch(url + ".sig").decode("ascii", errors="replace")
    except RegistryError as exc:
        raise RegistryError(f"the registry index has no signature ({exc}); refusing it") from None
    verify(index, signature, pubkey_hex)
    return index, parse_index(index)


def write_private_key(path: Path, private_hex: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(private_hex + "\n")
