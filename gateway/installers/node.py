"""Node servers: `node_modules` installed by `npm ci --ignore-scripts` from the manifest's lock.

The lock (a package-lock.json shipped with the manifest and signed with the index) pins every
package by integrity; npm checks each tarball against it. `--ignore-scripts` (and the same setting
in the environment, for nested invocations) means no `preinstall`/`install`/`postinstall` ever runs
on the host. A local tarball is checked against the manifest's integrity and installed offline, and
then may not have dependencies (they would be resolved unpinned).
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path
from typing import Any

from gateway.installers.common import InstallError, Progress, local_file, run, sri_sha512_of
from gateway.manifest import Manifest

NPM_ENV = {"npm_config_ignore_scripts": "true", "npm_config_update_notifier": "false", "npm_config_fund": "false",
           "npm_config_audit": "false"}
NPM_FLAGS = ["--ignore-scripts", "--no-audit", "--no-fund", "--omit=dev", "--loglevel=error"]


def npm_name(spec: str) -> tuple[str, str]:
    """'@scope/name@1.2.3' -> ('@scope/name', '1.2.3')."""
    name, _, version = spec.rpartition("@")
    return name, version


def check_lock(manifest: Manifest, lock_text: str) -> dict[str, Any]:
    """The parsed lock, after checking it pins the manifest's package and every dependency by integrity."""
    try:
        lock = json.loads(lock_text)
    except ValueError as exc:
        raise InstallError(f"package.lock: not JSON: {exc}") from None
    packages = lock.get("packages") if isinstance(lock, dict) else None
    if not isinstance(packages, dict) or "" not in packages:
        raise InstallError("package.lock: expected a package-lock.json (lockfileVersion 2 or 3)")
    name, version = npm_name(manifest.package.npm)
    own = packages.get(f"node_modules/{name}")
    if not isinstance(own, dict) or own.get("version") != version:
        raise InstallError(f"package.lock: does not pin {name}@{version}")
    if own.get("integrity") != manifest.package.integrity:
        raise InstallError(f"package.lock: the integrity of {name} differs from the manifest's")
    for key, entry in packages.items():
        if key and isinstance(entry, dict) and not entry.get("link") and not entry.get("integrity"):
            raise InstallError(f"package.lock: {key} has no integrity")
    return dict(lock)


async def install_node(manifest: Manifest, work: Path, *, registry_dir: Path | None, lock_text: str,
                       say: Progress) -> None:
    env = {**os.environ, **NPM_ENV}
    package = manifest.package
    if package.npm:
        lock = check_lock(manifest, lock_text)
        root = lock["packages"][""]
        manifest_json = {"name": root.get("name", "gigmcp-server"), "version": root.get("version", "0.0.0"),
                         "private": True, "dependencies": root.get("dependencies", {})}
        (work / "package.json").write_text(json.dumps(manifest_json, indent=1) + "\n")
        (work / "package-lock.json").write_text(lock_text)
        say(f"{manifest.name}: npm ci {package.npm} (scripts disabled)")
        await run(["npm", "ci", *NPM_FLAGS], "npm ci", say=say, env=env, cwd=work)
        return
    source = local_file(registry_dir, package.file)
    tarball = work / "package.tgz"
    shutil.copyfile(source, tarball)
    actual = sri_sha512_of(tarball)
    if actual != package.integrity:
        raise InstallError(f"package.file {package.file}: integrity mismatch (got {actual})")
    with tarfile.open(tarball) as tar:
        member = tar.extractfile("package/package.json")
        meta = json.loads(member.read()) if member else {}
    if meta.get("dependencies") and not lock_text:
        raise InstallError(f"package.file {package.file}: has dependencies but the manifest ships no lock")
    name = str(meta.get("name", ""))
    (work / "package.json").write_text(json.dumps(
        {"name": "gigmcp-server", "version": "0.0.0", "private": True,
         "dependencies": {name: "file:package.tgz"}}, indent=1) + "\n")
    say(f"{manifest.name}: npm install {package.file} (offline, scripts disabled)")
    await run(["npm", "install", "--offline", "--no-package-lock", *NPM_FLAGS], "npm install", say=say, env=env,
              cwd=work)
    tarball.unlink()
