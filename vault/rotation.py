"""Master-key rotation and key checks over an abstract source of sealed rows.

The vault does not know where ciphertexts live; the gateway store does. Rotation needs only the
small ``RowSource`` protocol below: read rows, and rewrite rows inside one transaction that either
commits as a whole or not at all. ``vault.sqlite_rotation`` implements it for SQLite.

Why this is safe to interrupt: every rewrap happens inside a single transaction, so a killed process
leaves the store all-old (before commit) or all-new (after). Rows already under the new key are
skipped, so a re-run finishes any job, including over a source that could not offer one transaction
for everything. A ``Keyring(new, old)`` opens rows in either state.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from vault.envelope import AssociatedData, Keyring, KeySource, key_id_of, open_, rewrap
from vault.errors import RotationError, VaultError, WrongKey
from vault.keys import MasterKey


@dataclass(frozen=True, slots=True)
class SealedRow:
    """One ciphertext and what it is bound to.

    ``row_id`` is opaque to the vault: the source hands it out and gets it back in ``write``. Its
    ``str`` is used in error messages, so it should name the row without containing secrets.
    """

    row_id: object
    ad: AssociatedData
    blob: bytes


class RowWriter(Protocol):
    """The view of a source inside its rewrite transaction."""

    async def count(self) -> int:
        """Number of rows ``rows`` will yield (for progress reports)."""
        ...

    def rows(self) -> AsyncIterator[SealedRow]:
        """Every sealed row; must tolerate ``write`` being called between items."""
        ...

    async def write(self, row_id: object, blob: bytes) -> None:
        """Replace the ciphertext of one row (made visible only when the transaction commits)."""
        ...


class RowSource(Protocol):
    """Where sealed rows live."""

    async def count(self) -> int:
        """Number of rows ``scan`` will yield."""
        ...

    def scan(self) -> AsyncIterator[SealedRow]:
        """Every sealed row, read-only."""
        ...

    def rewrite(self) -> AbstractAsyncContextManager[RowWriter]:
        """One transaction: commits when the block exits normally, rolls back when it raises."""
        ...


type ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each row (rewrapped or skipped)."""


@dataclass(frozen=True, slots=True)
class RotationReport:
    total: int
    rewrapped: int
    skipped: int
    """Rows that were already under the new key."""
    seconds: float
    new_key_id: str


@dataclass(frozen=True, slots=True)
class RowFailure:
    row: str
    error: VaultError


@dataclass(frozen=True, slots=True)
class CheckReport:
    rows: int
    """Rows seen (every one had its key id checked)."""
    opened: int
    """Rows fully authenticated and decrypted."""
    key_ids: dict[str, int] = field(default_factory=dict)
    """How many rows are wrapped under each key id."""
    failures: tuple[RowFailure, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failures


async def rotate(
    source: RowSource,
    old_kek: MasterKey,
    new_kek: MasterKey,
    progress: ProgressCallback | None = None,
) -> RotationReport:
    """Rewrap every data key from ``old_kek`` to ``new_kek`` in one transaction.

    Rows already under ``new_kek`` are skipped. Any row that is under another key or does not
    authenticate aborts the whole rotation (nothing is written) with an error naming the row.
    """
    if old_kek.id_bytes == new_kek.id_bytes:
        raise RotationError(f"the new master key is the same as the current one (key {new_kek.key_id})")
    started = time.perf_counter()
    keys = Keyring(old_kek)
    rewrapped = skipped = done = 0
    async with source.rewrite() as writer:
        total = await writer.count()
        async for row in writer.rows():
            try:
                if key_id_of(row.blob) == new_kek.key_id:
                    skipped += 1
                else:
                    await writer.write(row.row_id, rewrap(keys, new_kek, row.blob, row.ad))
                    rewrapped += 1
            except WrongKey as exc:
                # Name both keys the operator is juggling, not just the old one.
                both = (old_kek.key_id, new_kek.key_id)
                raise WrongKey.for_ids(exc.sealed_with, both, roles=("old", "new")).at(
                    f"row {row.row_id}"
                ) from None
            except VaultError as exc:
                raise exc.at(f"row {row.row_id}") from None
            done += 1
            if progress is not None:
                progress(done, total)
        if done != total:
            # A count that disagrees with the rows seen means something else wrote meanwhile, or
            # the source is broken; either way do not commit a rotation we cannot vouch for.
            raise RotationError(f"the source announced {total} rows but yielded {done}; nothing was changed")
    return RotationReport(
        total=done,
        rewrapped=rewrapped,
        skipped=skipped,
        seconds=time.perf_counter() - started,
        new_key_id=new_kek.key_id,
    )


async def check(kek: KeySource, source: RowSource) -> CheckReport:
    """Open every row; collect (rather than raise) the failures, for an operator's report."""
    rows = opened = 0
    key_ids: Counter[str] = Counter()
    failures: list[RowFailure] = []
    async for row in source.scan():
        rows += 1
        try:
            key_ids[key_id_of(row.blob)] += 1
            open_(kek, row.blob, row.ad)
            opened += 1
        except VaultError as exc:
            failures.append(RowFailure(str(row.row_id), exc.at(f"row {row.row_id}")))
    return CheckReport(rows=rows, opened=opened, key_ids=dict(key_ids), failures=tuple(failures))


async def verify_key_against_rows(
    kek: KeySource,
    source: RowSource,
    sample: int = 32,
    *,
    rng: random.Random | None = None,
) -> CheckReport:
    """Start-up check: every row must name a configured key, and a random sample must open.

    Reading key ids is nearly free, so all rows are checked for them (that alone catches a wrong or
    stale master key). Full authentication costs a few microseconds per row, so it runs on a uniform
    random sample of ``sample`` rows (reservoir sampling, one pass). Raises the first ``VaultError``
    with the row named; never writes.
    """
    if sample < 0:
        raise ValueError("sample must be >= 0")
    pick = rng if rng is not None else random.SystemRandom()
    keys = kek if isinstance(kek, Keyring) else Keyring(kek)
    reservoir: list[SealedRow] = []
    key_ids: Counter[str] = Counter()
    rows = 0
    async for row in source.scan():
        try:
            key_id = key_id_of(row.blob)
            if keys.find(bytes.fromhex(key_id)) is None:
                raise WrongKey.for_ids(key_id, keys.key_ids)
        except VaultError as exc:
            raise exc.at(f"row {row.row_id}") from None
        key_ids[key_id] += 1
        rows += 1
        if len(reservoir) < sample:
            reservoir.append(row)
        else:
            slot = pick.randrange(rows)
            if slot < sample:
                reservoir[slot] = row
    for row in reservoir:
        try:
            open_(keys, row.blob, row.ad)
        except VaultError as exc:
            raise exc.at(f"row {row.row_id}") from None
    return CheckReport(rows=rows, opened=len(reservoir), key_ids=dict(key_ids))
