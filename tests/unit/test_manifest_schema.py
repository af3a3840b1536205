"""Manifest schema v1: package sources, strict versions and hosts, the exfiltration denylist."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from gateway.catalog import resolve_manifest
from gateway.manifest import ManifestError, parse_manifest
from gateway.manifest_lint import denied_by, lint_manifest

INTEGRITY = "sha512-" + "A" * 86 + "=="
SHA = "sha256:" + "0" * 64
BASE: dict[str, Any] = {
    "schema_version": 1,
    "name": "demo",
    "version": "1.2.3",
    "description": "A demo server",
    "category": "testing",
    "runtime": "python",
    "package": {"pypi": "demo==1.2.3", "hashes": [SHA]},
    "command": ["demo-server"],
}


def _with(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (_with(colour="red"), "colour"),
        (_with(package={"pypi": "demo==1", "hashes": [SHA], "extra": 1}), "package.extra"),
        (_with(version="01.2.3"), "version"),
        (_with(version="v1.2.3"), "version"),
        (_with(version="1.2"), "version"),
        (_with(schema_version=2), "schema_version"),
        (_with(category="gambling"), "category"),
        (_with(egress=[{"host": "*"}]), "egress[0].host"),
        (_with(egress=[{"host": "*.com"}]), "egress[0].host"),
        (_with(egress=[{"host": "10.0.0.1"}]), "egress[0].host"),
        (_with(egress=[{"host": "https://api.example.com"}]), "egress[0].host"),
        (_with(egress=[{"host": "api.example.com:443"}]), "egress[0].host"),
        (_with(package={"pypi": "demo==1.2.3", "hashes": ["md5:abc"]}), "package.hashes[0]"),
        (_with(package={"pypi": "demo", "hashes": [SHA]}), "package.pypi"),
        (_with(package={"file": "demo-1.2.3.tar.gz", "hashes": [SHA]}), "package.file"),
        (_with(package={"npm": "demo@1.0.0", "integrity": INTEGRITY, "lock": "l.json"}), "package"),
        (_with(runtime="node", package={"npm": "demo@1.0.0", "lock": "l.json"}), "package.integrity"),
        (_with(runtime="node", package={"npm": "demo@1.0.0", "integrity": INTEGRITY}), "package.lock"),
        (_with(runtime="node", package={"file": "demo.zip", "integrity": INTEGRITY}), "package.file"),
        (_with(runtime="binary", package={"url": "http://example.com/x", "hashes": [SHA]}), "package.url"),
        (_with(runtime="binary", package={"url": "https://example.com/x"}), "package.hashes"),
        (_with(data_dir="/usr/share"), "data_dir"),
        (_with(data_dir="relative"), "data_dir"),
    ],
)
def test_refusals_name_the_field(data: dict[str, Any], path: str) -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(data)
    assert info.value.path == path, str(info.value)
    assert str(info.value).startswith(path)


def test_every_runtime_and_source_parses_and_round_trips() -> None:
    manifests = [
        _with(),
        _with(package={"file": "dist/demo-1.2.3-py3-none-any.whl", "hashes": [SHA]}),
        _with(runtime="node", package={"npm": "@scope/demo@1.0.0", "integrity": INTEGRITY, "lock": "locks/d.json"},
              data_dir="/data"),
        _with(runtime="node", package={"file": "demo-1.0.0.tgz", "integrity": INTEGRITY}),
        _with(runtime="binary", package={"url": "https://example.com/demo", "hashes": [SHA]}),
        _with(runtime="binary", package={"file": "bin/demo", "hashes": [SHA]}),
    ]
    for data in manifests:
        manifest = parse_manifest(data)
        assert parse_manifest(manifest.to_data()) == manifest


def test_new_fields_change_the_runtime_hash_only_when_set() -> None:
    plain = parse_manifest(_with())
    assert parse_manifest(_with(category="web")).runtime_hash() == plain.runtime_hash()
    assert parse_manifest(_with(data_dir="/data")).runtime_hash() != plain.runtime_hash()
    locked = _with(package={"pypi": "demo==1.2.3", "hashes": [SHA], "lock": "l.txt"})
    one = resolve_manifest(locked, "", {}, {"l.txt": "a==1 --hash=" + SHA})
    two = resolve_manifest(locked, "", {}, {"l.txt": "a==2 --hash=" + SHA})
    assert one.runtime_hash() != two.runtime_hash(), "the lock's content is part of the runtime hash"


@pytest.mark.parametrize(
    ("egress", "path"),
    [
        ([{"host": "pastebin.com"}], "egress[0].host"),
        ([{"host": "api.example.com"}, {"host": "abc.ngrok-free.app"}], "egress[1].host"),
        ([{"host": "*.webhook.site"}], "egress[0].host"),
        ([{"host": "metadata.google.internal"}], "egress[0].host"),
        ([{"host": "localhost"}], "egress[0].host"),
    ],
)
def test_denylisted_hosts_are_refused_naming_the_field(egress: list[dict[str, Any]], path: str) -> None:
    manifest = parse_manifest(_with(egress=egress))  # well-formed ...
    with pytest.raises(ManifestError) as info:
        lint_manifest(manifest)  # ... but not acceptable in a catalog
    assert info.value.path == path and "exfiltration" in str(info.value)
    with pytest.raises(ManifestError, match="exfiltration"):
        resolve_manifest(_with(egress=egress), "", {})  # the catalog loader lints every manifest


def test_templated_hosts_are_linted_after_rendering() -> None:
    data = _with(config=[{"name": "site", "type": "url", "default": "https://example.com"}],
                 egress=[{"host": "{site.host}"}])
    assert resolve_manifest(data, "", {}).egress[0].host == "example.com"
    with pytest.raises(ManifestError) as info:
        resolve_manifest(data, "", {"site": "https://x.requestbin.com/"})
    assert info.value.path == "egress[0].host"


def test_denied_by_matches_suffixes_not_substrings() -> None:
    deny = {"ngrok.io"}
    assert denied_by("ngrok.io", deny) == "ngrok.io"
    assert denied_by("a.b.ngrok.io", deny) == "ngrok.io"
    assert denied_by("notngrok.io", deny) is None


def test_lock_digest_is_checked_when_pinned() -> None:
    data = _with(package={"pypi": "demo==1.2.3", "hashes": [SHA], "lock": "l.txt", "lock_sha256": SHA})
    with pytest.raises(ManifestError) as info:
        resolve_manifest(data, "", {}, {"l.txt": "other"})
    assert info.value.path == "package.lock_sha256"
    with pytest.raises(ManifestError) as missing:
        resolve_manifest(data, "", {}, {})
    assert missing.value.path == "package.lock"
