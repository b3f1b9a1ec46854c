"""Bulk writes and reads at the driver level, for the hundreds of thousands of rows of a large run.

SQLAlchemy Core builds the schema and the small statements; the fact rows go through the DB-API's
``executemany`` (and are read back as plain tuples), with values in the form each database stores:
on SQLite money is exact decimal text and dates ISO text (what ``schema.Money`` and SQLAlchemy's
``Date`` write and read), on PostgreSQL ``Decimal`` and ``date`` as they are.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table

from edirecon.money import from_storage, to_storage

# SQLite stores money as exact decimal text and dates as ISO text (what schema.Money and
# SQLAlchemy's Date write): the driver converts at C speed, and a Decimal never becomes a float
sqlite3.register_adapter(Decimal, to_storage)
sqlite3.register_adapter(date, date.isoformat)


class Codec:
    """Converts values between Python and one dialect's storage."""

    def __init__(self, dialect: str):
        self.sqlite = dialect == "sqlite"
        self.placeholder = "?" if self.sqlite else "%s"

    def money(self, value: Any) -> Decimal | None:
        return from_storage(value)

    def day(self, value: Any) -> date | None:
        if value is None or isinstance(value, date):
            return value
        return date.fromisoformat(value)


class Converted(dict):  # type: ignore[type-arg]
    """A value -> its converted form, each converted once (``convert``; None gives ``null``): a
    hit is a plain dict lookup in C, for the amounts and dates a store holds over and over."""

    def __init__(self, convert: Any, null: Any):
        super().__init__({None: null})
        self.convert = convert

    def __missing__(self, value: Any) -> Any:
        got = self[value] = self.convert(value)
        return got


def codec(conn: Connection) -> Codec:
    return Codec(conn.dialect.name)


#: ``n`` values of a table's id sequence, as runs of consecutive values (first, last) in order
#: (the sequence is looked up once, in the CTE: ``nextval(pg_get_serial_sequence(...))`` looks it
#: up in the catalog for every value, four fifths of the time of drawing a thousand ids)
_RUNS = (
    "WITH sequence AS MATERIALIZED (SELECT pg_get_serial_sequence('{table}', 'id')::regclass AS seq)"
    " SELECT min(v), max(v) FROM (SELECT v, v - row_number() OVER (ORDER BY v) AS run"
    " FROM (SELECT nextval(sequence.seq) AS v FROM sequence, generate_series(1, %s)) AS drawn) AS numbered"
    " GROUP BY run ORDER BY 1"
)


def allocate_ids(conn: Connection, table: Table, n: int) -> list[int]:
    """``n`` new primary keys for ``table`` inside the current transaction.

    PostgreSQL draws them from the table's sequence (safe with concurrent writers); SQLite, whose
    writer holds the database lock for the transaction, continues after the largest id.
    """
    if n == 0:
        return []
    if conn.dialect.name == "postgresql":
        # the ids come back as their runs of consecutive values (first, last): one row when no
        # other writer drew from the sequence meanwhile, a few when one did; not n rows, each
        # fetched and converted.  One process's nextval calls give increasing values, so the
        # runs in order are the ids in the order drawn.
        runs = conn.exec_driver_sql(_RUNS.format(table=table.name), (n,)).all()
        ids = [i for first, last in runs for i in range(first, last + 1)]
        assert len(ids) == n, (table.name, n, len(ids))
        return ids
    start = int(conn.exec_driver_sql(f"SELECT COALESCE(MAX(id), 0) FROM {table.name}").scalar_one()) + 1
    return list(range(start, start + n))


def insert_rows(conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """INSERT many rows (tuples in ``columns`` order); returns the count.

    PostgreSQL: one ``COPY ... FROM STDIN`` (psycopg 3), the fastest way in; SQLite: one
    ``executemany`` at the driver level.
    """
    c = codec(conn)
    data = rows if isinstance(rows, list) else list(rows)
    if not data:
        return 0
    if not c.sqlite:
        _copy(conn, table.name, columns, data)
        return len(data)
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join([c.placeholder] * len(columns))})"
    conn.exec_driver_sql(sql, data)
    return len(data)


def dialect_insert(conn: Connection) -> Any:
    """The dialect's INSERT, which has ON CONFLICT (SQLite and PostgreSQL alike)."""
    if conn.dialect.name == "postgresql":
        # deferred: the PostgreSQL dialect's modules (a fifth of a command's start) only on PostgreSQL
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    # deferred: the connection's own dialect, loaded by then
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def insert_dicts(conn: Connection, table: Table, rows: list[dict[str, Any]], ignore: bool = False) -> None:
    """INSERT ``rows`` (column -> value), or with ``ignore`` INSERT … ON CONFLICT DO NOTHING (a row
    whose key is known is skipped), on SQLite and PostgreSQL alike.  Rows of one shape go to the
    driver as tuples, each value through its column type's bind processor (what SQLAlchemy
    applies): its per-row parameter building was most of the time of 10,000 detections."""
    if not rows:
        return
    keys = tuple(rows[0])
    python_defaults = any(c.default is not None and c.name not in keys for c in table.c)
    if python_defaults or any(tuple(row) != keys for row in rows):  # rows of other shapes, defaults made in Python: SQLAlchemy's way
        statement = dialect_insert(conn)(table)
        conn.execute(statement.on_conflict_do_nothing() if ignore else statement, rows)
        return
    sql, processors = _inserting(conn, table, keys, ignore)
    values = [tuple(value if process is None else process(value) for value, process in zip(row.values(), processors)) for row in rows]
    if len(values) >= COPY_FROM and conn.dialect.name == "postgresql":
        _copy_in(conn, table, keys, values, ignore)
        return
    conn.exec_driver_sql(sql, values)


#: rows from which ``insert_dicts`` writes by COPY on PostgreSQL: the server then parses and plans
#: no statement per row (10,000 refunds kept: 0.6 s of the run's process, ~0.1 s by COPY)
COPY_FROM = 500

#: the names of the scratch tables of ``_copy_in`` (unique in a connection)
_SCRATCH = itertools.count()


def _copy_in(conn: Connection, table: Table, keys: tuple[str, ...], values: list[tuple[Any, ...]], ignore: bool) -> None:
    """PostgreSQL: ``values`` (rows of ``keys``) by ``COPY``; with ``ignore``, into a scratch table
    of those columns first, then INSERT … ON CONFLICT DO NOTHING from it in the order given (a
    row whose key is known, or met earlier among them, is skipped: what the statement per row did)."""
    quote = conn.dialect.identifier_preparer.quote
    quoted = [quote(k) for k in keys]
    if not ignore:
        _copy(conn, quote(table.name), quoted, values)
        return
    columns = ", ".join(quoted)
    scratch = f"edirecon_copy_{next(_SCRATCH)}"
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {scratch} AS SELECT {columns} FROM {quote(table.name)} WITH NO DATA")
    _copy(conn, scratch, quoted, values)
    conn.exec_driver_sql(f"INSERT INTO {quote(table.name)} ({columns}) SELECT {columns} FROM {scratch} ORDER BY ctid ON CONFLICT DO NOTHING")
    conn.exec_driver_sql(f"DROP TABLE {scratch}")


def _copy(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """PostgreSQL: ``rows`` into the table named ``table`` by one ``COPY ... FROM STDIN`` (psycopg 3)."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


#: (dialect, table, columns, ignore) -> the INSERT's text and each column's bind processor
_INSERTING: dict[tuple[str, str, tuple[str, ...], bool], tuple[str, list[Any]]] = {}


def _inserting(conn: Connection, table: Table, keys: tuple[str, ...], ignore: bool) -> tuple[str, list[Any]]:
    dialect = conn.dialect
    found = _INSERTING.get((dialect.name, table.name, keys, ignore))
    if found is None:
        quote = dialect.identifier_preparer.quote
        mark = "?" if dialect.name == "sqlite" else "%s"
        sql = f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, keys))}) VALUES ({', '.join([mark] * len(keys))})"
        processors = [table.c[key].type.dialect_impl(dialect).bind_processor(dialect) for key in keys]
        found = _INSERTING[(dialect.name, table.name, keys, ignore)] = (sql + " ON CONFLICT DO NOTHING" if ignore else sql, processors)
    return found


def select_rows(
    conn: Connection, table: Table, columns: Sequence[str], order_by: str = "", where: str = "", params: Sequence[Any] = ()
) -> Iterator[tuple[Any, ...]]:
    """The rows of ``table`` (all, or those ``where`` selects, its ``?`` placeholders bound to
    ``params``) as plain tuples, streamed from the cursor (values in storage form: see ``Codec``);
    the table is never held in memory as a whole."""
    order = f" ORDER BY {order_by}" if order_by else ""
    condition = f" WHERE {where}" if where else ""
    return raw_rows(conn, f"SELECT {', '.join(columns)} FROM {table.name}{condition}{order}", params, stream=not where)


#: the names of PostgreSQL's server-side cursors (unique in a connection: readers may interleave)
_CURSORS = itertools.count()


def raw_rows(conn: Connection, sql: str, params: Sequence[Any] = (), stream: bool = False) -> Iterator[tuple[Any, ...]]:
    """The rows of a query written with ``?`` placeholders, as plain tuples streamed from the
    DB-API cursor itself (no result object's row processing).  With ``stream`` (a whole table),
    PostgreSQL reads them through a server-side cursor, a batch at a time: a client-side cursor
    would hold the whole result in the client's memory before the first row (1,000,000 claims:
    5 GB for `run`).  SQLite's cursor steps through the result either way."""
    if conn.dialect.name != "sqlite":
        sql = sql.replace("?", "%s")
    dbapi = conn.connection.dbapi_connection
    cursor = dbapi.cursor(name=f"edirecon_rows_{next(_CURSORS)}") if stream and conn.dialect.name == "postgresql" else dbapi.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, tuple(params))
        while True:
            batch = cursor.fetchmany(5000)
            if not batch:
                return
            yield from batch
    finally:
        cursor.close()


def query(conn: Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    """Run ``sql`` written with ``?`` placeholders (SQLite's) on either database."""
    if not params:
        return conn.exec_driver_sql(sql)
    if conn.dialect.name != "sqlite":
        sql = sql.replace("?", "%s")
    return conn.exec_driver_sql(sql, tuple(params))


def in_list(values: Sequence[Any]) -> str:
    """``(?, ?, ...)`` for ``values`` (never empty: an empty list selects nothing)."""
    return "(" + ", ".join("?" * len(values)) + ")" if values else "(NULL)"


def member_of(conn: Connection, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """``column`` is one of ``values``: the condition and its parameters.  PostgreSQL gets one
    array parameter (``= ANY(?)``: one plan, no thousands of placeholders to parse); SQLite a
    list of placeholders."""
    if conn.dialect.name == "postgresql":
        return f"{column} = ANY(?)", [list(values)]
    return f"{column} IN {in_list(values)}", list(values)
