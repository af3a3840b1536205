"""Rotation and key checks over an in-memory RowSource (the SQLite one has its own integration tests)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from vault.envelope import AssociatedData, Keyring, key_id_of, open_, rewrap, seal
from vault.errors import RotationError, TamperedOrMisplaced, WrongKey
from vault.keys import MasterKey
from vault.rotation import RowSource, SealedRow, check, rotate, verify_key_against_rows

OLD = MasterKey.from_hex("aa" * 32)
NEW = MasterKey.from_hex("bb" * 32)
STRANGER = MasterKey.from_hex("cc" * 32)


class Crash(Exception):
    """Stands for the process dying in the middle of a rotation."""


class MemorySource:
    """A RowSource whose rewrite() stages writes and publishes them only on a clean exit."""

    def __init__(self, rows: dict[int, tuple[AssociatedData, bytes]]) -> None:
        self.rows = rows
        self.commits = 0
        self.crash_after: int | None = None
        self.extra_count = 0

    async def count(self) -> int:
        return len(self.rows)

    async def scan(self) -> AsyncIterator[SealedRow]:
        for row_id, (ad, blob) in sorted(self.rows.items()):
            yield SealedRow(row_id, ad, blob)

    @asynccontextmanager
    async def rewrite(self) -> AsyncIterator[_MemoryWriter]:
        writer = _MemoryWriter(self)
        yield writer
        self.rows.update(writer.staged)
        self.commits += 1


class _MemoryWriter:
    def __init__(self, source: MemorySource) -> None:
        self.source = source
        self.staged: dict[int, tuple[AssociatedData, bytes]] = {}

    async def count(self) -> int:
        return len(self.source.rows) + self.source.extra_count

    def rows(self) -> AsyncIterator[SealedRow]:
        return self.source.scan()

    async def write(self, row_id: object, blob: bytes) -> None:
        assert isinstance(row_id, int)
        if self.source.crash_after is not None and len(self.staged) >= self.source.crash_after:
            raise Crash
        self.staged[row_id] = (self.source.rows[row_id][0], blob)


def ad_for(index: int) -> AssociatedData:
    return AssociatedData("credential", f"user{index % 7}", f"server{index % 3}", f"cred{index}")


def plaintext_for(index: int) -> bytes:
    return f"secret number {index}".encode()


def make_source(count: int = 100, key: MasterKey = OLD) -> MemorySource:
    return MemorySource({i: (ad_for(i), seal(key, plaintext_for(i), ad_for(i))) for i in range(count)})


def assert_all_open(source: MemorySource, keys: MasterKey | Keyring) -> None:
    for row_id, (ad, blob) in source.rows.items():
        assert open_(keys, blob, ad) == plaintext_for(row_id)


def test_memory_source_satisfies_the_protocol() -> None:
    source: RowSource = make_source(1)
    assert source is not None


async def test_rotate_rewraps_every_row_and_reports_progress() -> None:
    source = make_source(100)
    calls: list[tuple[int, int]] = []
    report = await rotate(source, OLD, NEW, progress=lambda done, total: calls.append((done, total)))
    assert (report.total, report.rewrapped, report.skipped) == (100, 100, 0)
    assert report.new_key_id == NEW.key_id
    assert calls == [(i, 100) for i in range(1, 101)]
    assert source.commits == 1
    assert {key_id_of(blob) for _, blob in source.rows.values()} == {NEW.key_id}
    assert_all_open(source, NEW)


async def test_rotating_to_the_same_key_is_refused() -> None:
    with pytest.raises(RotationError, match="same as the current one"):
        await rotate(make_source(1), OLD, MasterKey.from_hex("aa" * 32))


async def test_rows_already_under_the_new_key_are_skipped() -> None:
    source = make_source(10)
    for row_id in range(0, 10, 2):
        ad, blob = source.rows[row_id]
        source.rows[row_id] = (ad, rewrap(OLD, NEW, blob, ad))
    report = await rotate(source, OLD, NEW)
    assert (report.rewrapped, report.skipped) == (5, 5)
    assert_all_open(source, NEW)
    again = await rotate(source, OLD, NEW)
    assert (again.rewrapped, again.skipped) == (0, 10)


async def test_a_crash_mid_way_changes_nothing_and_a_rerun_finishes() -> None:
    source = make_source(50)
    before = dict(source.rows)
    source.crash_after = 25
    with pytest.raises(Crash):
        await rotate(source, OLD, NEW)
    assert source.rows == before
    assert_all_open(source, Keyring(NEW, OLD))
    source.crash_after = None
    report = await rotate(source, OLD, NEW)
    assert report.rewrapped == 50
    assert_all_open(source, NEW)


async def test_a_tampered_row_aborts_the_whole_rotation() -> None:
    source = make_source(20)
    ad, blob = source.rows[13]
    source.rows[13] = (ad, blob[:-1] + bytes([blob[-1] ^ 1]))
    before = dict(source.rows)
    with pytest.raises(TamperedOrMisplaced, match=r"^row 13: "):
        await rotate(source, OLD, NEW)
    assert source.rows == before
    assert source.commits == 0


async def test_a_row_under_an_unknown_key_names_old_and_new() -> None:
    source = make_source(5)
    source.rows[3] = (ad_for(3), seal(STRANGER, b"x", ad_for(3)))
    with pytest.raises(WrongKey) as caught:
        await rotate(source, OLD, NEW)
    assert str(caught.value) == (
        f"row 3: the vault was sealed with key {STRANGER.key_id}, "
        f"the configured keys are {OLD.key_id} (old) and {NEW.key_id} (new)"
    )
    assert caught.value.sealed_with == STRANGER.key_id
    assert source.commits == 0


async def test_a_row_count_that_disagrees_is_not_committed() -> None:
    source = make_source(5)
    source.extra_count = 1
    with pytest.raises(RotationError, match="announced 6 rows but yielded 5"):
        await rotate(source, OLD, NEW)
    assert source.commits == 0


async def test_check_collects_every_failure() -> None:
    source = make_source(10)
    source.rows[2] = (ad_for(2), source.rows[3][1])  # row 3's ciphertext copied into row 2
    source.rows[5] = (ad_for(5), seal(STRANGER, b"x", ad_for(5)))
    report = await check(OLD, source)
    assert (report.rows, report.opened) == (10, 8)
    assert not report.ok
    assert [failure.row for failure in report.failures] == ["2", "5"]
    assert isinstance(report.failures[0].error, TamperedOrMisplaced)
    assert isinstance(report.failures[1].error, WrongKey)
    assert report.key_ids == {OLD.key_id: 9, STRANGER.key_id: 1}


async def test_verify_reads_every_key_id_and_opens_a_sample() -> None:
    source = make_source(200)
    before = dict(source.rows)
    report = await verify_key_against_rows(OLD, source, sample=16)
    assert (report.rows, report.opened, report.ok) == (200, 16, True)
    assert report.key_ids == {OLD.key_id: 200}
    assert source.rows == before
    assert source.commits == 0


async def test_verify_stops_a_wrong_key_at_the_first_row() -> None:
    with pytest.raises(WrongKey, match=rf"^row 0: the vault was sealed with key {OLD.key_id}"):
        await verify_key_against_rows(NEW, make_source(10), sample=0)


async def test_verify_finds_a_single_foreign_row_even_outside_the_sample() -> None:
    source = make_source(100)
    source.rows[77] = (ad_for(77), seal(STRANGER, b"x", ad_for(77)))
    with pytest.raises(WrongKey, match=r"^row 77: "):
        await verify_key_against_rows(OLD, source, sample=1)


async def test_verify_with_a_keyring_accepts_both_generations() -> None:
    source = make_source(10)
    ad, blob = source.rows[4]
    source.rows[4] = (ad, rewrap(OLD, NEW, blob, ad))
    report = await verify_key_against_rows(Keyring(NEW, OLD), source, sample=100)
    assert report.opened == 10
    assert report.key_ids == {OLD.key_id: 9, NEW.key_id: 1}


async def test_verify_sample_catches_a_moved_row() -> None:
    source = make_source(30)
    source.rows[9] = (ad_for(9), source.rows[10][1])
    with pytest.raises(TamperedOrMisplaced, match=r"^row 9: "):
        await verify_key_against_rows(OLD, source, sample=30)


async def test_verify_sample_is_uniform(monkeypatch: pytest.MonkeyPatch) -> None:
    # Reservoir sampling: over many runs every row is opened about sample/rows of the time, so a
    # damaged row anywhere in the table is as likely to be caught as one at the start.
    source = make_source(20)
    opened: list[int] = []
    real_open = open_

    def recording_open(keys: MasterKey | Keyring, blob: bytes, ad: AssociatedData) -> bytes:
        opened.append(int(ad.credential_id.removeprefix("cred")))
        return real_open(keys, blob, ad)

    monkeypatch.setattr("vault.rotation.open_", recording_open)
    rng = random.Random(7)
    for _ in range(400):
        report = await verify_key_against_rows(OLD, source, sample=5, rng=rng)
        assert report.opened == 5
    picks = Counter(opened)
    # Expected 100 per row (400 runs x 5 / 20 rows); the bounds are about 4.5 standard deviations.
    assert set(picks) == set(range(20))
    assert all(60 < count < 140 for count in picks.values()), picks


async def test_negative_sample_is_refused() -> None:
    with pytest.raises(ValueError, match="sample"):
        await verify_key_against_rows(OLD, make_source(1), sample=-1)
