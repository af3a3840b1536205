"""The rotation ``RowSource`` for SQLite tables, over an ``aiosqlite.Connection``.

A ``TableSpec`` names where sealed secrets live: the table, a unique id column (``rowid`` works for
any ordinary table, including ones with composite keys), the blob column, the constant ``kind`` of
the secret and the columns that supply the rest of the associated data. Several specs may be given
(several tables, or several blob columns of one table); all of them are rewritten in ONE transaction.

Identifiers cannot be bound as SQL parameters, so every name is checked against a strict regex
(ASCII letters, digits, underscore) and then double-quoted, all in ``_Statements``; values are always
bound. Rows whose blob is NULL hold no secret and are ignored.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

import aiosqlite

from vault.envelope import AssociatedData
from vault.errors import RotationError, UnsupportedFormat
from vault.rotation import SealedRow

_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_ROWID_ALIASES: Final = frozenset({"rowid", "oid", "_rowid_"})
_AD_FIELDS: Final = ("owner", "server", "credential_id")


def quote_identifier(name: str) -> str:
    """``"name"`` if ``name`` is a plain identifier; otherwise ``ValueError`` (no SQL through names)."""
    if not isinstance(name, str) or _IDENTIFIER.fullmatch(name) is None:
        raise ValueError(f"{name!r} is not an allowed SQL identifier (letters, digits and _ only)")
    return f'"{name}"'


def ad_text(value: object) -> str:
    """The associated-data string for a column value.

    NULL and '' are the same (a global secret has no owner); integers are written in decimal. Other
    types are refused because their text form is not canonical (floats) or not text at all (blobs).
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"associated-data values must be TEXT or INTEGER, not {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class TableSpec:
    """One blob column holding sealed secrets, and where each row's associated data comes from.

    An associated-data field whose column is ``None`` is the empty string for every row.
    """

    table: str
    id_column: str
    blob_column: str
    kind: str
    owner_column: str | None = None
    server_column: str | None = None
    credential_id_column: str | None = None

    def __post_init__(self) -> None:
        for name in (self.table, self.id_column, self.blob_column, *self.ad_columns.values()):
            quote_identifier(name)
        if not isinstance(self.kind, str) or not self.kind:
            raise ValueError("TableSpec.kind must be a non-empty string")

    @property
    def ad_columns(self) -> dict[str, str]:
        """Associated-data field -> column, for the fields that come from a column."""
        columns = (self.owner_column, self.server_column, self.credential_id_column)
        pairs = zip(_AD_FIELDS, columns, strict=True)
        return {field: column for field, column in pairs if column is not None}

    def associated_data(
        self,
        owner: object = None,
        server: object = None,
        credential_id: object = None,
    ) -> AssociatedData:
        """The associated data for a row, built exactly as rotation will rebuild it from the table.

        The store should seal with this, so that sealing and rotation can never disagree. A value
        given for a field this spec has no column for is refused, since rotation would see ''.
        """
        values = {"owner": owner, "server": server, "credential_id": credential_id}
        for field, value in values.items():
            if field not in self.ad_columns and ad_text(value) != "":
                raise ValueError(f"TableSpec for {self} has no column for {field}")
        return AssociatedData(
            kind=self.kind,
            owner=ad_text(owner),
            server=ad_text(server),
            credential_id=ad_text(credential_id),
        )

    def __str__(self) -> str:
        return f"{self.table}.{self.blob_column}"


@dataclass(frozen=True, slots=True)
class _Statements:
    """Every SQL text used for one spec, built once.

    The only names interpolated are the spec's, each through ``quote_identifier`` (strict regex, then
    double quotes); every value is a bound parameter. That is why the S608 warnings are silenced here
    and nowhere else.
    """

    ad_fields: tuple[str, ...]
    probe_id: str
    count: str
    first_page: str
    next_page: str
    update: str

    @classmethod
    def for_spec(cls, spec: TableSpec) -> _Statements:
        table = quote_identifier(spec.table)
        id_col = quote_identifier(spec.id_column)
        blob = quote_identifier(spec.blob_column)
        ad_cols = [quote_identifier(column) for column in spec.ad_columns.values()]
        columns = ", ".join([id_col, blob, *ad_cols])
        select = f"SELECT {columns} FROM {table} WHERE {blob} IS NOT NULL"  # noqa: S608
        return cls(
            ad_fields=tuple(spec.ad_columns),
            probe_id=f"SELECT {id_col} FROM {table} LIMIT 0",  # noqa: S608
            count=f"SELECT count(*) FROM {table} WHERE {blob} IS NOT NULL",  # noqa: S608
            first_page=f"{select} ORDER BY {id_col} LIMIT ?",
            next_page=f"{select} AND {id_col} > ? ORDER BY {id_col} LIMIT ?",
            update=f"UPDATE {table} SET {blob} = ? WHERE {id_col} = ?",  # noqa: S608
        )


@dataclass(frozen=True, slots=True)
class SQLiteRowRef:
    """Identifies one sealed value: which spec, and the row's id."""

    spec_index: int
    spec: TableSpec
    key: int | str | bytes

    def __str__(self) -> str:
        return f"{self.spec.table}.{self.spec.blob_column}[{self.spec.id_column}={self.key!r}]"


class SQLiteRowSource:
    """``vault.rotation.RowSource`` over one or more ``TableSpec`` of an aiosqlite connection.

    Rows are read in keyset-paginated batches (``id > last ORDER BY id``) so memory stays bounded
    and no SELECT cursor is open while the same table is updated. The id column must be unique and
    NOT NULL; ``rowid`` always is.
    """

    def __init__(
        self,
        conn: aiosqlite.Connection,
        specs: TableSpec | Sequence[TableSpec],
        *,
        batch_size: int = 256,
    ) -> None:
        self._conn = conn
        self._specs: tuple[TableSpec, ...] = (specs,) if isinstance(specs, TableSpec) else tuple(specs)
        if not self._specs:
            raise ValueError("SQLiteRowSource needs at least one TableSpec")
        if len({(s.table.lower(), s.blob_column.lower()) for s in self._specs}) != len(self._specs):
            raise ValueError("two TableSpecs name the same blob column")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self._sql = tuple(_Statements.for_spec(spec) for spec in self._specs)
        self._batch_size = batch_size
        self._validated = False

    @property
    def specs(self) -> tuple[TableSpec, ...]:
        return self._specs

    async def _fetchall(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        cursor = await self._conn.cursor()
        try:
            # The connection may carry a row factory (dicts, aiosqlite.Row); this module wants tuples.
            cursor.row_factory = None
            await cursor.execute(sql, params)
            return [tuple(row) for row in await cursor.fetchall()]
        finally:
            await cursor.close()

    async def _run(self, sql: str, params: Sequence[object] = ()) -> int:
        cursor = await self._conn.execute(sql, params)
        try:
            return cursor.rowcount
        finally:
            await cursor.close()

    async def _validate(self) -> None:
        """Check that every table and column exists, so that a typo fails with a clear sentence.

        This is also what keeps a misspelt column from being read as a string: SQLite treats a
        double-quoted identifier that matches no column as a string literal.
        """
        if self._validated:
            return
        for spec, sql in zip(self._specs, self._sql, strict=True):
            info = await self._fetchall(f"PRAGMA table_info({quote_identifier(spec.table)})")
            if not info:
                raise RotationError(f"the database has no table {spec.table!r}")
            columns = {str(row[1]).lower() for row in info}
            for column in (spec.blob_column, *spec.ad_columns.values()):
                if column.lower() not in columns:
                    raise RotationError(f"table {spec.table!r} has no column {column!r}")
            if spec.id_column.lower() not in columns:
                if spec.id_column.lower() not in _ROWID_ALIASES:
                    raise RotationError(f"table {spec.table!r} has no column {spec.id_column!r}")
                try:
                    await self._fetchall(sql.probe_id)
                except sqlite3.Error:
                    raise RotationError(f"table {spec.table!r} has no rowid; name its key column") from None
        self._validated = True

    async def count(self) -> int:
        await self._validate()
        total = 0
        for sql in self._sql:
            (value,) = (await self._fetchall(sql.count))[0]
            if not isinstance(value, int):
                raise RotationError(f"count(*) returned {type(value).__name__}")
            total += value
        return total

    async def _rows_of(self, index: int) -> AsyncIterator[SealedRow]:
        spec, sql = self._specs[index], self._sql[index]
        last: object = None
        while True:
            if last is None:
                batch = await self._fetchall(sql.first_page, (self._batch_size,))
            else:
                batch = await self._fetchall(sql.next_page, (last, self._batch_size))
            for key, blob, *ad_values in batch:
                if not isinstance(key, int | str | bytes):
                    raise RotationError(f"{spec}: the id column {spec.id_column!r} holds NULL or a REAL")
                ref = SQLiteRowRef(index, spec, key)
                if not isinstance(blob, bytes):
                    raise UnsupportedFormat(f"{ref}: the column holds {type(blob).__name__}, not a BLOB")
                try:
                    ad = spec.associated_data(**dict(zip(sql.ad_fields, ad_values, strict=True)))
                except (TypeError, ValueError) as exc:
                    raise RotationError(f"{ref}: {exc}") from None
                yield SealedRow(row_id=ref, ad=ad, blob=blob)
            if len(batch) < self._batch_size:
                return
            last = batch[-1][0]

    async def scan(self) -> AsyncIterator[SealedRow]:
        await self._validate()
        for index in range(len(self._specs)):
            async for row in self._rows_of(index):
                yield row

    async def _write(self, row_id: object, blob: bytes) -> None:
        if not isinstance(row_id, SQLiteRowRef) or self._specs[row_id.spec_index] is not row_id.spec:
            raise RotationError("write() was given a row id that this source did not hand out")
        changed = await self._run(self._sql[row_id.spec_index].update, (blob, row_id.key))
        if changed != 1:
            raise RotationError(f"{row_id}: the update changed {changed} rows, not 1 (is the id unique?)")

    @asynccontextmanager
    async def rewrite(self) -> AsyncIterator[_SQLiteWriter]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any exception (cancellation too).

        IMMEDIATE takes the write lock up front, so the rows read are the rows written: no other
        writer can slip in between the read of a row and its rewrite. Explicit statements rather than
        ``commit()``, because ``commit()`` is a no-op on connections opened with ``autocommit=True``.
        """
        if self._conn.in_transaction:
            raise RotationError("the connection already has an open transaction; rotation needs its own")
        await self._validate()
        try:
            await self._run("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise RotationError(
                f"cannot start the rotation transaction ({exc}); is the gateway still running?"
            ) from None
        try:
            yield _SQLiteWriter(self)
        except BaseException:
            if self._conn.in_transaction:
                await self._run("ROLLBACK")
            raise
        try:
            await self._run("COMMIT")
        except sqlite3.Error as exc:
            if self._conn.in_transaction:
                await self._run("ROLLBACK")
            raise RotationError(f"the rotation transaction did not commit ({exc}); nothing changed") from None


class _SQLiteWriter:
    """The ``RowWriter`` handed out inside ``SQLiteRowSource.rewrite``."""

    def __init__(self, source: SQLiteRowSource) -> None:
        self._source = source

    async def count(self) -> int:
        return await self._source.count()

    def rows(self) -> AsyncIterator[SealedRow]:
        return self._source.scan()

    async def write(self, row_id: object, blob: bytes) -> None:
        await self._source._write(row_id, blob)
