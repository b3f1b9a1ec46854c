"""Column lengths, defined once: the ``String(n)`` of ``schema.py``.

Ingest never repeats a length: it fits each row it builds to the table's columns with a
:class:`Widths`, which reads them from the schema (ingest names the table: it does not import the
schema, whose tables are the store's).  A text longer than its column is cut to the
column's length (PostgreSQL would refuse the row, SQLite would keep the whole text: both stores now
hold the same value) and reported as a :class:`TooLong`, which ingest records as a
``FIELD_TOO_LONG`` exception with its position and field (docs/findings.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import gt, itemgetter
from typing import Any

from sqlalchemy import Column, String, Table

from edirecon.engine.store import schema as t

#: the parts of a stored mailing address, as column suffixes (``schema.address_columns``)
ADDRESS_PARTS = t.ADDRESS_PARTS


def length(column: Column[Any]) -> int | None:
    """The length of a ``String(n)`` column; None for a column of unbounded text or not text."""
    kind = column.type
    return kind.length if isinstance(kind, String) and kind.length else None


def column_length(table: str, column: str) -> int | None:
    """The length of the column ``column`` of the table named ``table`` (:func:`length`)."""
    return length(t.metadata.tables[table].c[column])


@dataclass(frozen=True, slots=True)
class TooLong:
    """A text longer than its column: ``table.column`` holds ``limit`` characters, it had ``length``."""

    table: str
    column: str
    limit: int
    length: int


class Widths:
    """The bounded text columns among ``columns`` of ``table``, for rows given in that order
    (tuples) or by column name (dicts).  A name that is None or "" is a cell of the row that is
    no column (the index of a parent row, say)."""

    __slots__ = ("_get", "_limits", "checks", "table")

    def __init__(self, table: Table, columns: Sequence[str | None]):
        self.table = table.name
        #: (position in the row, column name, length)
        self.checks = [(i, name, n) for i, name in enumerate(columns) if name and (n := length(table.c[name])) is not None]
        positions = [i for i, _, _ in self.checks]
        get = itemgetter(*positions) if positions else (lambda row: ())
        self._get = get if len(positions) != 1 else (lambda row: (get(row),))
        self._limits = [n for _, _, n in self.checks]

    def fit(self, row: tuple[Any, ...], over: list[TooLong]) -> tuple[Any, ...]:
        """``row`` with each text cut to its column's length; what was cut is added to ``over``."""
        if not any(map(gt, map(len, self._get(row)), self._limits)):  # the usual case, at C speed
            return row
        cells = list(row)
        for i, name, n in self.checks:
            value = cells[i]
            if len(value) > n:
                over.append(TooLong(self.table, name, n, len(value)))
                cells[i] = value[:n]
        return tuple(cells)

    def fit_mapping(self, row: Mapping[str, Any], over: list[TooLong]) -> dict[str, Any]:
        """A row given by column name, fitted as :meth:`fit` does (columns it lacks are left out)."""
        out = dict(row)
        for _, name, n in self.checks:
            value = out.get(name)
            if isinstance(value, str) and len(value) > n:
                over.append(TooLong(self.table, name, n, len(value)))
                out[name] = value[:n]
        return out


def widths(table: Table | str, columns: Sequence[str | None] | None = None) -> Widths:
    """The :class:`Widths` of ``table`` (or the table of that name) for rows of ``columns`` (all
    its columns when not given)."""
    if isinstance(table, str):
        table = t.metadata.tables[table]
    return _widths(table, tuple(columns) if columns is not None else tuple(c.name for c in table.columns))


@lru_cache(maxsize=256)
def _widths(table: Table, columns: tuple[str | None, ...]) -> Widths:
    return Widths(table, columns)
