"""Ingest builds rows, ``engine/store/intake.py`` writes them (issue 14): the SQL of ingestion
lives in store/."""

from __future__ import annotations

import ast
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import REPO

from edirecon.engine.store import bulk, intake
from edirecon.engine.store import schema as t
from edirecon.engine.store.connection import Store


def test_ingest_runs_no_sql_of_its_own() -> None:
    tree = ast.parse((REPO / "engine" / "ingest" / "ingestor.py").read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and (n.module or "").startswith("sqlalchemy") for a in n.names}
    assert imported <= {"Connection"}  # for type annotations only
    calls = {n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)}
    assert not calls & {"execute", "exec_driver_sql", "where", "values", "returning", "on_conflict_do_nothing", "scalar_one", "mappings"}
    # a table's statements (t.files.update(), t.claims.select() ...); hashlib's digest.update() is no SQL
    tables = {
        f"{n.value.value.id}.{n.value.attr}"
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute)
        and n.attr in ("update", "select", "insert", "delete")
        and isinstance(n.value, ast.Attribute)
        and isinstance(n.value.value, ast.Name)
    }
    assert tables == set()


def test_intake_writes_and_finds_files_transactions_and_remittances(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.db'}")
    store.upgrade()
    with store.write() as conn:
        file_id, known = intake.new_file(conn, "a" * 64, "in/remit.835", "x12")
        assert file_id is not None and known is None
        again, known = intake.new_file(conn, "a" * 64, "elsewhere/remit.835", "x12")
        assert again is None and known is not None and (known["id"], known["path"], known["complete"]) == (file_id, "in/remit.835", False)
        txn = intake.new_transaction(conn, file_id, 1, "000000001", "1", "0001", "835")
        assert txn is not None and intake.new_transaction(conn, file_id, 1, "000000001", "1", "0001", "835") is None
        assert intake.handled_ordinals(conn, file_id) == {1}
        row = {
            "transaction_id": txn,
            "payer_id": "87726",
            "payer_name": "BLUE RIVER",
            "trace_number": "T1",
            "payment_amount": Decimal("10.00"),
            "credit_debit": "C",
            "payment_date": date(2026, 3, 5),
            "production_date": None,
            "payee_npi": "1467523894",
            "payee_tin": "",
            "source_file": "in/remit.835",
            "segment": 3,
            "byte_offset": 120,
        }
        remittance_id = intake.new_remittance(conn, row)
        assert remittance_id is not None and intake.new_remittance(conn, row) is None
        assert intake.remittance_file(conn, "87726", "T1") == "in/remit.835"
        intake.transaction_ingested(conn, txn)
        intake.complete_file(conn, file_id)
    with store.engine.connect() as conn:
        assert conn.execute(t.files.select()).mappings().one()["complete"] is True
        assert conn.execute(t.transactions.select()).mappings().one()["ingested"] is True
        assert conn.execute(t.remittances.select()).mappings().one()["payment_amount"] == Decimal("10.00")
    store.dispose()


#: (table, column, parent) of the bulk-loaded fact tables: revision 0014 drops their foreign keys
#: on PostgreSQL, whose row-by-row checks were half the time of the COPYs
BULK_KEYS = (
    ("claims", "transaction_id", "transactions"),
    ("claim_lines", "claim_id", "claims"),
    ("claim_payments", "remittance_id", "remittances"),
    ("payment_lines", "claim_payment_id", "claim_payments"),
    ("adjustments", "claim_payment_id", "claim_payments"),
)


def _foreign_keys(store: Store) -> set[tuple[str, str, str]]:
    from sqlalchemy import inspect

    with store.engine.connect() as conn:
        found = inspect(conn)
        return {(table, key["constrained_columns"][0], key["referred_table"]) for table, _, _ in BULK_KEYS for key in found.get_foreign_keys(table)}


def _orphans(store: Store) -> dict[str, int]:
    """Per bulk table, the rows whose parent is missing."""
    with store.engine.connect() as conn:
        return {
            table: conn.exec_driver_sql(f"SELECT count(*) FROM {table} c WHERE NOT EXISTS (SELECT 1 FROM {parent} p WHERE p.id = c.{column})").scalar_one()
            for table, column, parent in BULK_KEYS
        }


def _ingest_everything(url: str, tmp_path: Path) -> Store:
    from conftest import FIXTURES, SAMPLE_EDI

    from edirecon.engine.config import Config
    from edirecon.engine.run import run

    folders = [SAMPLE_EDI, *sorted(p for p in (FIXTURES / "engine").iterdir() if p.is_dir())]
    run(folders, url, tmp_path / "out", date(2026, 11, 27), Config(), workers=2)
    return Store(url)


def test_every_fact_names_a_parent_that_exists_on_sqlite(tmp_path: Path) -> None:
    """SQLite keeps the bulk tables' foreign keys (it checks them in the index it walks anyway);
    and every child row of the samples and fixtures names a parent that exists."""
    store = _ingest_everything(f"sqlite:///{tmp_path / 's.db'}", tmp_path)
    try:
        assert _foreign_keys(store) == set(BULK_KEYS)
        counts = _orphans(store)
        assert counts == dict.fromkeys(counts, 0)
        with store.engine.connect() as conn:
            assert all(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one() > 0 for table, _, _ in BULK_KEYS)
    finally:
        store.dispose()


def test_postgresql_checks_no_bulk_fact_key_row_by_row_and_ingest_leaves_no_orphan(tmp_path: Path, pg_url: str) -> None:
    """On PostgreSQL the bulk tables have no foreign keys (revision 0014: their row-by-row checks
    were half the time of ingest's COPYs), so what they guarded is checked here: after ingesting
    every sample scenario and fixture in two processes, no child row names a missing parent.  Going
    back to revision 0013 puts the keys back (validated against the rows), and upgrading drops them again."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    from edirecon.engine.store.connection import HEAD, MIGRATIONS

    store = _ingest_everything(pg_url, tmp_path)
    try:
        assert HEAD >= "0014"
        assert _foreign_keys(store) == set()
        counts = _orphans(store)
        assert counts == dict.fromkeys(counts, 0)
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0013")
        assert _foreign_keys(store) == set(BULK_KEYS)
        store.upgrade()
        assert _foreign_keys(store) == set()
    finally:
        store.dispose()


def _detection(refund_id: str, amount: str) -> dict[str, object]:
    return {
        "refund_id": refund_id,
        "patient_control_number": "PCN1",
        "encounter_id": "E1",
        "reason": "OVERPAYMENT",
        "payee_type": "payer",
        "payer_id": "60054",
        "amount": Decimal(amount),
        "recouped": Decimal("0.00"),
        "status": "open",
        "identified_on": date(2026, 11, 2),
        "due_by": date(2027, 1, 1),
        "credit_since": None,
    }


def test_insert_ignore_stores_what_sqlalchemy_stores_and_skips_known_keys(tmp_path: Path, pg_url: str) -> None:
    """``insert_ignore`` hands the driver tuples put through each column's bind processor: the
    stored values are those of SQLAlchemy's own insert (amounts as exact text on SQLite, never a
    float; dates as ISO text), and a row whose key is known is skipped, on SQLite and PostgreSQL."""
    from sqlalchemy import select

    rows = [_detection("RF-1", "196.90"), _detection("RF-2", "1200.00"), _detection("RF-3", "0.10")]
    for url in (f"sqlite:///{tmp_path / 'fast.db'}", pg_url):
        store = Store(url)
        store.upgrade()
        try:
            with store.write() as conn:
                intake.insert_ignore(conn, t.detections, rows[:2])
                intake.insert_ignore(conn, t.detections, [_detection("RF-1", "5.00"), rows[2]])  # RF-1 known: kept as it was
                fast = [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM detections ORDER BY refund_id")]
                typed = [tuple(r) for r in conn.execute(select(t.detections).order_by(t.detections.c.refund_id))]
                conn.exec_driver_sql("DELETE FROM detections")
                conn.execute(bulk.dialect_insert(conn)(t.detections).on_conflict_do_nothing(), rows)
                slow = [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM detections ORDER BY refund_id")]
        finally:
            store.dispose()
        assert fast == slow
        assert [r[6] for r in typed] == [Decimal("196.90"), Decimal("1200.00"), Decimal("0.10")]
        if url.startswith("sqlite"):
            assert [r[6] for r in fast] == ["196.90", "1200.00", "0.10"] and fast[0][9] == "2026-11-02"


def test_many_rows_go_by_copy_on_postgresql_as_the_statement_per_row_stores_them(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """From ``bulk.COPY_FROM`` rows on, ``insert_dicts`` writes by COPY on PostgreSQL (through a
    scratch table with ``ignore``): the rows stored are those of the statement per row, a known
    key and a key met earlier in the same rows are skipped (the first kept), ids come from the
    column's default in the order given, and no scratch table is left behind."""
    from sqlalchemy import select

    from edirecon.engine.store import workflow as stored_workflow

    rows = [_detection(f"RF-{n:04d}", f"{n}.{n % 100:02d}") for n in range(1, 1201)]
    rows.insert(700, _detection("RF-0003", "9.99"))  # met earlier in the same rows: skipped
    when = datetime(2026, 11, 2, 10, 0)
    states = [(f"RF-{n:04d}", "pending", "OVERPAYMENT", "payer", "60054", Decimal(f"{n}.25"), when) for n in range(1, 1201)]
    events = [(f"RF-{n:04d}", when, "edirecon", "identified", "", "pending", f"note {n}") for n in range(1, 1201)]
    stored: dict[str, list[tuple[object, ...]]] = {}
    copied: list[str] = []
    copy_in = bulk._copy_in
    monkeypatch.setattr(bulk, "_copy_in", lambda conn, table, *rest: (copied.append(table.name), copy_in(conn, table, *rest)))
    store = Store(pg_url)
    store.upgrade()
    try:
        for way, copy_from in (("copy", bulk.COPY_FROM), ("per row", 10**9)):
            monkeypatch.setattr(bulk, "COPY_FROM", copy_from)
            with store.write() as conn:
                for table in ("detections", "refund_events", "refund_workflow"):
                    conn.exec_driver_sql(f"DELETE FROM {table}")
                conn.exec_driver_sql("ALTER SEQUENCE refund_events_id_seq RESTART WITH 1")
                intake.insert_ignore(conn, t.detections, [_detection("RF-0002", "5.00")])  # known: kept as it was
                intake.insert_ignore(conn, t.detections, rows)
                stored_workflow.new_states(conn, states)
                stored_workflow.add_events(conn, events)
                for table in (t.detections, t.refund_workflow, t.refund_events):
                    stored[f"{way} {table.name}"] = [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]
                assert conn.exec_driver_sql("SELECT count(*) FROM pg_class WHERE starts_with(relname, 'edirecon_copy_')").scalar_one() == 0
    finally:
        store.dispose()
    assert copied == ["detections", "refund_workflow", "refund_events"]  # the first way only; a row alone never
    for table in ("detections", "refund_workflow", "refund_events"):
        assert stored[f"copy {table}"] == stored[f"per row {table}"] and len(stored[f"copy {table}"]) == 1200
    assert [e[0] for e in stored["copy refund_events"]] == list(range(1, 1201))
    assert [e[-1] for e in stored["copy refund_events"]][:2] == ["note 1", "note 2"]
    by_id = {r[0]: r for r in stored["copy detections"]}
    assert by_id["RF-0002"][6] == Decimal("5.00") and by_id["RF-0003"][6] == Decimal("3.03")
