"""`sandbox.process` helpers that need no sandbox: info-fd parsing, the stderr ring, process trees."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time

from sandbox import process


def test_info_fd_parsing() -> None:
    info = b'{\n    "child-pid": 4242,\n    "cgroup-namespace": 4026532182\n}\n'
    assert process._complete_json(info)
    assert process._child_pid(info) == 4242
    assert not process._complete_json(info[:20])
    assert process._child_pid(b"") is None
    assert process._child_pid(b'{"child-pid": "1"}') is None
    assert process._child_pid(b'{"child-pid": 0}') is None


async def test_stderr_ring_keeps_the_tail_and_feeds_the_sink() -> None:
    reader = asyncio.StreamReader()
    received: list[bytes] = []
    drain = process._StderrDrain(reader, received.append, "unit")
    for i in range(200):
        reader.feed_data(f"line {i:04d} ".encode() + b"x" * 1000 + b"\n")
        await asyncio.sleep(0)
    reader.feed_data(b"bwrap: Can't find source path /x: No such file or directory\n")
    reader.feed_eof()
    await drain.finish()
    tail = drain.tail()
    assert len(tail) <= process.STDERR_RING
    assert tail.endswith(b"No such file or directory\n")
    assert b"line 0000" not in tail
    assert sum(len(c) for c in received) > process.STDERR_RING
    line = drain.tail_line(80)
    assert "\n" not in line and line.endswith("No such file or directory")


async def test_failing_sink_is_dropped() -> None:
    reader = asyncio.StreamReader()

    def sink(_: bytes) -> None:
        raise RuntimeError("sink broken")

    drain = process._StderrDrain(reader, sink, "unit")
    reader.feed_data(b"one\n")
    await asyncio.sleep(0)
    reader.feed_data(b"two\n")
    reader.feed_eof()
    await drain.finish()
    assert drain.tail() == b"one\ntwo\n"


def test_process_tree() -> None:
    child = subprocess.Popen(["/bin/sh", "-c", "sleep 5 & wait"])
    tree: list[int] = []
    try:
        for _ in range(500):
            tree = process.process_tree(child.pid)
            if len(tree) == 2:
                break
            time.sleep(0.01)
        assert tree[0] == child.pid and len(tree) == 2
        assert process._rss_bytes(child.pid) > 0
    finally:
        for pid in reversed(tree):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        child.wait()
    assert process.process_tree(child.pid) == []
