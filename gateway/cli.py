"""The `gigmcp` command: `serve` runs the gateway; other subcommands administer it."""

from __future__ import annotations

import argparse
import errno
import logging
import ssl
import sys
from collections.abc import Sequence

from gateway.cli_admin import register_admin_commands
from gateway.cli_audit import register_audit_commands
from gateway.cli_registry import register_registry_commands
from gateway.config import Config, ConfigError, load_config


def _tls_context(config: Config) -> ssl.SSLContext | None:
    """The listening socket's TLS context when `GIG_TLS_CERT_FILE` is set; ConfigError names what is wrong."""
    if not config.tls_cert_file or not config.tls_key_file:
        return None
    from gateway.tls import TlsSettings, server_context

    return server_context(TlsSettings(config.tls_cert_file, config.tls_key_file, config.tls_key_passphrase,
                                      config.tls_client_ca_file))


def _serve(_args: argparse.Namespace) -> int:
    from aiohttp import web

    from gateway.app import create_app
    from gateway.logs import setup_logging

    try:
        config = load_config()
        ssl_context = _tls_context(config)
    except ConfigError as exc:
        print(f"gigmcp: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(config.log_level)
    app = create_app(config)
    try:
        web.run_app(
            app,
            host=config.listen_host,
            port=config.listen_port,
            ssl_context=ssl_context,
            print=None,
            handler_cancellation=True,
            shutdown_timeout=15.0,
            access_log=None,
        )
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            print(f"gigmcp: cannot listen on {config.listen_host}:{config.listen_port}: {exc.strerror}",
                  file=sys.stderr)
        else:
            logging.getLogger("gigmcp").debug("start failed", exc_info=True)
            print(f"gigmcp: start failed: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # a start-up failure is one clear line, never a trace
        logging.getLogger("gigmcp").debug("start failed", exc_info=True)
        print(f"gigmcp: start failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _check_config(_args: argparse.Namespace) -> int:
    try:
        config = load_config()
        _tls_context(config)
    except ConfigError as exc:
        print(f"gigmcp: configuration error: {exc}", file=sys.stderr)
        return 2
    print(f"configuration ok: listen {config.listen_host}:{config.listen_port}, data {config.data_dir}")
    return 0


def _catalog(_args: argparse.Namespace) -> int:
    from gateway.catalog import Catalog
    from gateway.config import REPO_ROOT
    from gateway.manifest import ManifestError

    try:
        catalog = Catalog.load(REPO_ROOT / "registry")
    except ManifestError as exc:
        print(f"gigmcp: {exc}", file=sys.stderr)
        return 1
    for name in catalog.names():
        entry = catalog.get(name)
        assert entry is not None
        print(f"{name:20} {entry.manifest.version:10} {entry.manifest.description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gigmcp",
        description="A sandboxed gateway that aggregates isolated MCP servers behind one authenticated endpoint.",
        epilog="Configuration comes from GIG_* environment variables; see docs/operator-guide.md.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("serve", help="run the gateway").set_defaults(func=_serve)
    sub.add_parser("check-config", help="validate the GIG_* configuration and exit").set_defaults(func=_check_config)
    sub.add_parser("catalog", help="list the servers of the bundled catalog").set_defaults(func=_catalog)
    register_audit_commands(sub)
    register_admin_commands(sub)
    register_registry_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
