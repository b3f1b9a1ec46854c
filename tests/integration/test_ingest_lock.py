"""SQLite's write lock during ingestion: a process finding it held parses on instead of waiting,
and takes it as soon as it is free; what ends up in the store is the same."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest
from conftest import SAMPLE_EDI

from edirecon import parsers
from edirecon.engine.ingest import ingestor as ingest_module
from edirecon.engine.ingest.ingestor import Ingestor
from edirecon.engine.run import input_files
from edirecon.engine.store.connection import Connection, Store, open_store
from edirecon.parsers.model import Claim, ClaimPayment

TABLES = [
    "files",
    "transactions",
    "claims",
    "claim_lines",
    "remittances",
    "claim_payments",
    "payment_lines",
    "adjustments",
    "provider_adjustments",
    "ingest_exceptions",
]


def _contents(store: Store) -> dict[str, list[tuple[object, ...]]]:
    with store.engine.connect() as conn:
        return {table: [tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY 1")] for table in TABLES}


def _ingest(store: Store) -> None:
    ingestor = Ingestor(store)
    for path, name in input_files(sorted(p for p in SAMPLE_EDI.iterdir() if p.is_dir())):
        ingestor.ingest(path, name)


def test_write_if_free_gives_no_connection_while_another_process_writes(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = open_store(f"sqlite:///{db}", create=True)
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with store.write_if_free() as conn:
        assert conn is None
    other.execute("ROLLBACK")
    with store.write_if_free() as conn:
        assert conn is not None
        conn.exec_driver_sql("INSERT INTO files (sha256, path, kind, complete) VALUES ('s', 'p', 'x12', 0)")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT path FROM files").scalars().all() == ["p"]
        # the connection waits for the lock again as before (SQLite's busy timeout, in ms)
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 600_000


def test_a_busy_lock_is_parsed_past_and_the_store_ends_up_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the lock found busy at every try but the last of each write, every transaction set of
    the samples is still written once, all of a file's sets in the transactions they waited for,
    and the store holds exactly what an ingest that never met a busy lock wrote."""
    calm = open_store(f"sqlite:///{tmp_path}/calm.db", create=True)
    _ingest(calm)
    expected = _contents(calm)

    busy = open_store(f"sqlite:///{tmp_path}/busy.db", create=True)
    real = Store.write_if_free
    tries = {"refused": 0, "given": 0}

    @contextmanager
    def every_other(self: Store) -> Iterator[Connection | None]:
        if (tries["refused"] + tries["given"]) % 3 != 2:  # busy twice, then free
            tries["refused"] += 1
            yield None
            return
        tries["given"] += 1
        with real(self) as conn:
            yield conn

    monkeypatch.setattr(Store, "write_if_free", every_other)
    monkeypatch.setattr(ingest_module, "BATCH_ROWS", 1)  # a try after every transaction set
    monkeypatch.setattr(ingest_module.time, "sleep", lambda _s: None)
    _ingest(busy)
    assert tries["refused"] > 0 and tries["given"] > 0
    assert _contents(busy) == expected


def test_rows_written_by_sqlite_numbering_name_their_parents(tmp_path: Path) -> None:
    """On SQLite the rows go in as prepared, their ids numbered by SQLite after the largest: with
    a store already holding rows (ids not from 1), every claim line, service line and adjustment
    still names the claim or claim payment it was read under."""
    store = open_store(f"sqlite:///{tmp_path}/s.db", create=True)
    folders = sorted(p for p in SAMPLE_EDI.iterdir() if p.is_dir())
    ingestor = Ingestor(store)
    for path, name in input_files(folders[: len(folders) // 2]):
        ingestor.ingest(path, name)
    for path, name in input_files(folders[len(folders) // 2 :]):
        ingestor.ingest(path, name)
    expected_lines, expected_services, expected_adjustments = set(), set(), set()
    for path, _ in input_files(folders):
        if path.suffix not in (".835", ".837"):
            continue
        records, _summary = parsers.parse_file(path)
        for r in records:
            if isinstance(r, Claim) and r.trusted:
                expected_lines |= {(r.patient_control_number, ln.number, ln.procedure_code) for ln in r.lines}
            elif isinstance(r, ClaimPayment) and r.trusted:
                expected_services |= {(r.patient_control_number, str(s.paid)) for s in r.services}
                expected_adjustments |= {(r.patient_control_number, a.reason, str(a.amount)) for a in r.adjustments}
                expected_adjustments |= {(r.patient_control_number, a.reason, str(a.amount)) for s in r.services for a in s.adjustments}
    with store.engine.connect() as conn:
        lines = set(
            conn.exec_driver_sql("SELECT c.patient_control_number, l.line_number, l.procedure_code FROM claim_lines l JOIN claims c ON c.id = l.claim_id")
        )
        services = set(conn.exec_driver_sql("SELECT p.patient_control_number, l.paid FROM payment_lines l JOIN claim_payments p ON p.id = l.claim_payment_id"))
        adjustments = set(
            conn.exec_driver_sql("SELECT p.patient_control_number, a.reason, a.amount FROM adjustments a JOIN claim_payments p ON p.id = a.claim_payment_id")
        )
        first_ids = conn.exec_driver_sql("SELECT MIN(id), MAX(id), COUNT(*) FROM claim_lines").one()
    assert lines == expected_lines and services == expected_services and adjustments == expected_adjustments
    assert expected_lines and expected_services and expected_adjustments
    assert first_ids[1] - first_ids[0] + 1 == first_ids[2]  # numbered without gaps


def test_the_log_is_checkpointed_every_wal_pages(tmp_path: Path) -> None:
    """Every connection of a store folds SQLite's write-ahead log into the database every
    ``WAL_PAGES`` pages, not SQLite's 1,000 (ingest rewrote the same index pages between two
    checkpoints, each time copied again)."""
    from edirecon.engine.config import Config
    from edirecon.engine.run import run
    from edirecon.engine.store.connection import WAL_PAGES

    assert WAL_PAGES == 20_000
    url = f"sqlite:///{tmp_path}/s.db"
    run([SAMPLE_EDI], url, tmp_path / "out", date(2026, 11, 27), Config(), workers=1)
    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WAL_PAGES
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        store.dispose()
