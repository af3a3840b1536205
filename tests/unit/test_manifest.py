"""Manifests: strict parsing with the field path in every error, and a runtime hash that tracks security."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from gateway.catalog import Catalog
from gateway.config import REPO_ROOT
from gateway.manifest import ManifestError, parse_manifest

GOOD: dict[str, Any] = {
    "name": "demo",
    "version": "1.2.3",
    "description": "A demo server",
    "runtime": "python",
    "package": {"path": "servers/echo"},
    "command": ["demo-server"],
    "tools": [{"name": "one"}, {"name": "two", "default": False}],
    "egress": [{"host": "api.example.com", "methods": ["get"], "paths": ["/v1/"]}],
}


def _with(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(GOOD)
    data.update(changes)
    return data


def test_parses_and_round_trips() -> None:
    manifest = parse_manifest(GOOD)
    assert manifest.tools[1].default is False
    assert manifest.egress[0].methods == ("GET",)
    assert parse_manifest(manifest.to_data()) == manifest


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (_with(surprise=1), "surprise"),
        (_with(version="1.2"), "version"),
        (_with(name="Bad_Name"), "name"),
        (_with(runtime="java"), "runtime"),
        (_with(tools=[{"name": "x", "colour": "red"}]), "tools[0].colour"),
        (_with(tools=[{"name": "x"}, {"name": "x"}]), "tools[1].name"),
        (_with(egress=[{"host": "*"}]), "egress[0].host"),
        (_with(egress=[{"host": "api.*.com"}]), "egress[0].host"),
        (_with(egress=[{"host": "a.com", "ports": [0]}]), "egress[0].ports[0]"),
        (_with(egress=[{"host": "a.com", "paths": ["v1"]}]), "egress[0].paths[0]"),
        (_with(package={"pypi": "x==1"}), "package.hashes"),
        (_with(package={"path": "a", "pypi": "b==1"}), "package"),
        (_with(limits={"memory_mb": 1}), "limits.memory_mb"),
        ({k: v for k, v in GOOD.items() if k != "command"}, "command"),
    ],
)
def test_errors_name_the_field(data: dict[str, Any], path: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(data)
    assert info.value.path == path
    assert str(info.value).startswith(path)


def test_runtime_hash_tracks_security_relevant_fields() -> None:
    base = parse_manifest(GOOD).runtime_hash()
    assert parse_manifest(_with(description="other words")).runtime_hash() == base
    assert parse_manifest(_with(egress=[{"host": "evil.example.com"}])).runtime_hash() != base
    assert parse_manifest(_with(command=["other"])).runtime_hash() != base
    assert parse_manifest(_with(tools=[{"name": "one"}])).runtime_hash() != base


def test_bundled_catalog_loads() -> None:
    catalog = Catalog.load(REPO_ROOT / "registry")
    assert "echo" in catalog.names()
    entry = catalog.get("echo")
    assert entry is not None and (entry.source_root / entry.manifest.package.path / "pyproject.toml").exists()


def test_fixture_catalog_loads() -> None:
    catalog = Catalog.load(Path(__file__).resolve().parents[1] / "fixtures" / "registry")
    assert {"echo", "echob", "fixture"} <= set(catalog.names())
