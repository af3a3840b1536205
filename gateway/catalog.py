"""The catalog: the manifests a gateway offers, keyed by server name.

Two sources. A signed index (`GIG_REGISTRY_INDEX_URL`, by default the bundled `registry/index.json`)
is verified with the trusted public key before it is parsed; a registry directory
(`GIG_REGISTRY_DIR`, `<registry>/servers/*.yaml`) is read as is, for development and tests. Either
way every manifest is parsed strictly and linted (no exfiltration hosts) before it is offered.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.manifest import Manifest, ManifestError, parse_manifest
from gateway.manifest_config import parse_params, render, values_for
from gateway.manifest_lint import lint_manifest
from gateway.registry_index import IndexEntry, RegistryError, load_verified, read_directory

if TYPE_CHECKING:
    from gateway.config import Config

SKIP_DIRS = {"build", "__pycache__", ".ruff_cache", ".mypy_cache", ".pytest_cache", ".venv", "node_modules"}


def tree_digest(root: Path) -> str:
    """SHA-256 over a source tree's file names and contents, so that a local package's code is part of
    the runtime hash: changed code means a new install and a new consent, exactly like a new version."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            if name.endswith((".pyc", ".pyo")):
                continue
            path = Path(dirpath) / name
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return f"tree-sha256:{digest.hexdigest()}"


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    manifest: Manifest  # resolved with the parameters' defaults
    source_root: Path  # where a manifest's relative package.path is resolved
    data: Mapping[str, Any] = field(default_factory=dict)  # as written, with {parameter} templates
    package_hash: str = ""
    files: Mapping[str, str] = field(default_factory=dict)  # lock path -> content (signed with the index)
    registry_dir: Path | None = None  # where package.file is found; None: the source has no local files

    def resolve(self, given: Mapping[str, Any]) -> Manifest:
        """The manifest for one install: parameters filled in (defaults for those not given)."""
        return resolve_manifest(self.data, self.package_hash, given, self.files)

    @property
    def lock_text(self) -> str:
        return self.files.get(self.manifest.package.lock, "")


def lock_digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def resolve_manifest(data: Mapping[str, Any], package_hash: str, given: Mapping[str, Any],
                     files: Mapping[str, str] | None = None) -> Manifest:
    values = values_for(parse_params(data), given)
    manifest = parse_manifest({**render(data, values), "config_values": values})
    package = manifest.package
    if package_hash and not package.hashes:
        package = dataclasses.replace(package, hashes=(package_hash,))
    if package.lock:
        # The lock decides every dependency that gets installed: its digest is part of the runtime hash.
        text = (files or {}).get(package.lock)
        if text is None:
            raise ManifestError("package.lock", f"{package.lock}: the lock file is missing")
        digest = lock_digest(text)
        if package.lock_sha256 and package.lock_sha256 != digest:
            raise ManifestError("package.lock_sha256", f"{package.lock}: its content does not match {digest}")
        package = dataclasses.replace(package, lock_sha256=digest)
    manifest = dataclasses.replace(manifest, package=package)
    lint_manifest(manifest)
    return manifest


class Catalog:
    def __init__(self, entries: dict[str, CatalogEntry]) -> None:
        self._entries = entries

    @classmethod
    def load(cls, registry_dir: Path) -> Catalog:
        """A registry directory, read as is (development and tests)."""
        return cls.build(read_directory(registry_dir), registry_dir, registry_dir.resolve().parent)

    @classmethod
    def from_index(cls, url: str, pubkey_hex: str) -> Catalog:
        """A signed index: verified, then parsed. Only a file:// index may name local packages."""
        _raw, servers = load_verified(url, pubkey_hex)
        local = url.startswith("file://")
        index_dir = Path(url.removeprefix("file://")).resolve().parent if local else None
        latest = {name: next(iter(versions.values())) for name, versions in servers.items()}
        for name, entry in latest.items():
            package = entry.data.get("package")
            if not local and isinstance(package, dict) and ("path" in package or "file" in package):
                raise ManifestError("package", f"{name}: a remote index cannot name local packages")
        return cls.build(latest, index_dir, index_dir.parent if index_dir else Path("/nonexistent"))

    @classmethod
    def build(cls, raw: Mapping[str, IndexEntry], registry_dir: Path | None, root: Path) -> Catalog:
        entries: dict[str, CatalogEntry] = {}
        for key, item in raw.items():
            data = item.data
            label = f"{key}.yaml"
            package_hash = ""
            package = data.get("package")
            if isinstance(package, dict) and isinstance(package.get("path"), str) and not package.get("hashes"):
                # Local sources ship with the gateway; their tree digest is computed here, not signed, so that
                # changing a bundled server's code never makes the signed index stale.
                source = root / package["path"]
                if not source.is_dir():
                    raise ManifestError("package.path", f"{label}: {source} is not a directory")
                package_hash = tree_digest(source)
            try:
                manifest = resolve_manifest(data, package_hash, {}, item.files)
            except ManifestError as exc:
                raise ManifestError(exc.path, f"{label}: {exc}") from None
            if manifest.name != key:
                raise ManifestError("name", f"{label}: the manifest names {manifest.name!r}")
            entries[key] = CatalogEntry(manifest, root, data, package_hash, item.files, registry_dir)
        return cls(entries)

    def get(self, name: str) -> CatalogEntry | None:
        return self._entries.get(name)

    def names(self) -> list[str]:
        return sorted(self._entries)


def load_catalog(config: Config) -> Catalog:
    """The catalog the configuration names: the verified signed index, or the registry directory."""
    if config.registry_index_url:
        try:
            return Catalog.from_index(config.registry_index_url, config.registry_pubkey)
        except RegistryError as exc:
            raise ManifestError("", f"registry index {config.registry_index_url}: {exc}") from None
    return Catalog.load(config.registry_dir)
