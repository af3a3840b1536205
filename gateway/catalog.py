"""The bundled catalog: manifests read from `<registry>/servers/*.yaml`, keyed by server name."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.manifest import Manifest, ManifestError, parse_manifest
from gateway.manifest_config import parse_params, render, values_for

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

    def resolve(self, given: Mapping[str, Any]) -> Manifest:
        """The manifest for one install: parameters filled in (defaults for those not given)."""
        return resolve_manifest(self.data, self.package_hash, given)


def resolve_manifest(data: Mapping[str, Any], package_hash: str, given: Mapping[str, Any]) -> Manifest:
    values = values_for(parse_params(data), given)
    manifest = parse_manifest({**render(data, values), "config_values": values})
    if package_hash and not manifest.package.hashes:
        manifest = dataclasses.replace(manifest, package=dataclasses.replace(manifest.package, hashes=(package_hash,)))
    return manifest


class Catalog:
    def __init__(self, entries: dict[str, CatalogEntry]) -> None:
        self._entries = entries

    @classmethod
    def load(cls, registry_dir: Path) -> Catalog:
        entries: dict[str, CatalogEntry] = {}
        root = registry_dir.resolve().parent
        for path in sorted((registry_dir / "servers").glob("*.yaml")):
            try:
                data = yaml.safe_load(path.read_text())
            except yaml.YAMLError as exc:
                raise ManifestError("", f"{path.name}: not valid YAML: {exc}") from None
            if not isinstance(data, dict):
                raise ManifestError("", f"{path.name}: expected a mapping")
            package_hash = ""
            package = data.get("package")
            if isinstance(package, dict) and isinstance(package.get("path"), str) and not package.get("hashes"):
                source = root / package["path"]
                if not source.is_dir():
                    raise ManifestError("package.path", f"{path.name}: {source} is not a directory")
                package_hash = tree_digest(source)
            try:
                entry = CatalogEntry(resolve_manifest(data, package_hash, {}), root, data, package_hash)
            except ManifestError as exc:
                raise ManifestError(exc.path, f"{path.name}: {exc}") from None
            if entry.manifest.name in entries:
                raise ManifestError("name", f"{path.name}: server {entry.manifest.name!r} is defined twice")
            entries[entry.manifest.name] = entry
        return cls(entries)

    def get(self, name: str) -> CatalogEntry | None:
        return self._entries.get(name)

    def names(self) -> list[str]:
        return sorted(self._entries)
