"""What the soak test's leak check measures: a process's descriptors, threads and RSS from /proc, the
gateway's sandbox processes, and the veth interfaces carrying the gateway's prefix."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def thread_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def process_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, comm, command line) for every process still there when read."""
    table: dict[int, tuple[int, str, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # comm is in parentheses and may itself hold spaces or parentheses: split at the last ')'.
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        table[int(entry)] = (ppid, comm, cmdline.strip())
    return table


def descendants(root: int, table: dict[int, tuple[int, str, str]]) -> list[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out, stack = [], [root]
    while stack:  # bounded: each pid is visited once (a process has one parent)
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


def proxy_pid(gateway_pid: int) -> int:
    """The gateway's egress proxy child (`python -m egress.proxy_process`)."""
    table = process_table()
    found = [p for p in descendants(gateway_pid, table) if "egress.proxy_process" in table[p][2]]
    if len(found) != 1:
        raise RuntimeError(f"expected one egress proxy below pid {gateway_pid}, found {found}")
    return found[0]


def bwrap_count(gateway_pid: int) -> int:
    table = process_table()
    return sum(1 for p in descendants(gateway_pid, table) if table[p][1] == "bwrap")


def veth_count(prefix: str) -> int:
    """Host ends of sandbox veths: links named <prefix><digits> (the gateway's own naming rule)."""
    out = subprocess.run(["ip", "-j", "link", "show"], capture_output=True, text=True, check=True, timeout=30)
    names = [link.get("ifname", "") for link in json.loads(out.stdout)]
    return sum(1 for n in names if n.startswith(prefix) and n[len(prefix):].isdigit())


@dataclass(frozen=True)
class Snapshot:
    gateway_fds: int
    gateway_threads: int
    gateway_rss_kib: int
    proxy_fds: int
    proxy_threads: int
    proxy_rss_kib: int
    sandboxes: int  # live (any state but stopped) according to GET /api/sandboxes
    bwrap: int
    veths: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
