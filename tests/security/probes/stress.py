"""Runs INSIDE a sandbox (system python, standard library only): bounded resource hogs for limit tests.

Each mode prints JSON lines and stops by itself, so a missing limit fails the test instead of
hanging or harming the host.

  stress.py fork     fork sleeping children until fork fails (at most 200 tries or 5 s)
  stress.py memory   allocate and touch 8 MiB chunks, up to 512 MiB
  stress.py cpu      spin for 1 s of wall time, report the CPU time obtained
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sys
import time

CHUNK = 8 << 20


def fork_bomb() -> None:
    children: list[int] = []
    failure = None
    deadline = time.monotonic() + 5.0
    while len(children) < 200 and time.monotonic() < deadline:
        try:
            pid = os.fork()
        except OSError as exc:
            failure = errno.errorcode.get(exc.errno or 0, str(exc.errno))
            break
        if pid == 0:
            time.sleep(10)
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    for pid in children:
        os.waitpid(pid, 0)
    print(json.dumps({"forked": len(children), "failure": failure}), flush=True)


def memory_hog() -> None:
    hoard = []
    for i in range(64):
        hoard.append(b"\x01" * CHUNK)  # written, so every page is really charged
        print(json.dumps({"allocated_mib": (i + 1) * CHUNK >> 20}), flush=True)
    print(json.dumps({"survived": True}), flush=True)


def cpu_hog() -> None:
    start_wall, start_cpu = time.monotonic(), time.process_time()
    while time.monotonic() - start_wall < 1.0:
        pass
    print(json.dumps({"wall": time.monotonic() - start_wall, "cpu": time.process_time() - start_cpu}), flush=True)


if __name__ == "__main__":
    {"fork": fork_bomb, "memory": memory_hog, "cpu": cpu_hog}[sys.argv[1]]()
