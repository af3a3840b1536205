"""`gigmcp audit tail`: the egress audit, newest last, optionally following new records."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from gateway.cli_admin import db_path
from gateway.store import Store, StoreError
from gateway.store.audit import EgressAudit


def format_record(r: dict[str, Any]) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(r["at"]))
    status = r["status"] or "-"
    return (f"{when} {r['decision']:5} {r['reason']:24} {r['server']}/{r['profile']} {r['method']:6} "
            f"{r['host']}:{r['port']}{r['path'][:80]} -> {status} ({r['bytes_up']}B up, {r['bytes_down']}B down)")


async def _tail(args: argparse.Namespace) -> int:
    path = db_path(args)
    if not path.is_file():
        print(f"gigmcp: no database at {path} (set --db, GIG_DB_PATH or GIG_DATA_DIR)", file=sys.stderr)
        return 2
    try:
        store = await Store.open(path)
    except StoreError as exc:
        print(f"gigmcp: {exc}", file=sys.stderr)
        return 2
    try:
        audit = EgressAudit(store.conn)
        rows = list(reversed(await audit.page(limit=args.lines, server=args.server, decision=args.decision)))
        for row in rows:
            print(format_record(row), flush=True)
        last = rows[-1]["id"] if rows else 0
        while args.follow:
            await asyncio.sleep(1.0)
            for row in await audit.page(after_id=last, limit=500, server=args.server, decision=args.decision):
                print(format_record(row), flush=True)
                last = row["id"]
    finally:
        await store.close()
    return 0


def register_audit_commands(sub: Any) -> None:
    parser = sub.add_parser("audit", help="read the egress audit")
    actions = parser.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    tail = actions.add_parser("tail", help="show the latest egress decisions")
    tail.add_argument("--db", help="the database file (default: GIG_DB_PATH, else GIG_DATA_DIR/gigmcp.db)")
    tail.add_argument("-n", "--lines", type=int, default=20, help="how many records (default 20)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new records")
    tail.add_argument("--server", help="only this server")
    tail.add_argument("--decision", choices=["allow", "deny", "error"], help="only this decision")
    tail.set_defaults(func=_run_tail)


def _run_tail(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_tail(args))
    except KeyboardInterrupt:
        return 0
