"""No install script of a package runs on the host: an sdist is refused, an npm package's
preinstall/install/postinstall never run. Each fixture package would leave a marker file if it did.
Also: a failed install leaves nothing behind, and installing the same version again is a no-op."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from gateway.installer import InstalledLayout, InstallError, install, install_dir
from gateway.manifest import Manifest, ManifestError, parse_manifest
from tests.support.gateway import REPO

PACKAGES = REPO / "tests" / "fixtures" / "packages"
PYTHON = "/usr/bin/python3"


def _sdist(dest: Path) -> Path:
    """tests/fixtures/packages/sdist-marker as a source distribution (its setup.py writes the marker)."""
    path = dest / "gigmcp-sdist-marker-0.1.0.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(PACKAGES / "sdist-marker" / "setup.py", "gigmcp-sdist-marker-0.1.0/setup.py")
        info = b"Metadata-Version: 2.1\nName: gigmcp-sdist-marker\nVersion: 0.1.0\n"
        member = tarfile.TarInfo("gigmcp-sdist-marker-0.1.0/PKG-INFO")
        member.size = len(info)
        tar.addfile(member, io.BytesIO(info))
    return path


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _sri(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def _leftovers(servers: Path) -> list[str]:
    return sorted(p.name for p in servers.iterdir()) if servers.exists() else []


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "marker"
    monkeypatch.setenv("GIGMCP_TEST_MARKER", str(path))  # inherited by pip and npm if they ran a script
    return path


def test_a_manifest_naming_an_sdist_is_refused() -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest({"name": "sd", "version": "0.1.0", "description": "d", "runtime": "python", "command": ["x"],
                        "package": {"file": "gigmcp-sdist-marker-0.1.0.tar.gz", "hashes": ["sha256:" + "0" * 64]}})
    assert info.value.path == "package.file" and "wheel" in str(info.value)


async def test_an_sdist_never_builds_even_past_the_parser(tmp_path: Path, marker: Path) -> None:
    sdist = _sdist(tmp_path)
    servers = tmp_path / "servers"
    base = parse_manifest({"name": "sd", "version": "0.1.0", "description": "d", "runtime": "python",
                           "command": ["x"], "package": {"pypi": "gigmcp-sdist-marker==0.1.0",
                                                          "hashes": [_sha256(sdist)]}})
    # A package file that is not a wheel (a manifest built without the parser) is refused by the installer.
    as_file = dataclasses.replace(base, package=dataclasses.replace(base.package, pypi="", file=str(sdist)))
    with pytest.raises(InstallError, match="only wheels"):
        await install(as_file, servers_dir=servers, source_root=tmp_path, python=PYTHON)
    # A lock line pointing at a local sdist (pip would build it: --only-binary only governs index lookups).
    lock = f"{sdist} --hash={_sha256(sdist)}\n"
    with pytest.raises(InstallError, match=r"package\.lock line 1"):
        await install(base, servers_dir=servers, source_root=tmp_path, python=PYTHON, lock_text=lock)
    assert not marker.exists(), "the sdist's setup.py ran on the host"
    assert _leftovers(servers) == [], "a failed install left something behind"


def _npm_pack(dest: Path) -> Path:
    out = subprocess.run(["npm", "pack", "--ignore-scripts", "--pack-destination", str(dest),
                          str(PACKAGES / "npm-postinstall")], capture_output=True, text=True, timeout=60, check=True)
    return dest / out.stdout.strip().splitlines()[-1]


def _node_manifest(tarball: Path, integrity: str) -> Manifest:
    return parse_manifest({"name": "marker", "version": "0.1.0", "description": "d", "runtime": "node",
                           "command": ["gigmcp-postinstall-marker"],
                           "package": {"file": str(tarball), "integrity": integrity}})


async def test_npm_install_scripts_never_run(tmp_path: Path, marker: Path) -> None:
    tarball = _npm_pack(tmp_path)
    manifest = _node_manifest(tarball, _sri(tarball))
    servers = tmp_path / "servers"
    layout = await install(manifest, servers_dir=servers, source_root=tmp_path, python=PYTHON)
    assert not marker.exists(), f"an install script ran: {marker.read_text()}"
    argv = layout.resolve_command(manifest)
    assert argv[0] == "/usr/bin/node" and argv[1].startswith(str(layout.root))
    ran = subprocess.run(list(argv), capture_output=True, text=True, timeout=30)
    assert ran.stdout.strip() == "installed without running its scripts"
    assert _leftovers(servers) == ["marker@0.1.0"]
    # The same version again is a no-op: nothing is rebuilt.
    stamp = layout.root / ".gigmcp-installed"
    before = stamp.stat().st_mtime_ns
    assert (await install(manifest, servers_dir=servers, source_root=tmp_path, python=PYTHON)).root == layout.root
    assert stamp.stat().st_mtime_ns == before


async def test_a_wrong_integrity_leaves_nothing(tmp_path: Path, marker: Path) -> None:
    tarball = _npm_pack(tmp_path)
    manifest = _node_manifest(tarball, "sha512-" + "A" * 86 + "==")
    servers = tmp_path / "servers"
    with pytest.raises(InstallError, match="integrity mismatch"):
        await install(manifest, servers_dir=servers, source_root=tmp_path, python=PYTHON)
    assert _leftovers(servers) == [] and not marker.exists()


async def test_binary_is_checked_by_sha256(tmp_path: Path) -> None:
    program = tmp_path / "tool"
    shutil.copyfile("/usr/bin/true", program)
    data = {"name": "tool", "version": "1.0.0", "description": "d", "runtime": "binary", "command": ["tool"],
            "package": {"file": str(program), "hashes": [_sha256(program)]}}
    servers = tmp_path / "servers"
    layout = await install(parse_manifest(data), servers_dir=servers, source_root=tmp_path, python=PYTHON)
    argv = InstalledLayout(layout.root).resolve_command(parse_manifest(data))
    assert argv == (str(layout.root / "bin" / "tool"),) and subprocess.run(argv, timeout=10).returncode == 0
    bad = parse_manifest({**data, "version": "1.0.1", "package": {"file": str(program),
                                                                  "hashes": ["sha256:" + "0" * 64]}})
    with pytest.raises(InstallError, match="sha256 mismatch"):
        await install(bad, servers_dir=servers, source_root=tmp_path, python=PYTHON)
    assert not install_dir(servers, bad).exists()
    assert _leftovers(servers) == ["tool@1.0.0"]
