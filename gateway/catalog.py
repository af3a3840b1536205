"""The bundled catalog: manifests read from `<registry>/servers/*.yaml`, keyed by server name."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from gateway.manifest import Manifest, ManifestError, load_manifest

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
    manifest: Manifest
    source_root: Path  # where a manifest's relative package.path is resolved


class Catalog:
    def __init__(self, entries: dict[str, CatalogEntry]) -> None:
        self._entries = entries

    @classmethod
    def load(cls, registry_dir: Path) -> Catalog:
        entries: dict[str, CatalogEntry] = {}
        root = registry_dir.resolve().parent
        for path in sorted((registry_dir / "servers").glob("*.yaml")):
            manifest = load_manifest(path)
            if manifest.package.path and not manifest.package.hashes:
                source = root / manifest.package.path
                if not source.is_dir():
                    raise ManifestError("package.path", f"{path.name}: {source} is not a directory")
                package = dataclasses.replace(manifest.package, hashes=(tree_digest(source),))
                manifest = dataclasses.replace(manifest, package=package)
            if manifest.name in entries:
                raise ManifestError("name", f"{path.name}: server {manifest.name!r} is defined twice")
            entries[manifest.name] = CatalogEntry(manifest, root)
        return cls(entries)

    def get(self, name: str) -> CatalogEntry | None:
        return self._entries.get(name)

    def names(self) -> list[str]:
        return sorted(self._entries)
