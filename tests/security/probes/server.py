"""Runs INSIDE a sandbox (system python, standard library only): small stand-ins for MCP servers.

server.py echo       echo stdin lines to stdout; exit 0 at EOF
server.py big N      print one line of N bytes, then behave like echo
server.py stubborn   ignore SIGTERM and stdin EOF; sleep
server.py stderr N   write N bytes to stderr in lines, then exit 3
server.py limits     print the rlimits and fd table as JSON, then exit
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time


def echo() -> None:
    for line in sys.stdin:
        sys.stdout.write(line)
        sys.stdout.flush()


def stubborn() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("ready", flush=True)
    while True:
        time.sleep(1)


def stderr(total: int) -> None:
    line = b"x" * 99 + b"\n"
    for _ in range(total // 100):
        os.write(2, line)
    os.write(2, b"the last words\n")
    sys.exit(3)


def limits() -> None:
    names = ("RLIMIT_NOFILE", "RLIMIT_FSIZE", "RLIMIT_CORE", "RLIMIT_NPROC")
    report = {name: list(resource.getrlimit(getattr(resource, name))) for name in names}
    report["fds"] = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "echo":
        echo()
    elif mode == "big":
        sys.stdout.write("y" * int(sys.argv[2]) + "\n")
        sys.stdout.flush()
        echo()
    elif mode == "stubborn":
        stubborn()
    elif mode == "stderr":
        stderr(int(sys.argv[2]))
    elif mode == "limits":
        limits()
