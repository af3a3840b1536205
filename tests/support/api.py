"""Small helpers for REST API tests: JSON calls with a chosen token, and the process table."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support.gateway import REPO, TOKEN, Gateway


def api(gw: Gateway, method: str, path: str, body: Any = None, token: str | None = TOKEN,
        raw: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One API call; returns (status, parsed JSON or None)."""
    hdrs = {"Authorization": f"Bearer {token}"} if token else {}
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    status, _, payload = gw.request(method, path, data, hdrs, auth=False)
    return status, json.loads(payload) if payload else None


def cli(
    gw: Gateway, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`gigmcp ARGS --db <the gateway's database>` as a separate process."""
    db = str(db_path(gw))
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args, "--db", db], input=stdin, capture_output=True, text=True,
        env=full_env, cwd=REPO, timeout=60,
    )


def db_path(gw: Gateway) -> Path:
    assert gw.log_path is not None
    return gw.log_path.with_suffix(".db")


def sandbox_uid() -> int:
    """The uid sandboxes run as, resolved like the gateway's configuration does by default."""
    try:
        return pwd.getpwnam(os.environ.get("GIG_SANDBOX_USER", "gigmcp-sb")).pw_uid
    except KeyError:
        return pwd.getpwnam("nobody").pw_uid


def descendants_with_uid(root_pid: int, uid: int) -> list[int]:
    """Processes below `root_pid` whose real uid is `uid`."""
    parents: dict[int, int] = {}
    uids: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parents[int(entry)] = int(fields["PPid"].strip())
        uids[int(entry)] = int(fields["Uid"].split()[0])
    found = []
    for pid, owner in uids.items():
        if owner != uid:
            continue
        cursor = pid
        while cursor > 1:
            cursor = parents.get(cursor, 0)
            if cursor == root_pid:
                found.append(pid)
                break
    return found
