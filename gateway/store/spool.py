"""The audit spool: each audit row is on disk before the call that produced it is answered.

Audit rows reach SQLite in batches, off the request path. Between a call's answer and the commit of
its batch the row would otherwise live only in memory, and a gateway killed in that window (SIGKILL,
the OOM killer, a container stopped hard) would lose it. The spool closes the window cheaply: a row is
appended to the current segment file as one JSON line with a single write(2) — microseconds, no
fsync — before the caller goes on. The page cache outlives the process, so a killed gateway's rows
are on disk. (A power cut can still lose the last moments, exactly as SQLite with synchronous=NORMAL
can lose its last commits.)

Each row gets a spool id (`<run>-<n>`) that the audit tables keep in a unique column, so replaying a
segment whose rows were partly or wholly committed inserts every row exactly once. A segment is
removed once all its rows are committed; the current one is truncated whenever none of its rows is
pending, so in steady state the spool holds a few lines. Segments are replayed (then removed) when
an earlier run left them behind, and when rows were written to the spool but not queued (a full
queue while the database was unavailable): the file, not the memory, holds those.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Row = dict[str, Any]
SEGMENT_BYTES = 1 << 20
# One encoder for every row: json.dumps with options builds a new one per call, which costs more than the write.
_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode


@dataclass(slots=True)
class _Segment:
    number: int
    path: Path
    size: int = 0
    pending: int = 0  # rows appended and still waiting in the writer's queue
    replay: bool = False  # holds rows that no queue holds: the file must be replayed before it goes


class Spool:
    """Append-only JSON-lines segments `<name>-<n>.jsonl` in one directory, for one audit writer."""

    def __init__(self, directory: Path, name: str, *, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self.name = name
        self._segment_bytes = segment_bytes
        self._run = secrets.token_hex(6)
        self._seq = 0
        self._segments: dict[int, _Segment] = {}
        self._current: _Segment | None = None
        self._fd: int | None = None

    # ---- lifecycle ---------------------------------------------------------------------------------
    def open(self) -> int:
        """Create the directory, adopt what an earlier run left (to replay), start a new segment.

        Returns how many segments are waiting to be replayed.
        """
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for path in sorted(self.directory.glob(f"{self.name}-*.jsonl"), key=_number):
            number = _number(path)
            if number >= 0:
                self._segments[number] = _Segment(number, path, path.stat().st_size, replay=True)
        leftovers = len(self._segments)
        self._start_segment()
        return leftovers

    def close(self) -> None:
        """Close the current segment; a segment with nothing pending is removed, others stay for the next run."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        for segment in list(self._segments.values()):
            if segment.pending == 0 and not segment.replay:
                self._remove(segment)
        self._current = None

    # ---- the request path -------------------------------------------------------------------------
    def append(self, row: Row) -> int:
        """Give `row` its spool id and write it; returns its segment. Raises OSError (a full disk, ...),
        after which the segment is exactly as before."""
        segment = self._current
        if segment is None or self._fd is None:
            raise OSError(errno.EBADF, "the spool is not open")
        self._seq += 1
        row["spool_id"] = f"{self._run}-{self._seq}"
        data = (_encode(row) + "\n").encode()
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, "short write to the audit spool")
        except OSError:
            # A torn line would only be skipped on replay, but keep the file clean for the next append.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, segment.size)
            del row["spool_id"]
            raise
        segment.size += len(data)
        segment.pending += 1
        number = segment.number
        if segment.size >= self._segment_bytes:
            try:
                self._start_segment()
            except OSError as exc:  # the row is safe in this segment; it just grows a little longer
                log.warning("audit spool: cannot start a new segment: %s", exc)
        return number

    def orphan(self, number: int) -> None:
        """A row of segment `number` was spooled but not queued: only the file holds it now."""
        segment = self._segments.get(number)
        if segment is not None:
            segment.pending -= 1
            segment.replay = True

    def committed(self, numbers: Iterable[int]) -> None:
        """Rows of these segments (one entry per row) are in the database."""
        for number in numbers:
            segment = self._segments.get(number)
            if segment is not None:
                segment.pending -= 1
        for segment in list(self._segments.values()):
            if segment.pending > 0 or segment.replay:
                continue
            if segment is self._current:
                if segment.size and self._fd is not None:
                    # Nothing in it is pending: start it over (one syscall) rather than let it grow.
                    with contextlib.suppress(OSError):
                        os.ftruncate(self._fd, 0)
                        segment.size = 0
            else:
                self._remove(segment)

    # ---- replay -----------------------------------------------------------------------------------
    def to_replay(self) -> list[int]:
        """Segments whose file must be replayed into the database (the current one is sealed first)."""
        if self._current is not None and self._current.replay:
            self._start_segment()
        return sorted(n for n, s in self._segments.items() if s.replay and s is not self._current)

    def read(self, number: int) -> list[Row]:
        """The rows of a segment; a torn or unreadable line (a write cut short) is skipped."""
        segment = self._segments.get(number)
        if segment is None:
            return []
        rows: list[Row] = []
        try:
            text = segment.path.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return []
        for line in text.splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and isinstance(row.get("spool_id"), str):
                rows.append(row)
        return rows

    def replayed(self, number: int) -> None:
        """Every row of segment `number` is in the database: remove it."""
        segment = self._segments.get(number)
        if segment is not None:
            self._remove(segment)

    @property
    def waiting(self) -> int:
        """Segments waiting to be replayed."""
        return sum(1 for s in self._segments.values() if s.replay)

    # ---- internals --------------------------------------------------------------------------------
    def _start_segment(self) -> None:
        number = max(self._segments, default=0) + 1
        path = self.directory / f"{self.name}-{number}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_TRUNC, 0o600)
        if self._fd is not None:
            os.close(self._fd)
        self._fd = fd
        segment = _Segment(number, path)
        self._segments[number] = segment
        self._current = segment
        # The segment it replaces is sealed: gone at once if nothing in it is pending.
        for other in list(self._segments.values()):
            if other is not segment and other.pending == 0 and not other.replay:
                self._remove(other)

    def _remove(self, segment: _Segment) -> None:
        self._segments.pop(segment.number, None)
        try:
            segment.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("audit spool: cannot remove %s: %s", segment.path, exc)


def _number(path: Path) -> int:
    try:
        return int(path.stem.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return -1
