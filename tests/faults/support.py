"""Probes of the fault drill: a gateway that can be killed and restarted on the same data, the
process tree it leaves behind, its network links and firewall table, and its database read directly.

Everything looks only at what one test gateway owns (its process tree, its interface prefix, its
table, its database), because other gateways may run on the same machine at the same time.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.gateway import FIXTURE_REGISTRY, REPO, TOKEN, Gateway, RawSession, free_port

CREDENTIAL_SECRET = "glpat-drill-" + secrets.token_hex(8)


def write_registry(base: Path, https_port: int) -> Path:
    """echo (the fixture registry's own manifest, so its install is shared with the other tests) and
    fetch (egress to allowed.test with a sealed credential). Returns the registry directory."""
    # A manifest's relative package path is resolved from the registry's parent: laid out so that the
    # fixture's "../../servers/echo" names this repository's servers, exactly as in the fixture registry.
    registry = base / "a" / "b" / "registry"
    (registry / "servers").mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        (base / "servers").symlink_to(REPO / "servers")
    (registry / "servers" / "echo.yaml").write_text((FIXTURE_REGISTRY / "servers" / "echo.yaml").read_text())
    (registry / "servers" / "fetch.yaml").write_text(textwrap.dedent(f"""\
        name: fetch
        version: 0.1.0
        description: fetch, for the fault drill
        runtime: python
        package: {{path: ../../servers/fetch}}
        command: [gigmcp-fetch]
        egress:
          - {{host: allowed.test, ports: [{https_port}]}}
        credentials:
          - id: token
            type: api_key
            hosts: [allowed.test]
            env: FETCH_TOKEN
            header: Authorization
            format: "Bearer {{secret}}"
        """))
    return registry


def drill_gateway(registry: Path, ca_pem: Path, install: str = "echo,fetch", **env: str) -> Gateway:
    """A gateway whose port, proxy port and master key stay the same across restarts."""
    return Gateway(install=install, env={
        "GIG_REGISTRY_DIR": str(registry),
        "GIG_TEST_EGRESS_OVERRIDES": "allowed.test=127.0.0.1",
        "GIG_UPSTREAM_CA_FILE": str(ca_pem),
        "GIG_MASTER_KEY": secrets.token_hex(32),
        "GIG_PROXY_PORT": str(free_port()),
        "GIG_IDLE_TIMEOUT": "600",
        **env,
    })


def db_of(gw: Gateway) -> Path:
    return Path(gw.env["GIG_DB_PATH"]) if "GIG_DB_PATH" in gw.env else gw.log_path.with_suffix(".db")  # type: ignore[union-attr]


def prefix_of(gw: Gateway) -> str:
    return gw.if_prefix


def table_of(gw: Gateway) -> str:
    return f"gigmcp_{prefix_of(gw)}"


# --- the database, read from outside ----------------------------------------------------------------


def query(db: Path, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """A read on a separate connection (WAL: it never waits for the gateway's writer)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return list(conn.execute(sql, args).fetchall())
    finally:
        conn.close()


_LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


def hold_write_lock(db: Path, seconds: float) -> subprocess.Popen[str]:
    """Another process holding the database's write lock (BEGIN IMMEDIATE) for `seconds`; returns once held."""
    locker = subprocess.Popen([sys.executable, "-c", _LOCKER, str(db), str(seconds)], stdout=subprocess.PIPE,
                              text=True)
    assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
    return locker


def integrity(db: Path) -> str:
    return str(query(db, "PRAGMA integrity_check")[0][0])


def tool_calls(db: Path, tool: str, outcome: str | None = None) -> int:
    sql = "SELECT count(*) FROM tool_calls WHERE tool = ?"
    args: tuple[Any, ...] = (tool,)
    if outcome is not None:
        sql += " AND outcome = ?"
        args += (outcome,)
    return int(query(db, sql, args)[0][0])


# --- processes ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    start: int  # clock ticks after boot: tells a recycled pid from the original
    cmd: str


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(parent pid, start time, state) of a process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[19]), fields[0]


def process_tree(root: int) -> list[Proc]:
    """`root` and every descendant, as they are now."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            parents[int(entry)] = st[0]
    tree = [root]
    for pid in tree:
        tree.extend(p for p, parent in parents.items() if parent == pid and p not in tree)
    found = []
    for pid in tree:
        st = _stat(pid)
        if st is None:
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            cmd = ""
        found.append(Proc(pid, st[1], cmd.strip()))
    return found


def still_running(procs: list[Proc]) -> list[Proc]:
    """Those of `procs` that still run (the same process, not a zombie)."""
    alive = []
    for proc in procs:
        st = _stat(proc.pid)
        if st is not None and st[1] == proc.start and st[2] != "Z":
            alive.append(proc)
    return alive


def zombie_children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None and st[0] == pid and st[2] == "Z":
            out.append(int(entry))
    return out


def proxy_process(gw: Gateway) -> Proc:
    assert gw.proc is not None
    found = [p for p in process_tree(gw.proc.pid) if "egress.proxy_process" in p.cmd]
    assert len(found) == 1, found
    return found[0]


# --- network -----------------------------------------------------------------------------------------


def links(prefix: str) -> list[str]:
    """Host interfaces named `<prefix><digits>`: a gateway's sandbox veths."""
    return sorted(n for n in os.listdir("/sys/class/net") if n.startswith(prefix) and n[len(prefix):].isdigit())


def nft_table(table: str) -> bool:
    return subprocess.run(["nft", "list", "table", "inet", table], capture_output=True).returncode == 0


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """The first truthy value of `predicate()` within `timeout` seconds, else the last (falsy) one."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


# --- the gateway as a process --------------------------------------------------------------------------


def kill9(gw: Gateway) -> None:
    assert gw.proc is not None
    gw.proc.send_signal(signal.SIGKILL)
    gw.proc.wait(10)


def log_text(gw: Gateway) -> str:
    assert gw.log_path is not None
    return gw.log_path.read_text(errors="replace")


def log_records(gw: Gateway) -> list[dict[str, Any]]:
    out = []
    for line in log_text(gw).splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                out.append(record)
    return out


# --- traffic -------------------------------------------------------------------------------------------


@dataclass
class Traffic:
    """Calls made from threads until stopped: how many were sent and how many were answered."""

    gw: Gateway
    tool: str
    arguments: dict[str, Any]
    threads: int = 4
    # Whether a reply counts as answered (default: a result that is not a tool error).
    accept: Callable[[dict[str, Any]], bool] = lambda reply: "result" in reply and not reply["result"].get("isError")
    sent: int = 0
    answered: int = 0
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def _run(self, session: RawSession, deadline: float) -> None:
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                self.sent += 1
            try:
                reply = session.call(self.tool, self.arguments)
            except Exception as exc:  # the gateway went away under us: that is the point
                self.errors.append(f"{type(exc).__name__}: {exc}")
                return
            if self.accept(reply):
                with self._lock:
                    self.answered += 1
            else:
                self.errors.append(json.dumps(reply)[:300])

    def start(self, max_seconds: float = 30.0) -> Traffic:
        sessions = [RawSession(self.gw).open() for _ in range(self.threads)]
        deadline = time.monotonic() + max_seconds
        for session in sessions:
            worker = threading.Thread(target=self._run, args=(session, deadline), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> Traffic:
        self._stop.set()
        for worker in self._workers:
            worker.join(40)
        return self


@contextlib.contextmanager
def stopped_on_exit(gw: Gateway) -> Iterator[Gateway]:
    try:
        yield gw
    finally:
        gw.stop()


__all__ = ["TOKEN"]
