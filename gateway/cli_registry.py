"""`gigmcp registry lint|build-index|sign|verify|keygen` and `gigmcp install NAME[@VERSION]`.

The registry commands maintain a catalog: lint the manifests of a registry directory, build its
index deterministically, sign it with the private key (kept out of the repository), verify it with the
public key. `install` installs a server of the configured catalog into `GIG_DATA_DIR/servers/`,
showing progress; a running gateway finds it installed (same runtime hash) and does not redo it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

from gateway.catalog import Catalog
from gateway.manifest import ManifestError
from gateway.registry_index import (
    BUNDLED_PUBKEY,
    REGISTRY_ROOT,
    RegistryError,
    build_index,
    bundled_pubkey,
    keygen,
    parse_index,
    read_directory,
    sign,
    verify,
    write_private_key,
)

DEFAULT_SIGNING_KEY = Path("/root/.gigmcp-registry-signing-key")


def _fail(message: str) -> int:
    print(f"gigmcp: {message}", file=sys.stderr)
    return 1


def _lint_all(registry: Path) -> list[str]:
    """Every problem of every manifest (not only the first), each naming its file and field."""
    problems: list[str] = []
    try:
        raw = read_directory(registry)
    except ManifestError as exc:
        return [str(exc)]
    for name, entry in raw.items():
        try:
            Catalog.build({name: entry}, registry, registry.resolve().parent)
        except ManifestError as exc:
            problems.append(str(exc))
    return problems


def _lint(args: argparse.Namespace) -> int:
    problems = _lint_all(args.registry)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"ok: {len(list((args.registry / 'servers').glob('*.yaml')))} manifests")
    return 0


def _build_index(args: argparse.Namespace) -> int:
    problems = _lint_all(args.registry)
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        return _fail("not building an index from invalid manifests")
    out: Path = args.output or args.registry / "index.json"
    out.write_bytes(build_index(read_directory(args.registry)))
    print(f"wrote {out}; sign it with `gigmcp registry sign {out}`")
    return 0


def _sign(args: argparse.Namespace) -> int:
    key_path = Path(args.key or os.environ.get("GIG_SIGNING_KEY_FILE") or DEFAULT_SIGNING_KEY)
    try:
        private = key_path.read_text().strip()
        signature = sign(args.index.read_bytes(), private)
    except OSError as exc:
        return _fail(f"cannot read {exc.filename}: {exc.strerror}")
    except (RegistryError, ValueError) as exc:
        return _fail(f"{key_path}: {exc}")
    sig_path = Path(f"{args.index}.sig")
    sig_path.write_text(signature + "\n")
    print(f"wrote {sig_path}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    pubkey = args.pubkey or (args.pubkey_file.read_text().strip() if args.pubkey_file else bundled_pubkey())
    try:
        index = args.index.read_bytes()
        verify(index, Path(f"{args.index}.sig").read_text(), pubkey)
        servers = parse_index(index)
        registry = args.index.resolve().parent
        latest = {name: next(iter(versions.values())) for name, versions in servers.items()}
        Catalog.build(latest, registry, registry.parent)
    except OSError as exc:
        return _fail(f"cannot read {exc.filename}: {exc.strerror}")
    except (RegistryError, ManifestError) as exc:
        return _fail(str(exc))
    print(f"ok: signature verified, {len(servers)} servers")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    private, public = keygen()
    try:
        write_private_key(args.private, private)
    except FileExistsError:
        return _fail(f"{args.private} exists; not overwriting a signing key")
    args.public.write_text(public + "\n")
    print(f"private key: {args.private} (keep it secret, out of the repository)\npublic key: {args.public}")
    return 0


def _install(args: argparse.Namespace) -> int:
    from gateway.catalog import load_catalog
    from gateway.config import ConfigError, load_config
    from gateway.installer import InstallError, install

    name, _, version = args.server.partition("@")
    given = dict(item.split("=", 1) for item in args.config)
    try:
        config = load_config()
        catalog = load_catalog(config)
        entry = catalog.get(name)
        if entry is None:
            return _fail(f"no server {name!r} in the catalog ({', '.join(catalog.names())})")
        if version and entry.manifest.version != version:
            return _fail(f"the catalog offers {name} {entry.manifest.version}, not {version}")
        manifest = entry.resolve(given)
    except (ConfigError, ManifestError) as exc:
        return _fail(str(exc))
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:5.1f}s] {message}", file=sys.stderr, flush=True)

    try:
        layout = asyncio.run(install(
            manifest, servers_dir=config.servers_dir, source_root=entry.source_root, python=config.sandbox_python,
            progress=progress, registry_dir=entry.registry_dir, lock_text=entry.lock_text,
        ))
    except InstallError as exc:
        return _fail(str(exc))
    print(f"{manifest.name} {manifest.version} installed in {layout.root} (runtime hash {manifest.runtime_hash()})")
    return 0


def register_registry_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    reg = sub.add_parser("registry", help="lint, index, sign and verify a registry of manifests")
    cmds = reg.add_subparsers(dest="registry_command", metavar="COMMAND", required=True)
    lint = cmds.add_parser("lint", help="check every manifest (schema and exfiltration denylist)")
    lint.add_argument("registry", nargs="?", type=Path, default=REGISTRY_ROOT)
    lint.set_defaults(func=_lint)
    build = cmds.add_parser("build-index", help="lint, then write the index of all manifests")
    build.add_argument("registry", nargs="?", type=Path, default=REGISTRY_ROOT)
    build.add_argument("-o", "--output", type=Path)
    build.set_defaults(func=_build_index)
    sgn = cmds.add_parser("sign", help="write INDEX.sig, an ed25519 signature of INDEX")
    sgn.add_argument("index", nargs="?", type=Path, default=REGISTRY_ROOT / "index.json")
    sgn.add_argument("--key", help=f"the private key file (default $GIG_SIGNING_KEY_FILE or {DEFAULT_SIGNING_KEY})")
    sgn.set_defaults(func=_sign)
    ver = cmds.add_parser("verify", help="verify INDEX.sig and every manifest of INDEX")
    ver.add_argument("index", nargs="?", type=Path, default=REGISTRY_ROOT / "index.json")
    ver.add_argument("--pubkey", help="the public key as hex (default: the bundled key)")
    ver.add_argument("--pubkey-file", type=Path)
    ver.set_defaults(func=_verify)
    gen = cmds.add_parser("keygen", help="make a new signing keypair")
    gen.add_argument("--private", type=Path, default=DEFAULT_SIGNING_KEY)
    gen.add_argument("--public", type=Path, default=BUNDLED_PUBKEY)
    gen.set_defaults(func=_keygen)
    inst = sub.add_parser("install", help="install a catalog server into GIG_DATA_DIR, showing progress")
    inst.add_argument("server", metavar="NAME[@VERSION]")
    inst.add_argument("--config", action="append", default=[], metavar="PARAM=VALUE",
                      help="a value for one of the manifest's config parameters")
    inst.set_defaults(func=_install)
