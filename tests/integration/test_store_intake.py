"""Ingest builds rows, ``engine/store/intake.py`` writes them (issue 14): the SQL of ingestion
lives in store/."""

from __future__ import annotations

import ast
from datetime import date
from decimal import Decimal
from pathlib import Path

from conftest import REPO

from edirecon.engine.store import intake
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
