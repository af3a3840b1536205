"""`gigmcp user|token|consent|credential|vault ...`: administration straight on the database.

These work with the gateway running (SQLite WAL; the gateway re-reads tokens and consents on every
request, so a revocation applies at once) or stopped (`vault rotate` requires it stopped). The
database is `--db`, else `GIG_DB_PATH`, else `GIG_DATA_DIR/gigmcp.db`. Secrets are read from stdin,
never from the command line (which other users can see in `ps`). Exit status: 0 done, 1 refused or
not found, 2 bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from gateway.api.core import CREDENTIAL_ID, USER_NAME
from gateway.api.schema import SchemaError, validate
from gateway.auth import BOOTSTRAP_USER, issue_token
from gateway.consent import diff_manifests
from gateway.credentials import Credentials, VaultStartError, declared_credentials, master_key_from_env, open_vault
from gateway.store import VAULT_TABLES, InstalledServer, Store, StoreError, User
from vault import MasterKeyError, load_master_key
from vault.cli import rotate_command

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2

Command = Callable[[Store, argparse.Namespace], Awaitable[int]]


class CliError(Exception):
    """A plain sentence for the operator, and the exit status that goes with it."""

    def __init__(self, message: str, status: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.status = status


def db_path(args: argparse.Namespace) -> Path:
    if args.db:
        return Path(args.db)
    if os.environ.get("GIG_DB_PATH"):
        return Path(os.environ["GIG_DB_PATH"])
    return Path(os.environ.get("GIG_DATA_DIR") or "/var/lib/gigmcp") / "gigmcp.db"


def _when(value: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(value)) if value else "-"


async def _user(store: Store, name: str) -> User:
    user = await store.users.by_name(name)
    if user is None:
        raise CliError(f"no user {name!r} (gigmcp user add {name})")
    return user


async def _installed(store: Store, name: str) -> InstalledServer:
    for server in await store.servers.active():
        if server.name == name:
            return server
    raise CliError(f"server {name!r} is not installed")


# ---- users ------------------------------------------------------------------------------------------
def _check(schema: dict[str, Any], value: str, what: str) -> None:
    try:
        validate(schema, value, what)
    except SchemaError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


async def user_add(store: Store, args: argparse.Namespace) -> int:
    _check(USER_NAME, args.name, "name")
    user = await store.users.create(args.name, args.role)
    if user is None:
        raise CliError(f"user {args.name!r} already exists")
    profile = await store.profiles.ensure_default(user)
    print(f"created {user.role} {user.name} with default profile {profile.slug}")
    return EXIT_OK


async def user_list(store: Store, _args: argparse.Namespace) -> int:
    for user in await store.users.list():
        default = await store.profiles.default_for(user.id)
        print(f"{user.name:24} {user.role:6} default profile {default.slug if default else '-'}")
    return EXIT_OK


# ---- tokens -----------------------------------------------------------------------------------------
async def token_create(store: Store, args: argparse.Namespace) -> int:
    user = await _user(store, args.user)
    profile_id = None
    if args.profile:
        profile = await store.profiles.by_slug(args.profile)
        if profile is None or profile.user_id != user.id:
            raise CliError(f"{user.name} has no profile {args.profile!r}")
        profile_id = profile.id
    expires_at = time.time() + args.expires_days * 86400 if args.expires_days else None
    issued = await issue_token(store, user_id=user.id, name=args.name, profile_id=profile_id, expires_at=expires_at)
    # The token alone on stdout (for scripts); the explanation on stderr.
    print(issued.secret)
    print(f"token {issued.record.id} ({issued.record.kind}) for {user.name}: shown once, store it now",
          file=sys.stderr)
    return EXIT_OK


async def token_list(store: Store, args: argparse.Namespace) -> int:
    users = [await _user(store, args.user)] if args.user else await store.users.list()
    now = time.time()
    for user in users:
        for record in await store.tokens.list_for(user.id):
            if not record.active(now):
                continue
            profile = await store.profiles.by_id(record.profile_id) if record.profile_id else None
            scope = f"profile {profile.slug}" if profile else "personal"
            print(f"{record.id:6} {user.name:20} {record.prefix}… {record.name!r} {scope}, "
                  f"expires {_when(record.expires_at)}, last used {_when(record.last_used_at)}")
    return EXIT_OK


async def token_revoke(store: Store, args: argparse.Namespace) -> int:
    if not await store.tokens.revoke(args.id):
        raise CliError(f"no live token {args.id}")
    print(f"revoked token {args.id}")
    return EXIT_OK


# ---- consent ----------------------------------------------------------------------------------------
async def consent_show(store: Store, args: argparse.Namespace) -> int:
    user = await _user(store, args.user)
    server = await _installed(store, args.server)
    exact = await store.consents.has(user.id, server.name, server.runtime_hash)
    approved = await store.consents.latest(user.id, server.name)
    print(f"{server.name} {server.version} (hash {server.runtime_hash[:12]}): "
          + ("approved" if exact else "waiting for consent") + f" by {user.name}")
    before = json.loads(approved.manifest_json) if approved and not exact else None
    if exact:
        return EXIT_OK
    diff = diff_manifests(before, json.loads(server.manifest_json))
    label = f"since the approved {approved.version}" if approved else "(never approved)"
    print(f"what it may do, {label}:")
    for key, values in diff.to_data().items():
        if values:
            print(f"  {key}: {json.dumps(values)}")
    return EXIT_OK


async def consent_grant(store: Store, args: argparse.Namespace) -> int:
    user = await _user(store, args.user)
    server = await _installed(store, args.server)
    await store.consents.grant(user.id, server.name, server.runtime_hash, server.version, server.manifest_json)
    print(f"{user.name} consents to {server.name} {server.version} (hash {server.runtime_hash[:12]})")
    return EXIT_OK


async def consent_revoke(store: Store, args: argparse.Namespace) -> int:
    user = await _user(store, args.user)
    if not await store.consents.revoke(user.id, args.server):
        raise CliError(f"{user.name} has no consent to {args.server!r}")
    print(f"revoked {user.name}'s consent to {args.server}; calls are refused from now on")
    return EXIT_OK


# ---- credentials ------------------------------------------------------------------------------------
async def _credentials(store: Store) -> Credentials:
    try:
        key = await open_vault(store, master_key_from_env())
    except VaultStartError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    if key is None:
        raise CliError("no master key: set GIG_MASTER_KEY or GIG_MASTER_KEY_FILE", EXIT_USAGE)
    return Credentials(store, key)


async def credential_set(store: Store, args: argparse.Namespace) -> int:
    user = await _user(store, args.user)
    server = await _installed(store, args.server)
    _check(CREDENTIAL_ID, args.credential_id, "credential_id")
    if args.credential_id not in declared_credentials(server):
        raise CliError(f"server {server.name!r} declares no credential {args.credential_id!r}")
    service = await _credentials(store)
    value = sys.stdin.read().rstrip("\r\n")
    if not value:
        raise CliError("no secret on stdin", EXIT_USAGE)
    info = await service.set_secret(user.id, server.name, args.credential_id, value)
    print(f"stored {info.server}/{info.credential_id} for {user.name}")
    return EXIT_OK


async def credential_list(store: Store, args: argparse.Namespace) -> int:
    user = await _user(store, args.user)
    for row in await store.secrets.list_for(user.id):
        print(f"{row.server}/{row.credential_id}  updated {_when(row.updated_at)}")
    return EXIT_OK


async def credential_delete(store: Store, args: argparse.Namespace) -> int:
    user = await _user(store, args.user)
    if not await store.secrets.delete(user.id, args.server, args.credential_id):
        raise CliError(f"{user.name} has no credential {args.server}/{args.credential_id}")
    print(f"deleted {args.server}/{args.credential_id} of {user.name}")
    return EXIT_OK


# ---- runner -----------------------------------------------------------------------------------------
async def _with_store(command: Command, args: argparse.Namespace) -> int:
    path = db_path(args)
    if not path.is_file():
        raise CliError(f"no database at {path} (set --db, GIG_DB_PATH or GIG_DATA_DIR)", EXIT_USAGE)
    try:
        store = await Store.open(path)
    except StoreError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    try:
        return await command(store, args)
    finally:
        await store.close()


def _run(command: Command) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return asyncio.run(_with_store(command, args))
        except CliError as exc:
            print(f"gigmcp: {exc}", file=sys.stderr)
            return exc.status

    return run


def _vault_rotate(args: argparse.Namespace) -> int:
    path = db_path(args)
    try:
        old_key = load_master_key()
    except MasterKeyError as exc:
        print(f"gigmcp vault rotate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return rotate_command(path, VAULT_TABLES, old_key, args.new_key_file)


def register_admin_commands(sub: Any) -> None:
    """Add the admin subcommands to the `gigmcp` parser's subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help="the database file (default: GIG_DB_PATH, else GIG_DATA_DIR/gigmcp.db)")
    who = argparse.ArgumentParser(add_help=False)
    who.add_argument("--user", default=BOOTSTRAP_USER, help="whose (default: admin)")

    def group(name: str, help_text: str) -> Any:
        parser = sub.add_parser(name, help=help_text)
        return parser.add_subparsers(dest=f"{name}_command", metavar="ACTION", required=True)

    users = group("user", "add and list users")
    add = users.add_parser("add", parents=[common], help="create a user with a default profile")
    add.add_argument("name")
    add.add_argument("--role", choices=("user", "admin"), default="user")
    add.set_defaults(func=_run(user_add))
    users.add_parser("list", parents=[common], help="list users").set_defaults(func=_run(user_list))

    tokens = group("token", "create, list and revoke API tokens")
    create = tokens.add_parser("create", parents=[common, who], help="create a token (printed once)")
    create.add_argument("--name", default="cli", help="a label for the token")
    create.add_argument("--profile", help="make a profile token that reaches only this profile")
    create.add_argument("--expires-days", type=int, help="expire after this many days")
    create.set_defaults(func=_run(token_create))
    listing = tokens.add_parser("list", parents=[common], help="list live tokens")
    listing.add_argument("--user", help="only this user's tokens")
    listing.set_defaults(func=_run(token_list))
    revoke = tokens.add_parser("revoke", parents=[common], help="revoke a token by id (effective at once)")
    revoke.add_argument("id", type=int)
    revoke.set_defaults(func=_run(token_revoke))

    consents = group("consent", "show, grant and revoke consent to a server's manifest")
    for action, func, text in (
        ("show", consent_show, "what the server may do and what changed since the last consent"),
        ("grant", consent_grant, "consent to the server's current manifest"),
        ("revoke", consent_revoke, "revoke consent; calls are refused from now on"),
    ):
        parser = consents.add_parser(action, parents=[common, who], help=text)
        parser.add_argument("server")
        parser.set_defaults(func=_run(func))

    creds = group("credential", "store (from stdin), list and delete credentials")
    put = creds.add_parser("set", parents=[common, who], help="store a secret read from stdin")
    put.add_argument("server")
    put.add_argument("credential_id")
    put.set_defaults(func=_run(credential_set))
    creds.add_parser("list", parents=[common, who], help="list credential ids").set_defaults(
        func=_run(credential_list))
    delete = creds.add_parser("delete", parents=[common, who], help="delete a stored secret")
    delete.add_argument("server")
    delete.add_argument("credential_id")
    delete.set_defaults(func=_run(credential_delete))

    vault = group("vault", "master-key operations")
    rotate = vault.add_parser("rotate", parents=[common], help="rewrap every secret under a new master key "
                              "(gateway stopped; current key from GIG_MASTER_KEY or GIG_MASTER_KEY_FILE)")
    rotate.add_argument("--new-key-file", required=True, help="file holding the new key (64 hex characters)")
    rotate.set_defaults(func=_vault_rotate)
