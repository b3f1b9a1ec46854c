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
