"""The refund workflow through the CLI (`edirecon refund ...`), on SQLite and PostgreSQL.

Figures come from the sample READMEs: the Medicare duplicate of RFM2604001 is 99.96, paid again
2026-10-16, taken back by `PLB*...*WO:22627500456700*99.96` in remit-3 (trace 0000902377,
2026-11-20); Medicare refunds are due 60 days after they are identified.  The refund ids are read
from the run's refund_requests.csv, never computed here.
"""

from __future__ import annotations

import csv
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog
from conftest import FIXTURES, SAMPLE_EDI
from sqlalchemy import create_engine, select
from structlog.testing import capture_logs
from typer.testing import CliRunner

from edirecon.cli import app
from edirecon.engine.config import Config
from edirecon.engine.store import schema as t
from edirecon.errors import NotAllowed, UsageError

PLB = SAMPLE_EDI / "plb-recoupment-settles-refund"
CONFIG = FIXTURES / "reports" / "config.toml"
ACKNOWLEDGED = FIXTURES / "reports" / "acknowledged" / "remit-3-acknowledged.835"
CHECK_BOOKED = FIXTURES / "engine" / "refund-check-acknowledged-by-plb-72"
BOOKED_AS_REVERSAL = FIXTURES / "engine" / "refund-check-booked-as-claim-reversal"
TAKEN_BACK_TOO = FIXTURES / "reports" / "taken-back-after-acknowledgment"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.slow])])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store: SQLite in tmp_path, or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'edirecon.db'}"
    return str(request.getfixturevalue("pg_url"))


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


def run(db: str, out: Path, as_of: str, *inputs: Path, config: Path | None = CONFIG) -> list[dict[str, str]]:
    """`edirecon run`, returning its refund_requests.csv rows."""
    extra = ["--config", str(config)] if config else []
    result = cli("run", *inputs, "--db", db, "--out", out, "--as-of", as_of, "--workers", "1", *extra)
    assert result.exit_code == 0, result.output
    with open(out / "refund_requests.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def refund_id(rows: list[dict[str, str]], pcn: str) -> str:
    (row,) = [r for r in rows if r["patient_control_number"] == pcn]
    return row["refund_id"]


def refund(db: str, *args: str, as_of: str = "2026-11-27") -> Any:
    return cli("refund", *args, "--db", db, "--as-of", as_of, "--config", CONFIG)


def trail(db: str, rid: str) -> list[tuple[str, str, str, str]]:
    engine = create_engine(db.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return [
                (r.user_name, r.action, r.from_status, r.to_status)
                for r in conn.execute(select(t.refund_events).where(t.refund_events.c.refund_id == rid).order_by(t.refund_events.c.id))
            ]
    finally:
        engine.dispose()


def test_double_refund_is_caught_and_approval_is_audited(db: str, tmp_path: Path) -> None:
    """Approve and send the Medicare duplicate; Medicare then also takes it back (PLB WO): a
    double refund of 99.96 to recover, and every step is in the audit trail."""
    rows = run(db, tmp_path / "out", "2026-10-20", PLB / "claims.837", PLB / "remit-1.835", PLB / "remit-2.835")
    rid = refund_id(rows, "RFM2604001")
    listed = refund(db, "list", as_of="2026-10-20")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines() == [
        "refund_id            status   due_by      amount  account     patient          payee            flags",
        f"{rid}  pending  2026-12-19   99.96  RFM2604001  JOHNSON, ROBERT  MEDICARE PART B",
        "1 refund(s)",
    ]
    approved = refund(db, "approve", rid, "--user", "alice", "--note", "duplicate confirmed with the EOBs", as_of="2026-10-21")
    assert (approved.exit_code, approved.stdout) == (0, f"{rid}: approve by alice; now approved\n")
    sent = refund(db, "mark-sent", rid, "--user", "bob", "--method", "check", "--reference", "5001", "--date", "2026-11-02", as_of="2026-11-02")
    assert (sent.exit_code, sent.stdout) == (0, f"{rid}: mark-sent by bob; now sent\n")
    run(db, tmp_path / "out", "2026-11-27", PLB / "remit-3.835")
    listed = refund(db, "list", "--status", "double_refund")
    assert listed.stdout.splitlines()[1:] == [
        f"{rid}  double_refund  2026-12-19   99.96  RFM2604001  JOHNSON, ROBERT  MEDICARE PART B  recover 99.96",
        "1 refund(s)",
    ]
    shown = refund(db, "show", rid)
    assert shown.exit_code == 0, shown.output
    assert "  sent              check 5001 of 99.96 on 2026-11-02" in shown.stdout
    assert "  double refund     99.96 to recover: PLB_WO trace 0000902377 of 2026-11-20" in shown.stdout
    assert "alice       approve          pending -> approved  duplicate confirmed with the EOBs" in shown.stdout
    assert trail(db, rid) == [
        ("edirecon", "identified", "", "pending"),
        ("alice", "approve", "pending", "approved"),
        ("bob", "mark-sent", "approved", "sent"),
        ("edirecon", "double_refund", "sent", "double_refund"),
    ]
    recovered = refund(db, "mark-recovered", rid, "--user", "bob", "--reference", "MEDICARE CHK 88120", "--date", "2026-12-10")
    assert recovered.exit_code == 0, recovered.output
    assert "  recovered         99.96 on 2026-12-10" in refund(db, "show", rid).stdout
    assert trail(db, rid)[-1] == ("bob", "mark-recovered", "double_refund", "recovered")


def test_payer_acknowledgment_by_plb_72_is_matched(db: str, tmp_path: Path) -> None:
    """A check sent for the duplicate, then Medicare's 835 with `WO:22627500456700*99.96` offset by
    `72:5001*-99.96` (the check's number): acknowledged, and not a double refund."""
    rid = refund_id(run(db, tmp_path / "out", "2026-10-20", PLB / "claims.837", PLB / "remit-1.835", PLB / "remit-2.835"), "RFM2604001")
    assert refund(db, "approve", rid, "--user", "alice", as_of="2026-10-21").exit_code == 0
    assert refund(db, "mark-sent", rid, "--user", "bob", "--reference", "5001", "--date", "2026-11-02", "--amount", "99.96").exit_code == 0
    run(db, tmp_path / "out", "2026-11-27", ACKNOWLEDGED)
    shown = refund(db, "show", rid).stdout
    assert "  status            acknowledged" in shown
    assert "  acknowledged      99.96 on 2026-11-24 (PLB 12202|0000902399|34|2)" in shown
    assert "double refund" not in shown
    assert [e[1:] for e in trail(db, rid)][-1] == ("acknowledged", "sent", "acknowledged")
    assert "0 refund(s)" in refund(db, "list", "--status", "double_refund").output


def table(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_refund_check_booked_by_an_offset_pair_is_acknowledged_in_every_output(db: str, tmp_path: Path) -> None:
    """Check 5001 sent for the 155.50 duplicate, then the payer's 835 books it (`72:5001*-155.50`
    offsetting `WO:BRH2607080733*155.50`): acknowledged by the workflow, the run's files and the
    report alike; no recoupment, no settlement, no double refund anywhere."""
    first = [CHECK_BOOKED / n for n in ("claims-1.837", "claims-2.837", "remit-1.835", "remit-2.835")]
    rows = run(db, tmp_path / "out", "2026-10-15", *first)
    rid = refund_id(rows, "RFM2727001")
    assert [(r["refund_id"], r["amount"], r["status"]) for r in rows] == [(rid, "155.50", "open")]
    assert refund(db, "approve", rid, "--user", "alice", as_of="2026-10-16").exit_code == 0
    sent = refund(db, "mark-sent", rid, "--user", "bob", "--method", "check", "--reference", "5001", "--date", "2026-10-20", as_of="2026-10-20")
    assert (sent.exit_code, sent.stdout) == (0, f"{rid}: mark-sent by bob; now sent\n")

    rows = run(db, tmp_path / "out", "2026-11-27", CHECK_BOOKED / "remit-3.835")
    assert [(r["refund_id"], r["amount"], r["status"]) for r in rows] == [(rid, "155.50", "acknowledged")]
    assert table(tmp_path / "out" / "recoupments.csv") == []
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert (summary["recoupments"], summary["refunds_open_amount"]) == ({"count": 0, "amount": "0.00"}, "0.00")

    shown = refund(db, "show", rid).stdout
    assert "  status            acknowledged\n  engine status     acknowledged\n" in shown
    assert "  amount            155.50 (outstanding 0.00)" in shown
    assert "  acknowledged      155.50 on 2026-11-06 (PLB 87726|0009272703|26|1)" in shown
    assert "double refund" not in shown and "recouped" not in shown
    listed = refund(db, "list").stdout.splitlines()
    assert listed[1:] == [f"{rid}  acknowledged  2026-12-14  155.50  RFM2727001  NASH, EVELYN  BLUE RIVER HEALTH PLAN", "1 refund(s)"]
    assert [e[1:] for e in trail(db, rid)] == [
        ("identified", "", "pending"),
        ("approve", "pending", "approved"),
        ("mark-sent", "approved", "sent"),
        ("acknowledged", "sent", "acknowledged"),
    ]

    made = cli("report", "--db", db, "--out", tmp_path / "report", "--as-of", "2026-11-27", "--config", CONFIG)
    assert made.exit_code == 0, made.output
    assert table(tmp_path / "report" / "worklist.csv") == [] and table(tmp_path / "report" / "followups.csv") == []
    assert [(m["month"], m["provider_adjustments"], m["recouped"]) for m in table(tmp_path / "report" / "audit_payer_months.csv")] == [
        ("2026-06", "0.00", "0.00"),
        ("2026-07", "0.00", "0.00"),
        ("2026-11", "0.00", "0.00"),
    ]
    dashboard = (tmp_path / "report" / "dashboard.html").read_text(encoding="utf-8")
    assert "1 refunds found, 0 recoupments" in dashboard and "PLB_WO" not in dashboard


def test_take_back_after_the_check_was_booked_is_a_double_refund(tmp_path: Path) -> None:
    """Check 5001 booked by the payer's offset pair, then a lone `WO:BRH2607080733*155.50` two weeks
    later: that WO alone is a recoupment, and the refund a double refund of 155.50."""
    db = f"sqlite:///{tmp_path / 'e.db'}"
    rid = refund_id(
        run(db, tmp_path / "out", "2026-10-15", *(CHECK_BOOKED / n for n in ("claims-1.837", "claims-2.837", "remit-1.835", "remit-2.835"))), "RFM2727001"
    )
    assert refund(db, "approve", rid, "--user", "alice", as_of="2026-10-16").exit_code == 0
    assert refund(db, "mark-sent", rid, "--user", "bob", "--reference", "5001", "--date", "2026-10-20", as_of="2026-10-20").exit_code == 0
    run(db, tmp_path / "out", "2026-11-10", CHECK_BOOKED / "remit-3.835")
    assert "  status            acknowledged" in refund(db, "show", rid, as_of="2026-11-10").stdout
    rows = run(db, tmp_path / "out", "2026-11-27", TAKEN_BACK_TOO)
    assert [(r["refund_id"], r["status"]) for r in rows] == [(rid, "settled_by_recoupment")]
    assert [(r["kind"], r["trace_number"], r["amount"], r["refund_id"]) for r in table(tmp_path / "out" / "recoupments.csv")] == [
        ("PLB_WO", "0009272704", "155.50", rid)
    ]
    shown = refund(db, "show", rid).stdout
    assert "  status            double_refund" in shown
    assert "  double refund     155.50 to recover: PLB_WO trace 0009272704 of 2026-11-20" in shown
    assert [e[1:] for e in trail(db, rid)][-2:] == [("acknowledged", "sent", "acknowledged"), ("double_refund", "acknowledged", "double_refund")]


def test_refund_first_met_with_its_check_booked_enters_acknowledged(tmp_path: Path) -> None:
    """All the files in one run: the duplicate and the payer's offset pair for it are met together,
    so the refund is acknowledged as soon as it enters the workflow and cannot be approved or sent."""
    db = f"sqlite:///{tmp_path / 'e.db'}"
    rid = refund_id(run(db, tmp_path / "out", "2026-11-27", CHECK_BOOKED), "RFM2727001")
    assert "PLB 72 -155.50 reference 5001 offsets PLB WO 155.50 reference BRH2607080733 in trace 0009272703 of 2026-11-06" in refund(db, "show", rid).stdout
    assert trail(db, rid) == [("edirecon", "identified", "", "pending"), ("edirecon", "acknowledged", "pending", "acknowledged")]
    for action in (["approve", rid], ["mark-sent", rid, "--reference", "5002"]):
        result = refund(db, *action)
        assert (result.exit_code, "is acknowledged" in result.output) == (1, True)


def test_refund_check_booked_as_a_claim_reversal_is_acknowledged_in_every_output(db: str, tmp_path: Path) -> None:
    """Check 5011 sent for the 155.50 duplicate, then the payer's 835 reverses the duplicate
    (`CLP*RFM2728001*22*…*-155.50`) and adds `72:5011*-155.50`: acknowledged by the engine and the
    workflow alike; no CLAIM_REVERSAL recoupment, no settlement, no double refund."""
    first = [BOOKED_AS_REVERSAL / n for n in ("claims-1.837", "claims-2.837", "remit-1.835", "remit-2.835")]
    rid = refund_id(run(db, tmp_path / "out", "2026-10-15", *first), "RFM2728001")
    assert refund(db, "approve", rid, "--user", "alice", as_of="2026-10-16").exit_code == 0
    sent = refund(db, "mark-sent", rid, "--user", "bob", "--method", "check", "--reference", "5011", "--date", "2026-10-20", as_of="2026-10-20")
    assert (sent.exit_code, sent.stdout) == (0, f"{rid}: mark-sent by bob; now sent\n")

    rows = run(db, tmp_path / "out", "2026-11-27", BOOKED_AS_REVERSAL / "remit-3.835")
    assert [(r["refund_id"], r["amount"], r["status"]) for r in rows] == [(rid, "155.50", "acknowledged")]
    assert table(tmp_path / "out" / "recoupments.csv") == []
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert (summary["recoupments"], summary["refunds_open_amount"]) == ({"count": 0, "amount": "0.00"}, "0.00")
    balances = {b["patient_control_number"]: (b["payer_paid"], b["balance"]) for b in table(tmp_path / "out" / "credit_balances.csv")}
    assert balances["RFM2728001"] == ("155.50", "25.00")

    shown = refund(db, "show", rid).stdout
    assert "  status            acknowledged\n  engine status     acknowledged\n" in shown
    assert "  amount            155.50 (outstanding 0.00)" in shown
    assert "  acknowledged      155.50 on 2026-11-06 (PLB 87726|0009272803|35|1)" in shown
    assert "double refund" not in shown and "recouped" not in shown
    assert [e[1:] for e in trail(db, rid)][-1] == ("acknowledged", "sent", "acknowledged")
    assert "0 refund(s)" in refund(db, "list", "--status", "double_refund").output

    made = cli("report", "--db", db, "--out", tmp_path / "report", "--as-of", "2026-11-27", "--config", CONFIG)
    assert made.exit_code == 0, made.output
    assert table(tmp_path / "report" / "worklist.csv") == [] and table(tmp_path / "report" / "followups.csv") == []
    assert [(m["month"], m["recouped"]) for m in table(tmp_path / "report" / "audit_payer_months.csv")] == [
        ("2026-06", "0.00"),
        ("2026-07", "0.00"),
        ("2026-11", "0.00"),
    ]
    dashboard = (tmp_path / "report" / "dashboard.html").read_text(encoding="utf-8")
    assert "1 refunds found, 0 recoupments" in dashboard and "CLAIM_REVERSAL" not in dashboard


def test_refund_first_met_with_its_check_booked_as_a_reversal_enters_acknowledged(tmp_path: Path) -> None:
    """All the files in one run: the duplicate and the reversal offset by the 72 are met together,
    so the refund enters acknowledged, its audit note naming the reversal the 72 offsets."""
    db = f"sqlite:///{tmp_path / 'e.db'}"
    rid = refund_id(run(db, tmp_path / "out", "2026-11-27", BOOKED_AS_REVERSAL), "RFM2728001")
    shown = refund(db, "show", rid).stdout
    assert ("PLB 72 -155.50 reference 5011 offsets CLAIM_REVERSAL 155.50 of CLP07 BRH2607090512 (CLP02 22) in trace 0009272803 of 2026-11-06") in shown
    assert trail(db, rid) == [("edirecon", "identified", "", "pending"), ("edirecon", "acknowledged", "pending", "acknowledged")]
    result = refund(db, "approve", rid)
    assert (result.exit_code, "is acknowledged" in result.output) == (1, True)


def test_refund_settled_by_recoupment_cannot_be_approved_or_sent(db: str, tmp_path: Path) -> None:
    """When Medicare took the duplicate back before anyone acted, the refund is settled: approving
    or sending it is refused (exit 1), and the refusal changes nothing."""
    rid = refund_id(run(db, tmp_path / "out", "2026-11-27", PLB), "RFM2604001")
    assert refund(db, "list").stdout.splitlines()[1].split()[:2] == [rid, "settled"]
    for action in (["approve", rid], ["mark-sent", rid, "--reference", "5001"]):
        result = refund(db, *action)
        assert result.exit_code == 1
        assert "settled_by_recoupment" in result.output
    assert trail(db, rid) == [("edirecon", "identified", "", "settled")]


def test_auto_approval_and_patient_hold_rules(db: str, tmp_path: Path) -> None:
    """With the test config: the 27.00 COB refund is below 50.00 (auto-approved), the 15.00
    patient credit is below 20.00 (held), the 155.50 duplicate waits for a person."""
    rows = run(db, tmp_path / "out", "2026-11-27", SAMPLE_EDI / "secondary-overpaid", SAMPLE_EDI / "patient-copay-overpaid", SAMPLE_EDI / "duplicate-payment")
    cob, patient, dup = refund_id(rows, "RFM2605001"), refund_id(rows, "RFM2606001"), refund_id(rows, "RFM2602001")
    status = {line.split()[0]: line.split()[1] for line in refund(db, "list").stdout.splitlines()[1:-1]}
    assert status == {cob: "approved", patient: "held", dup: "pending"}
    assert trail(db, cob) == [("edirecon", "auto-approved", "", "approved")]
    assert "auto-approval rule 'small COB refunds'" in refund(db, "show", cob).output
    assert "patient credit 15.00 is below the hold threshold 20.00" in refund(db, "show", patient).output
    # later runs keep the workflow state and add no event
    run(db, tmp_path / "out2", "2026-12-01", SAMPLE_EDI / "clean-payment")
    assert trail(db, cob) == [("edirecon", "auto-approved", "", "approved")]
    assert refund(db, "approve", patient, "--user", "carol", "--note", "patient asked for a check").exit_code == 0
    assert refund(db, "hold", cob, "--user", "carol", "--note", "Medicaid asked to wait").exit_code == 0
    no_note = refund(db, "void", dup, "--user", "carol")
    assert (no_note.exit_code, no_note.output) == (2, "edirecon: void needs --note saying why\n")
    assert refund(db, "void", dup, "--user", "carol", "--note", "payer confirmed it was a split payment").exit_code == 0
    again = refund(db, "approve", dup, "--user", "carol")
    assert again.exit_code == 1 and "is voided" in again.output
    assert [e[1:] for e in trail(db, dup)] == [("identified", "", "pending"), ("void", "pending", "voided")]


def test_patient_refund_not_cashed_is_an_escheatment_candidate(db: str, tmp_path: Path) -> None:
    """A 15.00 patient refund check mailed 2026-08-20 and never cashed: with escheatment_days = 90 it
    is a candidate from 2026-11-18 (day 90), not on 2026-11-17; cashing it clears the flag."""
    rid = refund_id(run(db, tmp_path / "out", "2026-08-10", SAMPLE_EDI / "patient-copay-overpaid"), "RFM2606001")
    assert refund(db, "approve", rid, "--user", "alice", as_of="2026-08-11").exit_code == 0
    assert refund(db, "mark-sent", rid, "--user", "alice", "--reference", "7001", "--date", "2026-08-20", as_of="2026-08-20").exit_code == 0
    assert refund(db, "list", "--escheatment", as_of="2026-11-17").stdout.splitlines()[-1] == "0 refund(s)"
    flagged = refund(db, "list", "--escheatment", as_of="2026-11-18").stdout.splitlines()
    assert flagged[1:] == [f"{rid}  sent    2026-10-09   15.00  RFM2606001  LEE, KAREN  patient  escheatment candidate", "1 refund(s)"]
    assert refund(db, "mark-cashed", rid, "--user", "alice", "--date", "2026-11-20", as_of="2026-11-20").exit_code == 0
    assert refund(db, "list", "--escheatment", as_of="2026-12-31").stdout.splitlines()[-1] == "0 refund(s)"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    """An unknown refund id, a bad date or amount, a check without its number: exit 2, one line."""
    db = f"sqlite:///{tmp_path / 'e.db'}"
    rid = refund_id(run(db, tmp_path / "out", "2026-11-27", SAMPLE_EDI / "duplicate-payment"), "RFM2602001")
    assert (refund(db, "show", "RF-0000000000000000").exit_code, refund(db, "show", "RF-0000000000000000").output) == (
        2,
        "edirecon: no refund 'RF-0000000000000000' in the store (see `edirecon refund list`)\n",
    )
    assert refund(db, "approve", rid, "--user", "a").exit_code == 0
    no_number = refund(db, "mark-sent", rid, "--user", "a")
    assert (no_number.exit_code, no_number.output) == (2, "edirecon: --reference (the check number) is needed for a check\n")
    assert refund(db, "mark-sent", rid, "--reference", "1", "--amount", "12.345").exit_code == 2
    assert cli("refund", "list", "--db", db, "--as-of", "2026-02-30").exit_code == 2
    assert refund(db, "list", "--status", "lost").exit_code == 2


def test_workflow_logs_carry_no_patient_data(tmp_path: Path) -> None:
    """The workflow's log events name refunds, statuses and users, never a patient's name or member id
    (the refunds enter the workflow at ``run``, which syncs it)."""
    from edirecon.engine.run import run as run_library
    from edirecon.engine.workflow.refunds import act, book, open_store

    db = f"sqlite:///{tmp_path / 'e.db'}"
    config = Config.load(CONFIG)
    structlog.reset_defaults()  # the CLI configured a WARNING filter in this process
    with capture_logs() as logs:
        result = run_library([PLB / "claims.837", PLB / "remit-1.835", PLB / "remit-2.835"], db, tmp_path / "out", date(2026, 10, 20), config, workers=1)
        rid = refund_id([{k: str(v) for k, v in r.items()} for r in result.outputs["refund_requests"]], "RFM2604001")
        store = open_store(db)
        try:
            book(store, date(2026, 10, 20), config)
            act(store, rid, "approve", "alice", date(2026, 10, 21), config)
        finally:
            store.dispose()
    assert {e["event"] for e in logs} >= {"refund_entered", "refund_action"}
    text = repr(logs)
    for secret in ("JOHNSON", "ROBERT", "1EG4TE5MK73", "MILLER", "5TW8HN2RJ41"):
        assert secret not in text


def test_configuration_of_the_workflow(tmp_path: Path) -> None:
    """The TOML keys of docs/rules.md "Configuration": the new tables load, old files still do, and an
    amount written as a TOML float is refused (money is never a float)."""
    config = Config.load(CONFIG)
    assert config.refunds.patient_hold_below == Decimal("20.00") and config.refunds.escheatment_days == 90
    (rule,) = config.refunds.auto_approve
    assert rule.applies(Decimal("27.00"), "COB_OVERPAYMENT", "77099", "payer")
    assert not rule.applies(Decimal("50.00"), "COB_OVERPAYMENT", "77099", "payer")
    assert not rule.applies(Decimal("27.00"), "DUPLICATE_PAYMENT", "77099", "payer")
    assert config.providers["1467523894"].phone == "(541) 555-0100"
    assert config.cms838.provider_number == "381234"
    old = Config.load(FIXTURES / "engine" / "federal-deadline-by-config" / "config.toml")
    assert old.refunds.auto_approve == () and old.refunds.patient_hold_below == 0
    bad = tmp_path / "bad.toml"
    bad.write_text("[refunds]\npatient_hold_below = 10.5\n")
    with pytest.raises(UsageError, match="must be an amount written as a string"):
        Config.load(bad)
    bad.write_text("[refunds]\nhold_below = '10.00'\n")
    with pytest.raises(UsageError, match=r"unknown setting.*refunds\.hold_below"):
        Config.load(bad)


# -- several refunds at a time, --from, EDIRECON_DB/EDIRECON_CONFIG, amounts, re-judging (issue 12) ----------


def three_refunds(db: str, out: Path, config: Path | None = CONFIG) -> tuple[str, str, str]:
    """Run the COB (Medicaid 27.00), patient (15.00) and duplicate (Blue River 155.50) scenarios:
    their refund ids, in that order."""
    rows = run(db, out, "2026-11-27", SAMPLE_EDI / "secondary-overpaid", SAMPLE_EDI / "patient-copay-overpaid", SAMPLE_EDI / "duplicate-payment", config=config)
    return refund_id(rows, "RFM2605001"), refund_id(rows, "RFM2606001"), refund_id(rows, "RFM2602001")


def statuses(result: Any) -> dict[str, str]:
    """refund_id -> workflow status, from the table `refund list` prints."""
    assert result.exit_code == 0, result.output
    return {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[1:-1]}


def test_bulk_approve_refuses_one_and_does_the_others(db: str, tmp_path: Path) -> None:
    """`refund approve` of three ids, one already approved: that one is refused with the reason
    (exit 1), the other two are approved, each with its own audit event."""
    cob, patient, dup = three_refunds(db, tmp_path / "out")
    result = refund(db, "approve", patient, cob, dup, "--user", "alice", "--note", "reviewed in the Monday batch")
    assert result.exit_code == 1
    assert result.stdout == f"{patient}: approve by alice; now approved\n{dup}: approve by alice; now approved\napprove: 2 done, 1 refused\n"
    assert result.stderr == f"edirecon: {cob} is approved: approve is allowed only when it is held or pending\n"
    assert trail(db, patient) == [("edirecon", "identified", "", "held"), ("alice", "approve", "held", "approved")]
    assert trail(db, dup) == [("edirecon", "identified", "", "pending"), ("alice", "approve", "pending", "approved")]
    assert trail(db, cob) == [("edirecon", "auto-approved", "", "approved")]
    assert "reviewed in the Monday batch" in refund(db, "show", dup).stdout


def test_bulk_action_with_an_unknown_id_does_nothing(tmp_path: Path) -> None:
    """An id that is not in the store (a typo, or another store) among several: exit 2 naming it,
    and none of the others is acted on."""
    db = f"sqlite:///{tmp_path / 'e.db'}"
    cob, patient, dup = three_refunds(db, tmp_path / "out")
    result = refund(db, "hold", dup, "RF-9CDAD4E99137F3F0", cob, "--user", "alice")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == ("edirecon: no refund 'RF-9CDAD4E99137F3F0' in the store (see `edirecon refund list`): none of the 3 refunds was acted on\n")
    assert statuses(refund(db, "list")) == {cob: "approved", patient: "held", dup: "pending"}
    assert [e[1] for e in trail(db, dup)] == ["identified"]


def test_from_a_plain_id_list_and_a_filtered_worklist(tmp_path: Path) -> None:
    """--from reads ids one per line (blank lines and spaces ignored), or the refund_id column of
    a CSV: the worklist.csv of `edirecon report`, filtered to the payer refunds, holds those two."""
    db = f"sqlite:///{tmp_path / 'e.db'}"
    cob, patient, dup = three_refunds(db, tmp_path / "out")
    assert refund(db, "hold", cob, "--user", "carol").exit_code == 0
    plain = tmp_path / "ids.txt"
    plain.write_text(f"{patient}\n\n  {dup}  \n", encoding="utf-8")
    approved = refund(db, "approve", "--from", plain, "--user", "alice")
    assert (approved.exit_code, approved.stdout.splitlines()[-1]) == (0, "approve: 2 done, 0 refused")
    assert statuses(refund(db, "list")) == {cob: "held", patient: "approved", dup: "approved"}

    reported = cli("report", "--db", db, "--out", tmp_path / "report", "--as-of", "2026-11-27", "--config", CONFIG)
    assert reported.exit_code == 0, reported.output
    with open(tmp_path / "report" / "worklist.csv", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        rows, columns = list(reader), reader.fieldnames
    assert sorted(r["refund_id"] for r in rows) == sorted([cob, patient, dup])
    filtered = tmp_path / "payer-refunds.csv"
    with open(filtered, "w", newline="", encoding="utf-8") as fh:  # as an analyst saves a filtered worklist
        writer = csv.DictWriter(fh, fieldnames=columns or [])
        writer.writeheader()
        writer.writerows(r for r in rows if r["payee_type"] == "payer" and r["workflow_status"] == "approved")
    held = refund(db, "hold", "--from", filtered, "--user", "carol", "--note", "payer audit")
    assert held.exit_code == 0, held.output
    assert held.stdout == f"{dup}: hold by carol; now held\n"
    assert statuses(refund(db, "list")) == {cob: "held", patient: "approved", dup: "held"}
    no_column = tmp_path / "refund-requests-columns.csv"
    no_column.write_text("payer_id,amount\n87726,155.50\n", encoding="utf-8")
    bad = refund(db, "approve", "--from", no_column)
    assert (bad.exit_code, bad.stderr) == (2, f"edirecon: --from {no_column}: a CSV needs a refund_id column (its header is payer_id, amount)\n")
    nothing = refund(db, "approve")
    assert (nothing.exit_code, nothing.stderr) == (2, "edirecon: no refund id: give refund ids (RF-…) or --from FILE\n")


def test_environment_gives_db_and_config_and_the_options_win(tmp_path: Path) -> None:
    """EDIRECON_DB and EDIRECON_CONFIG stand for --db and --config of run, refund and report; an
    explicit --db or --config wins over them."""
    db = f"sqlite:///{tmp_path / 'e.db'}"
    env = {"EDIRECON_DB": db, "EDIRECON_CONFIG": str(CONFIG)}
    runner = CliRunner(env=env)

    def invoke(*args: Any) -> Any:
        return runner.invoke(app, [str(a) for a in args])

    ran = invoke(
        "run", SAMPLE_EDI / "secondary-overpaid", SAMPLE_EDI / "patient-copay-overpaid", "--out", tmp_path / "out", "--as-of", "2026-11-27", "--workers", "1"
    )
    assert ran.exit_code == 0, ran.output
    with open(tmp_path / "out" / "refund_requests.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    cob, patient = refund_id(rows, "RFM2605001"), refund_id(rows, "RFM2606001")
    assert statuses(invoke("refund", "list", "--as-of", "2026-11-27")) == {cob: "approved", patient: "held"}
    assert invoke("refund", "hold", cob, "--as-of", "2026-11-27", "--user", "carol").exit_code == 0
    reported = invoke("report", "--out", tmp_path / "report", "--as-of", "2026-11-27")
    assert reported.stdout.startswith("worklist: 2 open refund(s), 42.00 outstanding"), reported.output
    other = invoke("refund", "list", "--db", f"sqlite:///{tmp_path / 'other.db'}", "--as-of", "2026-11-27")
    assert (other.exit_code, other.stdout) == (2, "") and f"edirecon: no store at {tmp_path / 'other.db'}: " in other.stderr
    assert not (tmp_path / "other.db").exists()  # the workflow never creates a store
    no_rules = FIXTURES / "engine" / "federal-deadline-by-config" / "config.toml"
    assert statuses(invoke("refund", "list", "--config", no_rules, "--as-of", "2026-11-27")) == {cob: "held", patient: "pending"}


def test_mark_sent_and_recovered_above_what_is_owed_are_refused(db: str, tmp_path: Path) -> None:
    """A check of 500.00 for the 99.96 Medicare duplicate is refused (exit 1, the outstanding
    99.96 in the message), in the library as through the CLI; so is recovering more than the double
    refund.  The refund sent for 99.96 is then a double refund of 99.96."""
    from edirecon.engine.workflow.refunds import act, open_store

    rid = refund_id(run(db, tmp_path / "out", "2026-10-20", PLB / "claims.837", PLB / "remit-1.835", PLB / "remit-2.835"), "RFM2604001")
    assert refund(db, "approve", rid, "--user", "alice", as_of="2026-10-21").exit_code == 0
    over = refund(db, "mark-sent", rid, "--user", "bob", "--method", "check", "--reference", "5001", "--amount", "500", as_of="2026-11-02")
    assert (over.exit_code, over.stdout, over.stderr) == (1, "", f"edirecon: {rid}: cannot send 500.00: 99.96 is outstanding\n")
    store = open_store(db)
    try:
        with pytest.raises(NotAllowed, match=r"cannot send 99\.97: 99\.96 is outstanding"):
            act(store, rid, "mark-sent", "bob", date(2026, 11, 2), Config.load(CONFIG), method="eft", reference="EFT1", amount=Decimal("99.97"))
    finally:
        store.dispose()
    assert trail(db, rid)[-1] == ("alice", "approve", "pending", "approved")
    zero = refund(db, "mark-sent", rid, "--reference", "5001", "--amount", "0")
    assert (zero.exit_code, zero.stderr) == (2, "edirecon: --amount must be more than zero\n")
    sent = refund(db, "mark-sent", rid, "--user", "bob", "--reference", "5001", "--amount", "99.96", "--date", "2026-11-02", as_of="2026-11-02")
    assert sent.exit_code == 0, sent.output
    run(db, tmp_path / "out", "2026-11-27", PLB / "remit-3.835")
    assert "  double refund     99.96 to recover: PLB_WO trace 0000902377 of 2026-11-20" in refund(db, "show", rid).stdout
    too_much = refund(db, "mark-recovered", rid, "--user", "bob", "--amount", "150.00")
    assert (too_much.exit_code, too_much.stderr) == (1, f"edirecon: {rid}: 150.00 is more than the double refund to recover: 99.96\n")
    assert refund(db, "mark-recovered", rid, "--user", "bob", "--amount", "99.96").exit_code == 0


def test_refunds_nobody_acted_on_follow_the_current_rules(db: str, tmp_path: Path) -> None:
    """A first `refund list` without --config enters every refund as pending; a later sync with the
    config re-judges those no person acted on (COB 27.00 approved, audited as edirecon and logged),
    never one a person decided: the patient credit alice approved stays approved, and the COB refund
    carol then held stays held under any rules."""
    from edirecon.engine.workflow.refunds import book, open_store

    cob, patient, dup = three_refunds(db, tmp_path / "out", config=None)
    first = cli("refund", "list", "--db", db, "--as-of", "2026-11-27")
    assert statuses(first) == {cob: "pending", patient: "pending", dup: "pending"}
    assert cli("refund", "approve", patient, "--user", "alice", "--db", db, "--as-of", "2026-11-27").exit_code == 0
    store = open_store(db)
    structlog.reset_defaults()  # the CLI configured a WARNING filter in this process
    try:
        with capture_logs() as logs:
            book(store, date(2026, 11, 27), Config.load(CONFIG))
    finally:
        store.dispose()
    assert [(e["event"], e["refund_id"], e["action"], e["from_status"], e["to_status"]) for e in logs if e["event"] == "refund_changed"] == [
        ("refund_changed", cob, "rejudged", "pending", "approved")
    ]
    assert statuses(refund(db, "list")) == {cob: "approved", patient: "approved", dup: "pending"}
    assert trail(db, cob) == [("edirecon", "identified", "", "pending"), ("edirecon", "rejudged", "pending", "approved")]
    assert trail(db, patient) == [("edirecon", "identified", "", "pending"), ("alice", "approve", "pending", "approved")]
    assert "rejudged         pending -> approved  auto-approval rule 'small COB refunds'" in refund(db, "show", cob).stdout

    assert refund(db, "hold", cob, "--user", "carol", "--note", "Medicaid asked to wait").exit_code == 0
    assert statuses(refund(db, "list")) == {cob: "held", patient: "approved", dup: "pending"}
    assert statuses(cli("refund", "list", "--db", db, "--as-of", "2026-11-28")) == {cob: "held", patient: "approved", dup: "pending"}
    assert [e[1] for e in trail(db, cob)] == ["identified", "rejudged", "hold"]
    assert [e[1] for e in trail(db, dup)] == ["identified"]
