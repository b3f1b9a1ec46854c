"""`edirecon refund list` as the work queue: sorted by due day, with account, patient and payer
name, its filters and its three formats (docs/workflow-and-reports.md#the-work-queue-refund-list).

The queue is built from sample scenarios run on different days, so that the refunds fall due on
different days (each is due a number of days after the run that identified it):

- duplicate-payment, run 2026-10-01: the 155.50 duplicate of BLUE RIVER HEALTH PLAN (87726), pending;
- secondary-overpaid, run 2026-11-01: the 27.00 COB refund to STATE MEDICAID (77099), auto-approved;
- patient-copay-overpaid and plb-recoupment-settles-refund, run 2026-11-27: the 15.00 patient
  credit (held, below the hold threshold) and Medicare's 99.96 duplicate it took back (settled).

The refund ids are read from the runs' refund_requests.csv, never computed here.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, REPO, SAMPLE_EDI
from sqlalchemy import create_engine, insert
from typer.testing import CliRunner

from edirecon.cli import app
from edirecon.engine.store import schema as t
from edirecon.engine.workflow.views import LIST_COLUMNS

CONFIG = FIXTURES / "reports" / "config.toml"
AS_OF = "2026-11-27"


def cli(*args: Any) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


def run(db: str, out: Path, as_of: str, *folders: str) -> dict[str, str]:
    """`edirecon run` of sample scenarios: patient control number -> refund id."""
    with contextlib.chdir(REPO):
        result = cli("run", *(f"sample_edi/{f}" for f in folders), "--db", db, "--out", out, "--as-of", as_of, "--config", CONFIG, "--workers", "1")
    assert result.exit_code == 0, result.output
    with open(out / "refund_requests.csv", newline="", encoding="utf-8") as fh:
        return {row["patient_control_number"]: row["refund_id"] for row in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def queue(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    """The store of the work queue and its refund ids by name: dup, cob, patient, settled."""
    root = tmp_path_factory.mktemp("queue")
    db = f"sqlite:///{root / 'store.db'}"
    ids = run(db, root / "out1", "2026-10-01", "duplicate-payment")
    ids |= run(db, root / "out2", "2026-11-01", "secondary-overpaid")
    ids |= run(db, root / "out3", AS_OF, "patient-copay-overpaid", "plb-recoupment-settles-refund")
    return db, {"dup": ids["RFM2602001"], "cob": ids["RFM2605001"], "patient": ids["RFM2606001"], "settled": ids["RFM2604001"]}


def listing(db: str, *args: Any, as_of: str = AS_OF) -> Any:
    result = cli("refund", "list", "--db", db, "--as-of", as_of, "--config", CONFIG, *args)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return result


def listed(db: str, *args: Any, as_of: str = AS_OF) -> list[dict[str, Any]]:
    """The refunds `refund list --format json` gives, in its order."""
    return json.loads(listing(db, *args, "--format", "json", as_of=as_of).stdout)


def ids_of(db: str, *args: Any, as_of: str = AS_OF) -> list[str]:
    return [r["refund_id"] for r in listed(db, *args, as_of=as_of)]


# ------------------------------------------------------------------------------ sorting
def test_the_queue_is_sorted_by_due_day_then_refund_id(queue: tuple[str, dict[str, str]]) -> None:
    """The duplicate identified 2026-10-01 is due first, then the COB refund of 2026-11-01, then the
    two refunds of 2026-11-27 (same day: by refund id), whatever the order of the refund ids."""
    db, rf = queue
    rows = listed(db)
    assert [(r["refund_id"], r["due_by"]) for r in rows] == [
        (rf["dup"], "2026-11-30"),
        (rf["cob"], "2026-12-31"),
        *sorted([(rf["patient"], "2027-01-26"), (rf["settled"], "2027-01-26")]),
    ]
    assert [r["refund_id"] for r in rows] != sorted(rf.values())  # the order is not the ids' order


# ------------------------------------------------------------------------------ the three formats
def test_table_shows_account_patient_and_payer_name_in_120_columns(queue: tuple[str, dict[str, str]]) -> None:
    db, rf = queue
    lines = listing(db).stdout.splitlines()
    assert lines == [
        "refund_id            status    due_by      amount  account     patient          payee                   flags",
        f"{rf['dup']}  pending   2026-11-30  155.50  RFM2602001  GARCIA, MARIA    BLUE RIVER HEALTH PLAN",
        f"{rf['cob']}  approved  2026-12-31   27.00  RFM2605001  TAYLOR, DAVID    STATE MEDICAID",
        *sorted(
            [
                f"{rf['patient']}  held      2027-01-26   15.00  RFM2606001  LEE, KAREN       patient",
                f"{rf['settled']}  settled   2027-01-26   99.96  RFM2604001  JOHNSON, ROBERT  MEDICARE PART B",
            ]
        ),
        "4 refund(s)",
    ]
    assert max(map(len, lines)) <= 120


def test_table_flags_an_overdue_refund(queue: tuple[str, dict[str, str]]) -> None:
    """On 2026-12-15 the pending duplicate due 2026-11-30 is 15 days overdue (its flags say so)."""
    db, rf = queue
    lines = listing(db, as_of="2026-12-15").stdout.splitlines()
    assert f"{rf['dup']}  pending   2026-11-30  155.50  RFM2602001  GARCIA, MARIA    BLUE RIVER HEALTH PLAN  overdue 15d" in lines


def test_csv_has_every_column_and_the_same_rows(queue: tuple[str, dict[str, str]]) -> None:
    db, rf = queue
    text = listing(db, "--format", "csv").stdout
    assert text.splitlines()[0] == ",".join(LIST_COLUMNS)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["refund_id"] for r in rows] == ids_of(db)
    dup = rows[0]
    assert dup == {
        "refund_id": rf["dup"],
        "due_by": "2026-11-30",
        "days_overdue": "0",
        "workflow_status": "pending",
        "reason": "DUPLICATE_PAYMENT",
        "payee_type": "payer",
        "payer_id": "87726",
        "payer_name": "BLUE RIVER HEALTH PLAN",
        "patient_control_number": "RFM2602001",
        "patient_name": "GARCIA, MARIA",
        "amount": "155.50",
        "outstanding": "155.50",
        "flags": "",
        "assigned_to": "",
    }
    settled = next(r for r in rows if r["refund_id"] == rf["settled"])
    assert (settled["workflow_status"], settled["amount"], settled["outstanding"]) == ("settled", "99.96", "0.00")


def test_json_is_one_document_with_amounts_as_strings_and_iso_days(queue: tuple[str, dict[str, str]]) -> None:
    db, rf = queue
    rows = listed(db, as_of="2026-12-15")
    assert isinstance(rows, list) and all(list(r) == LIST_COLUMNS for r in rows)
    patient = next(r for r in rows if r["refund_id"] == rf["patient"])
    assert patient == {
        "refund_id": rf["patient"],
        "due_by": "2027-01-26",
        "days_overdue": 0,
        "workflow_status": "held",
        "reason": "PATIENT_OVERPAYMENT",
        "payee_type": "patient",
        "payer_id": "",
        "payer_name": "",
        "patient_control_number": "RFM2606001",
        "patient_name": "LEE, KAREN",
        "amount": "15.00",
        "outstanding": "15.00",
        "flags": "",
        "assigned_to": "",
    }
    assert (rows[0]["refund_id"], rows[0]["days_overdue"], rows[0]["flags"]) == (rf["dup"], 15, "overdue 15d")


def test_an_empty_queue_in_each_format(queue: tuple[str, dict[str, str]]) -> None:
    db, _rf = queue
    assert listing(db, "--payer", "00000").stdout.splitlines()[-1] == "0 refund(s)"
    assert listing(db, "--payer", "00000", "--format", "csv").stdout == ",".join(LIST_COLUMNS) + "\n"
    assert listed(db, "--payer", "00000") == []


# ------------------------------------------------------------------------------ filters
def test_overdue_takes_refunds_still_to_be_worked_past_their_due_day(queue: tuple[str, dict[str, str]]) -> None:
    db, rf = queue
    assert ids_of(db, "--overdue") == []
    assert ids_of(db, "--overdue", as_of="2026-12-15") == [rf["dup"]]
    # 2027-02-01: all are past due, but the settled one is not to be worked any more
    assert ids_of(db, "--overdue", as_of="2027-02-01") == [rf["dup"], rf["cob"], rf["patient"]]


def test_due_before_takes_refunds_due_before_that_day(queue: tuple[str, dict[str, str]]) -> None:
    db, rf = queue
    assert ids_of(db, "--due-before", "2026-11-30") == []
    assert ids_of(db, "--due-before", "2026-12-01") == [rf["dup"]]
    assert ids_of(db, "--due-before", "2027-01-26") == [rf["dup"], rf["cob"]]
    assert len(ids_of(db, "--due-before", "2027-01-27")) == 4


def test_reason_is_repeatable(queue: tuple[str, dict[str, str]]) -> None:
    db, rf = queue
    assert ids_of(db, "--reason", "DUPLICATE_PAYMENT") == [rf["dup"], rf["settled"]]
    assert ids_of(db, "--reason", "PATIENT_OVERPAYMENT", "--reason", "COB_OVERPAYMENT") == [rf["cob"], rf["patient"]]
    assert ids_of(db, "--reason", "PAYER_OVERPAYMENT") == []


def test_payer_takes_the_refunds_to_that_payer_id(queue: tuple[str, dict[str, str]]) -> None:
    db, rf = queue
    assert ids_of(db, "--payer", "87726") == [rf["dup"]]
    assert ids_of(db, "--payer", "12202") == [rf["settled"]]


def test_payee_type(queue: tuple[str, dict[str, str]]) -> None:
    db, rf = queue
    assert ids_of(db, "--payee-type", "patient") == [rf["patient"]]
    assert ids_of(db, "--payee-type", "payer") == [rf["dup"], rf["cob"], rf["settled"]]


def test_filters_combine(queue: tuple[str, dict[str, str]]) -> None:
    """Every filter given must hold: payer refunds for a duplicate that are overdue on 2027-02-01."""
    db, rf = queue
    assert ids_of(db, "--payee-type", "payer", "--reason", "DUPLICATE_PAYMENT", "--overdue", as_of="2027-02-01") == [rf["dup"]]
    assert ids_of(db, "--status", "held", "--status", "approved", "--due-before", "2027-01-01") == [rf["cob"]]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--format", "xml"], "edirecon: --format 'xml' is not one of table, csv, json\n"),
        (
            ["--reason", "DUPLICATE"],
            "edirecon: --reason 'DUPLICATE' is not one of DUPLICATE_PAYMENT, PAYER_OVERPAYMENT, COB_OVERPAYMENT, PATIENT_OVERPAYMENT\n",
        ),
        (["--payee-type", "provider"], "edirecon: --payee-type 'provider' is not one of payer, patient\n"),
        (["--due-before", "2026-02-30"], "edirecon: --due-before '2026-02-30' is not a date (YYYY-MM-DD)\n"),
        (["--due-before", "soon"], "edirecon: --due-before 'soon' is not a date (YYYY-MM-DD)\n"),
    ],
)
def test_a_bad_filter_is_one_line_and_exit_2_before_the_store_is_opened(tmp_path: Path, args: list[str], message: str) -> None:
    store = tmp_path / "none.db"
    result = cli("refund", "list", "--db", f"sqlite:///{store}", "--as-of", AS_OF, *args)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", message)
    assert not store.exists()


# ------------------------------------------------------------------------------ hostile names
HOSTILE_PATIENT = '=HYPERLINK("//evil.example/x","<b>GARCIA</b>")'
HOSTILE_PAYER = "@SUM(1+1)<script>alert(1)</script>"


def test_hostile_names_are_neutralised_in_csv_and_kept_raw_in_json(tmp_path: Path) -> None:
    """The duplicate-payment scenario with a formula and markup as the patient's last name and as
    the payer's name (in the 837 and the 835s): the CSV cells start with ', the JSON has the
    names as they came, the table shows them cut to its columns."""
    folder = tmp_path / "hostile"
    folder.mkdir()
    for name in ("claims.837", "remit-1.835", "remit-2.835"):
        text = (SAMPLE_EDI / "duplicate-payment" / name).read_text(encoding="utf-8")
        assert "GARCIA" in text and "BLUE RIVER HEALTH PLAN" in text
        (folder / name).write_text(text.replace("GARCIA", HOSTILE_PATIENT).replace("BLUE RIVER HEALTH PLAN", HOSTILE_PAYER), encoding="utf-8")
    db = f"sqlite:///{tmp_path / 'store.db'}"
    result = cli("run", folder, "--db", db, "--out", tmp_path / "out", "--as-of", AS_OF, "--workers", "1")
    assert result.exit_code == 0, result.output

    (row,) = listed(db)
    assert (row["patient_name"], row["payer_name"]) == (f"{HOSTILE_PATIENT}, MARIA", HOSTILE_PAYER)

    (cells,) = list(csv.DictReader(io.StringIO(listing(db, "--format", "csv").stdout)))
    assert (cells["patient_name"], cells["payer_name"]) == (f"'{HOSTILE_PATIENT}, MARIA", f"'{HOSTILE_PAYER}")
    assert (cells["amount"], cells["due_by"]) == ("155.50", "2027-01-26")  # amounts and days are no text: as they are

    table = listing(db).stdout.splitlines()
    assert max(map(len, table)) <= 120
    assert table[1].startswith(f"{row['refund_id']}  pending  2027-01-26  155.50  RFM2602001  {HOSTILE_PATIENT[:10]}")


# ------------------------------------------------------------------------------ a refund the engine no longer identifies
def test_a_refund_the_engine_no_longer_identifies_keeps_its_payer_name_and_comes_last(tmp_path: Path) -> None:
    """A pending refund the workflow met in an earlier run (its row written here as that run left
    it) that the engine no longer identifies is withdrawn by the sync: it has no due day (last),
    no account or patient, and the name of its payer from the payments of the store."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    dup = run(db, tmp_path / "out", AS_OF, "duplicate-payment")["RFM2602001"]
    engine = create_engine(db)
    with engine.begin() as conn:
        conn.execute(
            insert(t.refund_workflow).values(
                refund_id="RF-0000000000000000",
                status="pending",
                reason="PAYER_OVERPAYMENT",
                payee_type="payer",
                payer_id="87726",
                amount=Decimal("12.00"),
                method="",
                reference="",
                acknowledged_by="",
                double_refund_traces="",
                updated_at=datetime(2026, 11, 1),
            )
        )
        # as a detection leaves the records when it no longer keeps a refund the workflow follows
        conn.execute(t.decision_records.update().values(kept_since_sync=True))
    engine.dispose()
    rows = listed(db)
    assert [r["refund_id"] for r in rows] == [dup, "RF-0000000000000000"]
    gone = rows[1]
    assert (gone["workflow_status"], gone["due_by"], gone["payer_name"], gone["patient_control_number"], gone["patient_name"]) == (
        "withdrawn",
        None,
        "BLUE RIVER HEALTH PLAN",
        "",
        "",
    )
    assert (gone["amount"], gone["flags"]) == ("12.00", "not identified by the engine")
    line = listing(db).stdout.splitlines()[2]
    assert line.startswith("RF-0000000000000000  withdrawn" + " " * 15 + "12.00  ")  # no due day
    assert "  BLUE RIVER HEAL…  not identified by the …" in line and len(line) == 120  # names and flags cut to 120 columns


def test_assigned_to_filters_and_is_a_column(tmp_path: Path) -> None:
    """`--assigned-to USER` keeps the refunds `refund assign` gave to USER, `--assigned-to ""` those
    assigned to nobody; CSV and JSON carry the assignee."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    ids = run(db, tmp_path / "out", AS_OF, "secondary-overpaid", "patient-copay-overpaid")
    cob, patient = ids["RFM2605001"], ids["RFM2606001"]
    assigned = cli("refund", "assign", cob, "--to", "alice", "--db", db, "--as-of", AS_OF, "--config", CONFIG)
    assert assigned.exit_code == 0, assigned.output
    assert ids_of(db, "--assigned-to", "alice") == [cob]
    assert ids_of(db, "--assigned-to", "") == [patient]
    assert ids_of(db, "--assigned-to", "bob") == []
    assert {r["refund_id"]: r["assigned_to"] for r in listed(db)} == {cob: "alice", patient: ""}
    rows = list(csv.DictReader(io.StringIO(listing(db, "--format", "csv").stdout)))
    assert {r["refund_id"]: r["assigned_to"] for r in rows} == {cob: "alice", patient: ""}
