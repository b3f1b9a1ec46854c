"""What ingest writes, as store functions: ingest (``engine/ingest/``) builds the rows, these put
them in the store, in the caller's transaction (``Store.write()``).

Rows given as tuples are in the order of the ``columns`` passed with them (ingest's
``CLAIM_COLUMNS``, ``PAYMENT_COLUMNS`` ...), without their own id and parent id, which are given
here under the write lock; child rows name their parent by its index in the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import Connection, insert, select

from edirecon.engine.store import schema as t
from edirecon.engine.store.bulk import Converted, allocate_ids, dialect_insert, insert_dicts, insert_rows
from edirecon.money import to_storage


def insert_ignore(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING, on SQLite and PostgreSQL alike (``bulk.insert_dicts``)."""
    insert_dicts(conn, table, rows, ignore=True)


def insert_new(conn: Connection, table: Any, row: dict[str, Any], natural_key: list[str]) -> int | None:
    """INSERT a row unless one with the same natural key exists; its new id, or None.

    Safe with concurrent writers: on PostgreSQL a conflicting insert waits for the other
    transaction and then does nothing; on SQLite writers hold the database lock in turn.
    """
    statement = dialect_insert(conn)(table).values(row).on_conflict_do_nothing(index_elements=natural_key).returning(table.c.id)
    return conn.execute(statement).scalar_one_or_none()


def insert_exceptions(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """``ingest_exceptions`` rows, in one statement; a row whose key is known is kept once."""
    insert_ignore(conn, t.ingest_exceptions, rows)


class StorageForm:
    """How the money and date values of the bulk-inserted rows are put.

    As they are (``Decimal``, ``date``) for PostgreSQL's COPY; for SQLite (``text``) already in the
    form the driver's adapters (``store.bulk``) would give them, exact decimal text and ISO text, so
    that the conversion is done while parsing rather than inside the write transaction, and more
    cheaply (a transaction set's dates repeat: each is converted once).
    """

    __slots__ = ("day", "money")

    def __init__(self, text: bool):
        self.money: Callable[[Any], Any] = to_storage if text else _same
        self.day: Callable[[Any], Any] = Converted(_iso_text, None).__getitem__ if text else _same


def _same(value: Any) -> Any:
    return value


def _iso_text(day: Any) -> Any:
    """A date as its ISO text (``str``, what the SQLite adapter of ``store.bulk`` binds)."""
    return str(day) if isinstance(day, date) else day


# -- files and transaction sets -----------------------------------------------------------


def new_file(conn: Connection, sha: str, path: str, kind: str) -> tuple[int | None, dict[str, Any] | None]:
    """Record a file by its SHA-256: (its new id, None), or (None, the row of the file known by it)."""
    file_id = insert_new(conn, t.files, {"sha256": sha, "path": path, "kind": kind, "complete": False}, ["sha256"])
    if file_id is not None:
        return file_id, None
    return None, dict(conn.execute(select(t.files).where(t.files.c.sha256 == sha)).mappings().one())


def complete_file(conn: Connection, file_id: int) -> None:
    conn.execute(t.files.update().where(t.files.c.id == file_id).values(complete=True))


def handled_ordinals(conn: Connection, file_id: int) -> set[int]:
    """The ordinals of the file's transaction sets already handled (ingested or skipped)."""
    return set(conn.execute(select(t.transactions.c.ordinal).where(t.transactions.c.file_id == file_id)).scalars())


def new_transaction(conn: Connection, file_id: int, ordinal: int, isa13: str, gs06: str, st02: str, transaction_type: str) -> int | None:
    """Record a transaction set as handled, not (yet) ingested; None when another writer already did."""
    row = {"file_id": file_id, "ordinal": ordinal, "isa13": isa13, "gs06": gs06, "st02": st02, "transaction_type": transaction_type, "ingested": False}
    return insert_new(conn, t.transactions, row, ["file_id", "ordinal"])


def transaction_ingested(conn: Connection, transaction_id: int) -> None:
    conn.execute(t.transactions.update().where(t.transactions.c.id == transaction_id).values(ingested=True))


# -- facts ---------------------------------------------------------------------------------


def insert_claims(
    conn: Connection,
    transaction_id: int,
    claims: list[tuple[Any, ...]],
    claim_columns: Sequence[str],
    lines: list[tuple[Any, ...]],
    line_columns: Sequence[str],
) -> None:
    """Claims (``claim_columns`` from the third on) and their lines (claim index, then
    ``line_columns`` from the third on)."""
    if conn.dialect.name == "sqlite":
        first = _insert_numbered(conn, t.claims, claim_columns, claims, transaction_id)
        _insert_numbered(conn, t.claim_lines, line_columns, lines, parent_base=first)
        return
    ids = allocate_ids(conn, t.claims, len(claims))
    insert_rows(conn, t.claims, claim_columns, [(cid, transaction_id, *row) for cid, row in zip(ids, claims, strict=True)])
    _insert_leaves(conn, t.claim_lines, line_columns, lines, ids)


def _insert_leaves(conn: Connection, table: Any, columns: Sequence[str], rows: list[tuple[Any, ...]], parent_ids: list[int]) -> None:
    """PostgreSQL: rows no other row names (lines, adjustments), each naming its parent by index,
    with ids from the column's default: the sequence's next values, increasing in the order of
    the rows (one COPY), which is the order they are read back in; none drawn beforehand."""
    insert_rows(conn, table, columns[1:], [(parent_ids[row[0]], *row[1:]) for row in rows])


def _insert_numbered(
    conn: Connection, table: Any, columns: Sequence[str], rows: list[tuple[Any, ...]], parent: int | None = None, parent_base: int | None = None
) -> int:
    """SQLite: ``rows`` as they are (``columns`` from the third on), with no tuple built again
    under the write lock: their ids are SQLite's own (one past the largest, row after row: what
    ``allocate_ids`` gives), the parent id (the second column) the constant ``parent``, or
    ``parent_base`` plus the parent's index, the first cell of each row.  Returns the first id."""
    first = allocate_ids(conn, table, 1)[0] if rows else 0
    if not rows:
        return first
    names = ", ".join(columns[1:])
    cells = ", ".join("?" * len(rows[0])) if parent_base is None else ", ".join([f"? + {int(parent_base)}", *"?" * (len(rows[0]) - 1)])
    head = f"{int(parent)}, " if parent is not None else ""
    conn.exec_driver_sql(f"INSERT INTO {table.name} ({names}) VALUES ({head}{cells})", rows)
    last = conn.exec_driver_sql(f"SELECT MAX(id) FROM {table.name}").scalar_one()
    if last != first + len(rows) - 1:  # pragma: no cover - SQLite gives an INTEGER PRIMARY KEY one past the largest
        raise AssertionError(f"{table.name}: ids {first}..{last} for {len(rows)} rows")
    return first


def new_remittance(conn: Connection, row: dict[str, Any]) -> int | None:
    """Record a remittance; None when one of the same payer and trace number is known."""
    return insert_new(conn, t.remittances, row, ["payer_id", "trace_number"])


def remittance_file(conn: Connection, payer_id: str, trace_number: str) -> str:
    """The file the known remittance of this payer and trace number was ingested from."""
    r = t.remittances.c
    return str(conn.execute(select(r.source_file).where(r.payer_id == payer_id, r.trace_number == trace_number)).scalar_one())


def insert_claim_payments(
    conn: Connection,
    remittance_id: int,
    payments: tuple[list[tuple[Any, ...]], Sequence[str]],
    lines: tuple[list[tuple[Any, ...]], Sequence[str]],
    adjustments: tuple[list[tuple[Any, ...]], Sequence[str]],
    provider_adjustments: list[dict[str, Any]],
) -> None:
    """A remittance's claim payments (rows, columns), their service lines and adjustments (each
    naming its payment by index), and its PLB rows (without their remittance id)."""
    rows, columns = payments
    if conn.dialect.name == "sqlite":
        first = _insert_numbered(conn, t.claim_payments, columns, rows, remittance_id)
        for table, (children, child_columns) in ((t.payment_lines, lines), (t.adjustments, adjustments)):
            _insert_numbered(conn, table, child_columns, children, parent_base=first)
        if provider_adjustments:
            conn.execute(insert(t.provider_adjustments), [{**r, "remittance_id": remittance_id} for r in provider_adjustments])
        return
    ids = allocate_ids(conn, t.claim_payments, len(rows))
    insert_rows(conn, t.claim_payments, columns, [(pid, remittance_id, *row) for pid, row in zip(ids, rows, strict=True)])
    for table, (children, child_columns) in ((t.payment_lines, lines), (t.adjustments, adjustments)):
        _insert_leaves(conn, table, child_columns, children, ids)
    if provider_adjustments:
        conn.execute(insert(t.provider_adjustments), [{**r, "remittance_id": remittance_id} for r in provider_adjustments])


def insert_patient_payments(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Patient payments; one whose payment id is known is kept once."""
    insert_ignore(conn, t.patient_payments, rows)
