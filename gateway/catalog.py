"""The bundled catalog: manifests read from `<registry>/servers/*.yaml`, keyed by server name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.manifest import Manifest, ManifestError, load_manifest


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
            if manifest.name in entries:
                raise ManifestError("name", f"{path.name}: server {manifest.name!r} is defined twice")
            entries[manifest.name] = CatalogEntry(manifest, root)
        return cls(entries)

    def get(self, name: str) -> CatalogEntry | None:
        return self._entries.get(name)

    def names(self) -> list[str]:
        return sorted(self._entries)
