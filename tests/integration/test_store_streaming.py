"""Reading the store back streams on PostgreSQL too (issue 17): a whole table is read through a
server-side cursor, a batch at a time, not held whole in the client's memory before its first row
(psycopg's ordinary cursor fetches every row at ``execute``); a few rows (a refund's encounters)
take the ordinary cursor, one round trip."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from conftest import SAMPLE_EDI

from edirecon.engine.config import Config
from edirecon.engine.run import run
from edirecon.engine.store import schema as t
from edirecon.engine.store.bulk import select_rows
from edirecon.engine.store.connection import open_store
from edirecon.engine.store.facts import load


@pytest.mark.postgres
def test_a_whole_table_is_read_through_a_server_side_cursor_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    run([SAMPLE_EDI], pg_url, tmp_path / "out", date(2026, 11, 27), Config(), workers=1)
    store = open_store(pg_url)
    try:
        with store.engine.connect() as conn:
            rows = select_rows(conn, t.claims, ["id", "patient_control_number"], "id")
            first = next(rows)
            open_cursors = [name for (name,) in conn.exec_driver_sql("SELECT name FROM pg_cursors").all()]
            rest = list(rows)
            assert [n for n in open_cursors if n.startswith("edirecon_rows_")], open_cursors
            assert len(rest) + 1 == conn.exec_driver_sql("SELECT COUNT(*) FROM claims").scalar_one() > 10
            assert first[0] < rest[0][0]
            assert [n for (n,) in conn.exec_driver_sql("SELECT name FROM pg_cursors").all() if n.startswith("edirecon_rows_")] == []
            few = select_rows(conn, t.claims, ["id"], "", "patient_control_number = ?", [first[1]])
            next(few)
            assert [n for (n,) in conn.exec_driver_sql("SELECT name FROM pg_cursors").all() if n.startswith("edirecon_rows_")] == []
            list(few)
            whole = load(conn)  # every fact, table by table through such cursors
            assert len(whole.claims) == len(rest) + 1 and whole.payments
    finally:
        store.dispose()
