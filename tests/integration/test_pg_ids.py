"""PostgreSQL ids for bulk inserts (``bulk.allocate_ids``): drawn from the table's sequence, read
back as runs of consecutive values rather than one row per id."""

from __future__ import annotations

import pytest

from edirecon.engine.store import schema as t
from edirecon.engine.store.bulk import allocate_ids
from edirecon.engine.store.connection import open_store


@pytest.mark.postgres
def test_ids_are_the_sequence_values_drawn_in_order_even_when_they_are_not_consecutive(pg_url: str) -> None:
    store = open_store(pg_url, create=True)
    try:
        with store.write() as conn:
            first = allocate_ids(conn, t.claims, 5)
            assert first == list(range(first[0], first[0] + 5))
            # another writer drawing between this one's values leaves gaps: a step of 3 stands in for it
            conn.exec_driver_sql("ALTER SEQUENCE claims_id_seq INCREMENT BY 3")
            gapped = allocate_ids(conn, t.claims, 4)
            assert gapped == [first[-1] + 3 * k for k in range(1, 5)]
            conn.exec_driver_sql("ALTER SEQUENCE claims_id_seq INCREMENT BY 1")
            assert allocate_ids(conn, t.claims, 1) == [gapped[-1] + 1]
            assert allocate_ids(conn, t.claims, 0) == []
    finally:
        store.dispose()


@pytest.mark.postgres
def test_lines_take_their_ids_from_the_column_default_in_the_order_written(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL only the parents' ids are drawn beforehand (children name them); the lines,
    which no row names, take theirs from the column's default as the COPY writes them: increasing
    in the order given, which is the order they are read back in."""
    from datetime import date
    from decimal import Decimal

    from edirecon.engine.ingest.ingestor import CLAIM_COLUMNS, CLAIM_LINE_COLUMNS
    from edirecon.engine.store import intake

    drawn: list[str] = []

    def counting(conn, table, n):  # type: ignore[no-untyped-def]
        drawn.append(table.name)
        return allocate_ids(conn, table, n)

    monkeypatch.setattr(intake, "allocate_ids", counting)
    store = open_store(pg_url, create=True)
    try:
        with store.write() as conn:
            file_id, _ = intake.new_file(conn, "f" * 64, "in/claims.837", "x12")
            assert file_id is not None
            txn = intake.new_transaction(conn, file_id, 1, "000000001", "1", "0001", "837P")
            assert txn is not None
            claim = dict.fromkeys(CLAIM_COLUMNS[2:], "")
            claim.update(total_charge=Decimal("10.00"), segment=1, byte_offset=0)
            claim.update(dict.fromkeys(("patient_dob", "service_from", "service_to", "created_on", "statement_from", "statement_to", "admission_date")))
            claims = [tuple(dict(claim, patient_control_number=pcn).values()) for pcn in ("A", "B")]
            line = dict.fromkeys(CLAIM_LINE_COLUMNS[2:], "")
            line.update(charge=Decimal("5.00"), units=Decimal("1"), service_date=date(2026, 3, 1))
            lines = [(index, *dict(line, line_number=number).values()) for index, number in ((1, "1"), (0, "1"), (0, "2"), (1, "2"))]
            intake.insert_claims(conn, txn, claims, CLAIM_COLUMNS, lines, CLAIM_LINE_COLUMNS)
            got = conn.exec_driver_sql(
                "SELECT c.patient_control_number, l.line_number FROM claim_lines l JOIN claims c ON c.id = l.claim_id ORDER BY l.id"
            ).all()
    finally:
        store.dispose()
    assert drawn == ["claims"]
    assert [tuple(r) for r in got] == [("B", "1"), ("A", "1"), ("A", "2"), ("B", "2")]
