"""`report` on a large store decides it in shards (``shards.decide_for_report``) and writes exactly
what deciding in one process writes.

The shards are forced small (a few claim numbers each, so that every rule's keys cross shard
boundaries somewhere), on the store of tests/integration/test_reports.py (the sample scenarios met
over 2026, refunds approved, one sent and acknowledged by the payer's PLB, letters, the CMS-838)
and on every scenario folder together in one store with refunds approved, held and sent.  Each
report is made on its own copy of the same store: one in this process, one in shards; every file
byte for byte (a PDF by its text, and the times of audit events normalised, as the goldens
compare them), and the workflow's states after the report's sync, must be the same.
"""

from __future__ import annotations

import csv
import os
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog
from conftest import FIXTURES, REPO, SAMPLE_EDI
from goldens import normalise_outputs, read_tree
from sqlalchemy import text
from test_shards import note_the_plans
from typer.testing import CliRunner

from edirecon.cli import app
from edirecon.engine.config import Config
from edirecon.engine.reports import report as report_module
from edirecon.engine.reports.cms838 import Quarter
from edirecon.engine.reports.report import report
from edirecon.engine.run import ingest_files, input_files
from edirecon.engine.scale import processes, shards
from edirecon.engine.store import facts as facts_module
from edirecon.engine.store import records as records_module
from edirecon.engine.store.connection import Store
from edirecon.engine.workflow.refunds import FULL_ENV
from edirecon.money import ZERO

CONFIG = FIXTURES / "reports" / "config.toml"
S = SAMPLE_EDI
PLB = S / "plb-recoupment-settles-refund"
FOLDERS = [SAMPLE_EDI, *sorted(p for p in (FIXTURES / "engine").iterdir() if p.is_dir())]


def cli(*args: Any) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    structlog.reset_defaults()  # the command logged to the runner's stderr, closed now: the report's warnings go to the real one
    assert result.exit_code == 0, result.output
    return str(result.output)


def mark_sent(url: Any, refund_id: str, as_of: str, reference: str, on: str) -> str:
    """``refund mark-sent`` by bob, with the check's reference and date."""
    return cli("refund", "mark-sent", refund_id, "--db", url, "--as-of", as_of, "--config", CONFIG, "--user", "bob", "--reference", reference, "--date", on)


def files(folder: Path) -> dict[str, bytes]:
    """Every file of a report, a PDF as its text and the times of the audit events normalised, as
    the goldens compare them (tests/goldens.py: a PDF's bytes carry the clock and a random id)."""
    return normalise_outputs(read_tree(folder))


def states(url: str) -> list[tuple[Any, ...]]:
    """The workflow's states and the audit trail without the clock (the time an event was written)."""
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            got = [
                tuple(r)
                for r in conn.execute(
                    text(
                        "SELECT refund_id, status, amount, sent_amount, acknowledged_by, double_refund_amount, double_refund_traces, needs_sync FROM refund_workflow ORDER BY refund_id"
                    )
                )
            ]
            got += [
                tuple(r)
                for r in conn.execute(text("SELECT refund_id, user_name, action, from_status, to_status, note FROM refund_events ORDER BY refund_id, id"))
            ]
            got += [tuple(r) for r in conn.execute(text("SELECT * FROM detections ORDER BY refund_id"))]
    finally:
        store.dispose()
    return got


def one_process_and_shards(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, as_of: date, quarter: str, per_shard: int = 3, tiny_batches: bool = False
) -> tuple[Path, Path]:
    """The report of a copy of the store ``db`` in one process, of another copy in shards of
    ``per_shard`` claim numbers (both deciding the whole store: ``EDIRECON_WORKFLOW_FULL``), and
    of a third from the records ``run`` made (``reports.recorded``, the default when they are
    current): the folders of the first two, the third's checked equal to the first's (and the
    stores compared after)."""
    config = Config.load(CONFIG)
    one_db, sharded_db, recorded_db = tmp_path / "one.db", tmp_path / "sharded.db", tmp_path / "recorded.db"
    for copy in (one_db, sharded_db, recorded_db):
        shutil.copyfile(db, copy)
    called = spy(monkeypatch)
    with monkeypatch.context() as full:
        full.setenv(FULL_ENV, "1")
        report(f"sqlite:///{one_db}", tmp_path / "one", as_of, config, Quarter.parse(quarter), workers=1)
        assert called == ["decided"]
        monkeypatch.setattr(shards, "SHARD_CLAIMS", per_shard)
        report(f"sqlite:///{sharded_db}", tmp_path / "sharded", as_of, config, Quarter.parse(quarter), workers=2)
        assert called[1:] == ["decided", "shards"], "the report was not made in shards"
    del called[:]
    if tiny_batches:  # the records' reads as on a large store: claim numbers in a temporary table, one pass for the unmatched
        monkeypatch.setattr(facts_module, "_BOUND", 0)
        monkeypatch.setattr(records_module, "BATCH", 0)
    report(f"sqlite:///{recorded_db}", tmp_path / "recorded", as_of, config, Quarter.parse(quarter), workers=2)
    assert called == ["records"], "the report was not made from the records"
    assert states(f"sqlite:///{one_db}") == states(f"sqlite:///{sharded_db}") == states(f"sqlite:///{recorded_db}")
    assert files(tmp_path / "recorded") == files(tmp_path / "one")
    return tmp_path / "one", tmp_path / "sharded"


def spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which way each report took, in order: "records" (read from the records, the refunds' closure
    decided), "decided" (the records not used: stale, or ``EDIRECON_WORKFLOW_FULL``), then
    "shards" when decided in shards."""
    called: list[str] = []
    decide, recorded = shards.decide_for_report, report_module.from_records

    def from_records(*a: Any) -> Any:
        got = recorded(*a)
        called.append("decided" if got is None else "records")
        return got

    monkeypatch.setattr(shards, "decide_for_report", lambda *a: called.append("shards") or decide(*a))
    monkeypatch.setattr(report_module, "from_records", from_records)
    return called


def test_the_reports_store_in_shards_equals_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample scenarios met over 2026 (tests/integration/test_reports.py): two refunds approved,
    one sent and then acknowledged by Medicare's PLB; the reports of 2026Q4 with letters."""
    db = tmp_path / "edirecon.db"
    url = f"sqlite:///{db}"
    monkeypatch.chdir(REPO)  # inputs named relative to the repository, as the positions in the reports are

    def run(as_of: str, *inputs: Path) -> None:
        cli("run", *(p.relative_to(REPO) for p in inputs), "--db", url, "--out", tmp_path / "out", "--as-of", as_of, "--config", CONFIG, "--workers", "1")

    run("2026-04-10", S / "clean-payment", S / "duplicate-payment")
    run("2026-07-20", S / "institutional-and-dental", S / "reversal-with-correction", S / "secondary-overpaid")
    run("2026-09-15", S / "patient-copay-overpaid", S / "unmatched-payment", S / "broken-file")
    run("2026-10-20", PLB / "claims.837", PLB / "remit-1.835", PLB / "remit-2.835")
    with open(tmp_path / "out" / "refund_requests.csv", newline="", encoding="utf-8") as fh:
        ids = {r["patient_control_number"]: r["refund_id"] for r in csv.DictReader(fh)}
    for pcn in ("RFM2602001", "RFM2604001"):
        cli("refund", "approve", ids[pcn], "--db", url, "--as-of", "2026-10-21", "--config", CONFIG, "--user", "alice")
    mark_sent(url, ids["RFM2604001"], "2026-11-02", reference="5001", on="2026-11-02")
    run("2026-11-27", PLB / "remit-3.835")
    one, sharded = one_process_and_shards(db, tmp_path, monkeypatch, date(2026, 11, 27), "2026Q4", tiny_batches=True)
    assert files(one) == files(sharded)
    made = files(one)
    assert any(name.startswith("packets/") and name.endswith(".pdf.txt") for name in made), "no letters were written"
    assert made["worklist.csv"].count(b"\n") > 1


def test_every_scenario_together_in_shards_equals_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every scenario folder in one store (their claim numbers meet across folders), refunds
    approved, held and sent (payer and patient), reported in shards of three claim numbers and of
    one: byte-identical reports and workflow."""
    db = tmp_path / "edirecon.db"
    url = f"sqlite:///{db}"
    cli("run", *FOLDERS, "--db", url, "--out", tmp_path / "out", "--as-of", "2026-11-27", "--config", CONFIG, "--workers", "1")
    pending = cli("refund", "list", "--db", url, "--as-of", "2026-11-27", "--config", CONFIG, "--status", "pending", "--format", "csv").splitlines()[1:]
    ids = [line.split(",")[0] for line in pending]
    assert len(ids) >= 4, ids
    for refund_id in ids[:3]:
        cli("refund", "approve", refund_id, "--db", url, "--as-of", "2026-11-27", "--config", CONFIG, "--user", "alice")
    cli("refund", "hold", ids[3], "--db", url, "--as-of", "2026-11-27", "--config", CONFIG, "--user", "alice", "--note", "asked the payer")
    for refund_id in ids[:2]:
        mark_sent(url, refund_id, "2026-11-27", reference="77" + refund_id[-4:], on="2026-06-01")
    for per_shard in (3, 1):
        folder = tmp_path / f"per-{per_shard}"
        folder.mkdir()
        one, sharded = one_process_and_shards(db, folder, monkeypatch, date(2026, 11, 27), "2026Q4", per_shard, tiny_batches=per_shard == 1)
        assert files(one) == files(sharded)
        assert os.path.getsize(one / "worklist.csv") > 200


def test_two_workers_report_a_store_below_the_shard_size_in_shards_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With more than one worker, ``report`` decides a store of ``PARALLEL_CLAIMS`` claims or more
    (here every scenario, the threshold lowered to their count) in shards, one per worker, as
    ``run`` does (a 20,000-claim pair's stale store: 2.15-2.27 -> 1.60-1.67 s); one claim fewer,
    or one worker, and it is decided in this process.  The same files either way."""
    db = tmp_path / "edirecon.db"
    url = f"sqlite:///{db}"
    cli("run", *FOLDERS, "--db", url, "--out", tmp_path / "out", "--as-of", "2026-11-27", "--config", CONFIG, "--workers", "1")
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            claims = conn.execute(text("SELECT count(*) FROM claims")).scalar_one()
    finally:
        store.dispose()
    assert 0 < claims <= shards.SHARD_CLAIMS
    monkeypatch.setattr(processes, "FORKS", True)  # as on Linux, on any platform
    note_the_plans(monkeypatch, tmp_path / "planned")
    called = spy(monkeypatch)
    config, day, quarter = Config.load(CONFIG), date(2026, 11, 27), Quarter.parse("2026Q4")
    monkeypatch.setenv(FULL_ENV, "1")  # the records not read: the store decided, as when they are stale
    for name, threshold, workers in (("below", claims + 1, 2), ("sharded", claims, 2), ("one", claims, 1)):
        shutil.copyfile(db, tmp_path / f"{name}.db")
        monkeypatch.setattr(shards, "PARALLEL_CLAIMS", threshold)
        report(f"sqlite:///{tmp_path / name}.db", tmp_path / name, day, config, quarter, workers=workers)
    assert called == ["decided", "decided", "shards", "decided"], "below the threshold or with one worker: this process; else in shards"
    assert (tmp_path / "planned").read_text() == "2 2", "one shard per worker"
    assert files(tmp_path / "sharded") == files(tmp_path / "one") == files(tmp_path / "below")
    assert states(f"sqlite:///{tmp_path / 'sharded'}.db") == states(f"sqlite:///{tmp_path / 'one'}.db")


@pytest.mark.slow
@pytest.mark.postgres
def test_report_in_shards_on_postgresql_equals_one_process(tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same path on PostgreSQL (one store: the report in one process, then again in shards of
    three claim numbers, whose sync then finds nothing new): the same files, and those of one
    process on SQLite."""
    config = Config.load(CONFIG)
    day, quarter = date(2026, 11, 27), Quarter.parse("2026Q4")
    for url in (pg_url, f"sqlite:///{tmp_path / 'edirecon.db'}"):
        cli("run", *FOLDERS, "--db", url, "--out", tmp_path / "out", "--as-of", "2026-11-27", "--config", CONFIG, "--workers", "1")
        pending = cli("refund", "list", "--db", url, "--as-of", "2026-11-27", "--config", CONFIG, "--status", "pending", "--format", "csv").splitlines()[1:]
        ids = [line.split(",")[0] for line in pending]
        cli("refund", "approve", *ids[:2], "--db", url, "--as-of", "2026-11-27", "--config", CONFIG, "--user", "alice")
        mark_sent(url, ids[0], "2026-11-27", reference="9001", on="2026-06-01")
    called = spy(monkeypatch)
    report(pg_url, tmp_path / "pg-recorded", day, config, quarter, workers=2)  # the records run left, refunds acted on since
    assert called == ["records"]
    with monkeypatch.context() as full:
        full.setenv(FULL_ENV, "1")
        report(pg_url, tmp_path / "pg-one", day, config, quarter, workers=1)
        report(f"sqlite:///{tmp_path / 'edirecon.db'}", tmp_path / "sqlite-one", day, config, quarter, workers=1)
        monkeypatch.setattr(shards, "SHARD_CLAIMS", 3)
        report(pg_url, tmp_path / "pg-sharded", day, config, quarter, workers=2)
    assert called == ["records", "decided", "decided", "decided", "shards"]
    monkeypatch.setattr(facts_module, "_BOUND", 0)  # the claim numbers in a temporary table, as on a large store
    report(pg_url, tmp_path / "pg-recorded-again", day, config, quarter, workers=2)
    assert called[-1] == "records"
    assert files(tmp_path / "pg-sharded") == files(tmp_path / "pg-one") == files(tmp_path / "sqlite-one") == files(tmp_path / "pg-recorded")
    assert files(tmp_path / "pg-recorded-again") == files(tmp_path / "pg-one")


def test_stale_records_are_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Facts ingested after `run` recorded its decisions (no run since), and a kept refund no
    longer as the engine decides it: the report decides the store instead of reading the records
    (``reports.recorded``), and writes what deciding writes; once `run` has recorded the new facts,
    the report reads the records again, and still writes the same."""
    config = Config.load(CONFIG)
    day, quarter = date(2026, 11, 27), Quarter.parse("2026Q4")
    db = tmp_path / "edirecon.db"
    url = f"sqlite:///{db}"
    monkeypatch.chdir(REPO)
    cli("run", S.relative_to(REPO), "--db", url, "--out", tmp_path / "out", "--as-of", "2026-11-27", "--config", CONFIG, "--workers", "1")
    store = Store(url)
    try:
        ingest_files(store, input_files([(FIXTURES / "engine").relative_to(REPO)]), workers=1)
    finally:
        store.dispose()
    for copy in ("stale.db", "full.db"):
        shutil.copyfile(db, tmp_path / copy)
    called = spy(monkeypatch)
    report(f"sqlite:///{tmp_path / 'stale.db'}", tmp_path / "stale", day, config, quarter, workers=1)
    with monkeypatch.context() as full:
        full.setenv(FULL_ENV, "1")
        report(f"sqlite:///{tmp_path / 'full.db'}", tmp_path / "full", day, config, quarter, workers=1)
    assert called == ["decided", "decided"]
    assert files(tmp_path / "stale") == files(tmp_path / "full")
    assert states(f"sqlite:///{tmp_path / 'stale.db'}") == states(f"sqlite:///{tmp_path / 'full.db'}")

    # the new facts recorded by a run: the records are read again, and give the same files
    cli("run", S.relative_to(REPO), "--db", url, "--out", tmp_path / "out", "--as-of", "2026-11-27", "--config", CONFIG, "--workers", "1")
    shutil.copyfile(db, tmp_path / "tampered.db")
    report(url, tmp_path / "recorded", day, config, quarter, workers=1)
    assert called[-1] == "records"
    assert files(tmp_path / "recorded") == files(tmp_path / "full")

    # a kept refund whose record no longer says what the engine decides (an amount changed by
    # hand): the records are not trusted, the store is decided (and recorded again)
    tampered = Store(f"sqlite:///{tmp_path / 'tampered.db'}")
    try:
        with tampered.write() as conn:
            first = conn.execute(text("SELECT refund_id FROM detections ORDER BY refund_id LIMIT 1")).scalar_one()
            conn.execute(text("UPDATE detections SET amount = '9999.99' WHERE refund_id = :r"), {"r": first})
    finally:
        tampered.dispose()
    report(f"sqlite:///{tmp_path / 'tampered.db'}", tmp_path / "tampered", day, config, quarter, workers=1)
    assert called[-1] == "decided"
    assert files(tmp_path / "tampered") == files(tmp_path / "full")


def test_a_report_of_a_later_day_reads_the_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`run` on one day, `report` weeks later (aging, overdue refunds, days in credit all move):
    the recorded recoupments and exceptions do not depend on the day, so the report reads the
    records, and writes what deciding everything on that day writes."""
    config = Config.load(CONFIG)
    day, quarter = date(2027, 3, 1), Quarter.parse("2026Q4")
    db = tmp_path / "edirecon.db"
    cli("run", *FOLDERS, "--db", f"sqlite:///{db}", "--out", tmp_path / "out", "--as-of", "2026-11-27", "--config", CONFIG, "--workers", "1")
    shutil.copyfile(db, tmp_path / "full.db")
    called = spy(monkeypatch)
    report(f"sqlite:///{db}", tmp_path / "recorded", day, config, quarter, workers=1)
    with monkeypatch.context() as full:
        full.setenv(FULL_ENV, "1")
        report(f"sqlite:///{tmp_path / 'full.db'}", tmp_path / "full", day, config, quarter, workers=1)
    assert called == ["records", "decided"]
    assert files(tmp_path / "recorded") == files(tmp_path / "full")
    assert states(f"sqlite:///{db}") == states(f"sqlite:///{tmp_path / 'full.db'}")
    assert b"yes" in files(tmp_path / "full")["worklist.csv"], "no refund is overdue on the later day"


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_records_payment_sums_and_claim_groups_equal_counting_every_row(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """What ``report`` reads of the store beside the records (``records.trace_paid``: summed by the
    server on PostgreSQL; ``records.claim_groups``: one grouping pass) equals counting the rows one
    by one in Python: every scenario together, with claim numbers billed more than once, and a
    remittance whose claim payments have no CLP04 (its sum still an amount of two places)."""
    url = request.getfixturevalue("pg_url") if kind == "postgresql" else f"sqlite:///{tmp_path / 'edirecon.db'}"
    cli("run", *FOLDERS, "--db", url, "--out", tmp_path / "out", "--as-of", "2026-11-27", "--config", CONFIG, "--workers", "1")
    store = Store(url)
    try:
        with store.engine.begin() as conn:
            # a remittance whose claim payments have no amount (CLP04 missing)
            rid = conn.execute(text("SELECT MIN(remittance_id) FROM claim_payments")).scalar_one()
            conn.execute(text("UPDATE claim_payments SET paid = NULL WHERE remittance_id = :r"), {"r": rid})
        with store.engine.connect() as conn:
            groups: dict[tuple[Any, Any], int] = {}
            for npi, pcn in conn.execute(text("SELECT billing_npi, patient_control_number FROM claims")):
                groups[(npi, pcn)] = groups.get((npi, pcn), 0) + 1
            single, more = records_module.claim_groups(conn)
            assert any(n > 1 for n in groups.values()), "no claim number billed more than once: the test would prove little"
            assert (single, sorted(more)) == (sum(1 for n in groups.values() if n == 1), sorted(k for k, n in groups.items() if n > 1))
            trace = {r: (p, n) for r, p, n in conn.execute(text("SELECT id, payer_id, trace_number FROM remittances"))}
            expected: dict[tuple[str, str], Decimal] = {}
            for remittance, paid in conn.execute(text("SELECT remittance_id, paid FROM claim_payments")):
                expected[trace[remittance]] = expected.get(trace[remittance], ZERO) + (ZERO if paid is None else Decimal(str(paid)))
            got = records_module.trace_paid(conn)
            assert got == expected and [str(v) for v in got.values()] == [str(expected[k]) for k in got]
            if list(trace.values()).count(trace[rid]) == 1:
                assert str(got[trace[rid]]) == "0.00"
    finally:
        store.dispose()
