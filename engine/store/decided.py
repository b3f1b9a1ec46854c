"""The SQL of the API's lists read from records (``decided_rows``, ``decided_lists``): what
``run`` records of the recoupments, credit balances and exceptions it decided, and the page
query the API makes instead of deciding the whole store again."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from itertools import islice
from typing import Any

from sqlalchemy import Connection, delete, insert, select

from edirecon.engine.store import schema as t
from edirecon.engine.store.bulk import insert_rows

#: rows inserted per statement
_BATCH = 5000
_COLUMNS = ("kind", "seq", "sort_key", "row_json")


def record(conn: Connection, rows: Iterable[tuple[str, int, str, str]], facts: str, config: str, as_of: date, at: datetime) -> int:
    """In the caller's transaction: replace the recorded rows by ``rows`` ((kind, position, sort
    text, item JSON)) and say which facts, configuration and day they were decided from.  Returns
    how many rows were recorded."""
    conn.execute(delete(t.decided_lists))
    conn.execute(delete(t.decided_rows))
    n = 0
    # plain tuples at the driver (SQLite's executemany, PostgreSQL's COPY): the rows need no
    # conversion, and SQLAlchemy's per-row parameter building was most of the step (76,000 rows)
    stream = iter(rows)
    for batch in iter(lambda: list(islice(stream, _BATCH)), []):
        n += insert_rows(conn, t.decided_rows, _COLUMNS, batch)
    conn.execute(insert(t.decided_lists).values(id=1, facts=facts, config=config, as_of=as_of, recorded_at=at))
    return n


def stamp(conn: Connection) -> dict[str, Any] | None:
    """The ``decided_lists`` row (None: no rows recorded yet, a store of an older version)."""
    row = conn.execute(select(t.decided_lists).limit(1)).mappings().first()
    return None if row is None else dict(row)


def after(conn: Connection, kind: str, key: str | None, limit: int) -> list[tuple[str, str]]:
    """(sort text, item JSON) of at most ``limit`` rows of ``kind`` in key order (ties in their
    recorded order), from the first whose key is ``key`` or after (all when None): one range of
    the index on (kind, sort_key, seq)."""
    d = t.decided_rows.c
    query = select(d.sort_key, d.row_json).where(d.kind == kind)
    if key is not None:
        query = query.where(d.sort_key >= key)
    return [(k, item) for k, item in conn.execute(query.order_by(d.sort_key, d.seq).limit(limit))]


def every(conn: Connection, kind: str) -> list[str]:
    """The item JSON of every recorded row of ``kind``, in key order (ties in their recorded order)."""
    d = t.decided_rows.c
    return list(conn.execute(select(d.row_json).where(d.kind == kind).order_by(d.sort_key, d.seq)).scalars())
