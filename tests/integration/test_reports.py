"""`edirecon report` on the sample_edi/ scenarios, checked against figures worked by hand from the
sample READMEs (never from edirecon's own output).

The store is built as a billing office would have met the files over 2026 (one `run` per batch,
tests/fixtures/reports/config.toml):

| run as of  | scenarios                                                   | refund identified (due)        |
|------------|-------------------------------------------------------------|--------------------------------|
| 2026-04-10 | clean-payment, duplicate-payment                            | Blue River dup 155.50 (06-09)  |
| 2026-07-20 | institutional-and-dental, reversal-with-correction, secondary-overpaid | Medicaid COB 27.00 (09-18) |
| 2026-09-15 | patient-copay-overpaid, unmatched-payment, broken-file      | patient LEE 15.00 (11-14)      |
| 2026-10-20 | plb-recoupment claims, remit-1, remit-2                     | Medicare dup 99.96 (12-19)     |

The first report is made on 2026-10-20.  Then alice approves the Blue River and Medicare
duplicates, bob mails Medicare check 5001 on 2026-11-02, remit-3 (Medicare's PLB WO 99.96 of
2026-11-20) is run on 2026-11-27, and the second report is made that day for 2026Q4.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, REPO, SAMPLE_EDI
from pypdf import PdfReader
from typer.testing import CliRunner

from edirecon.cli import app

CONFIG = FIXTURES / "reports" / "config.toml"
S = SAMPLE_EDI
PLB = S / "plb-recoupment-settles-refund"


def cli(*args: Any) -> Any:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def table(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def pdf_text(path: Path) -> str:
    """The text of a PDF with white space (line wraps included) collapsed to single spaces."""
    return " ".join(" ".join(page.extract_text() for page in PdfReader(path).pages).split())


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("reports")
    db = f"sqlite:///{root / 'edirecon.db'}"
    here = os.getcwd()
    os.chdir(REPO)  # inputs named relative to the repository, as the positions in the reports are

    def run(as_of: str, *inputs: Path) -> None:
        cli("run", *(p.relative_to(REPO) for p in inputs), "--db", db, "--out", root / "out", "--as-of", as_of, "--config", CONFIG, "--workers", "1")

    run("2026-04-10", S / "clean-payment", S / "duplicate-payment")
    run("2026-07-20", S / "institutional-and-dental", S / "reversal-with-correction", S / "secondary-overpaid")
    run("2026-09-15", S / "patient-copay-overpaid", S / "unmatched-payment", S / "broken-file")
    run("2026-10-20", PLB / "claims.837", PLB / "remit-1.835", PLB / "remit-2.835")
    cli("report", "--db", db, "--out", root / "october", "--as-of", "2026-10-20", "--config", CONFIG)
    ids = {r["patient_control_number"]: r["refund_id"] for r in table(root / "out" / "refund_requests.csv")}
    for pcn in ("RFM2602001", "RFM2604001"):
        cli("refund", "approve", ids[pcn], "--db", db, "--as-of", "2026-10-21", "--config", CONFIG, "--user", "alice")
    cli(
        "refund",
        "mark-sent",
        ids["RFM2604001"],
        "--db",
        db,
        "--as-of",
        "2026-11-02",
        "--config",
        CONFIG,
        "--user",
        "bob",
        "--reference",
        "5001",
        "--date",
        "2026-11-02",
    )
    run("2026-11-27", PLB / "remit-3.835")
    cli("report", "--db", db, "--out", root / "november", "--as-of", "2026-11-27", "--quarter", "2026Q4", "--config", CONFIG)
    cli("report", "--db", db, "--out", root / "q3", "--as-of", "2026-11-27", "--quarter", "2026Q3", "--config", CONFIG)
    os.chdir(here)
    yield {"october": root / "october", "november": root / "november", "q3": root / "q3", "ids": ids, "db": db, "root": root}


def test_worklist_aging_buckets_and_overdue(reports: dict[str, Any]) -> None:
    """On 2026-10-20 the four open refunds, by due date.  Days in credit count from the payment that
    made the credit: 04-08 → 195 (over 90), 07-15 → 97 (over 90), 08-07 → 74 (61-90), 10-16 → 4
    (0-30).  Overdue: 06-09 → 133 days, 09-18 → 32 days."""
    rows = table(reports["october"] / "worklist.csv")
    got = [
        (
            r["patient_control_number"],
            r["due_by"],
            r["overdue"],
            r["days_overdue"],
            r["days_in_credit"],
            r["aging_bucket"],
            r["outstanding"],
            r["workflow_status"],
        )
        for r in rows
    ]
    assert got == [
        ("RFM2602001", "2026-06-09", "yes", "133", "195", "over-90", "155.50", "pending"),
        ("RFM2605001", "2026-09-18", "yes", "32", "97", "over-90", "27.00", "approved"),  # auto-approved: below 50.00
        ("RFM2606001", "2026-11-14", "no", "0", "74", "61-90", "15.00", "held"),  # patient credit below 20.00
        ("RFM2604001", "2026-12-19", "no", "0", "4", "0-30", "99.96", "pending"),
    ]
    assert [r["member_id"] for r in rows][1] == "SM40028813"  # Medicaid knows TAYLOR DAVID by its own id


def test_worklist_totals_per_payer(reports: dict[str, Any]) -> None:
    """Totals per payee on 2026-10-20, and all together: 155.50 + 27.00 + 15.00 + 99.96 = 297.46,
    overdue 155.50 + 27.00 = 182.50; by bucket 99.96 / 0.00 / 15.00 / 182.50."""
    totals = {r["payee"]: r for r in table(reports["october"] / "worklist_totals.csv")}
    pick = ("count", "outstanding", "overdue_count", "overdue_amount", "0-30", "31-60", "61-90", "over-90")
    assert {k: tuple(v[c] for c in pick) for k, v in totals.items()} == {
        "12202": ("1", "99.96", "0", "0.00", "99.96", "0.00", "0.00", "0.00"),
        "77099": ("1", "27.00", "1", "27.00", "0.00", "0.00", "0.00", "27.00"),
        "87726": ("1", "155.50", "1", "155.50", "0.00", "0.00", "0.00", "155.50"),
        "patient": ("1", "15.00", "0", "0.00", "0.00", "0.00", "15.00", "0.00"),
        "ALL": ("4", "297.46", "2", "182.50", "99.96", "0.00", "15.00", "182.50"),
    }


def test_worklist_and_followups_after_the_double_refund(reports: dict[str, Any]) -> None:
    """On 2026-11-27 Medicare's refund is off the worklist (sent, then also recouped: a double
    refund of 99.96); the three others are overdue: 06-09 → 171 days, 09-18 → 70, 11-14 → 13."""
    rows = table(reports["november"] / "worklist.csv")
    assert [(r["patient_control_number"], r["days_overdue"], r["workflow_status"]) for r in rows] == [
        ("RFM2602001", "171", "approved"),
        ("RFM2605001", "70", "approved"),
        ("RFM2606001", "13", "held"),
    ]
    assert table(reports["november"] / "worklist_totals.csv")[-1]["outstanding"] == "197.50"
    (follow,) = table(reports["november"] / "followups.csv")
    assert (follow["kind"], follow["refund_id"], follow["amount"], follow["reference"], follow["sent_on"], follow["days_since_sent"]) == (
        "DOUBLE_REFUND",
        reports["ids"]["RFM2604001"],
        "99.96",
        "5001",
        "2026-11-02",
        "25",
    )


def test_reconciliation_audit_per_remittance_and_per_payer_month(reports: dict[str, Any]) -> None:
    """BPR02 against Σ CLP04 − Σ PLB for each of the 16 ingested remittances (every sample balances;
    remit-3: 154.84 − 99.96 = 54.88); per payer and month, received vs. matched vs. unmatched vs.
    recouped (sums of the README tables)."""
    remits = {r["trace_number"]: r for r in table(reports["november"] / "audit_remittances.csv")}
    assert len(remits) == 16 and {r["balanced"] for r in remits.values()} == {"yes"}
    r3 = remits["0000902377"]
    assert (r3["bpr_amount"], r3["claim_payments"], r3["provider_adjustments"], r3["difference"]) == ("54.88", "154.84", "99.96", "0.00")
    months = {(r["payer_id"], r["month"]): r for r in table(reports["november"] / "audit_payer_months.csv")}
    pick = ("remittances", "received", "matched", "unmatched", "provider_adjustments", "recouped", "difference")
    expected = {
        ("87726", "2026-03"): ("2", "341.50", "341.50", "0.00", "0.00", "0.00", "0.00"),  # 186.00 clean + 155.50 EFT
        ("87726", "2026-04"): ("2", "496.50", "496.50", "0.00", "0.00", "0.00", "0.00"),  # 155.50 check + 341.00 hospital
        ("87726", "2026-05"): ("3", "103.00", "103.00", "0.00", "0.00", "99.50", "0.00"),  # 99.50 + 0.00 denial + 3.50; reversal 99.50
        ("87726", "2026-06"): ("2", "250.40", "250.40", "0.00", "0.00", "0.00", "0.00"),  # 158.40 + 92.00
        ("87726", "2026-08"): ("1", "73.00", "73.00", "0.00", "0.00", "0.00", "0.00"),
        ("87726", "2026-09"): ("1", "71.00", "0.00", "71.00", "0.00", "0.00", "0.00"),  # ST 36140: no claim RFM2608001
        ("77099", "2026-07"): ("1", "110.00", "110.00", "0.00", "0.00", "0.00", "0.00"),
        ("77099", "2026-08"): ("1", "149.50", "88.00", "61.50", "0.00", "0.00", "0.00"),
        ("12202", "2026-10"): ("2", "199.92", "199.92", "0.00", "0.00", "0.00", "0.00"),
        ("12202", "2026-11"): ("1", "54.88", "154.84", "0.00", "99.96", "99.96", "0.00"),
    }
    assert {k: tuple(v[c] for c in pick) for k, v in months.items()} == expected


def test_audit_discrepancies_with_their_positions(reports: dict[str, Any]) -> None:
    """The discrepancies of the sample: the 8 parse errors of broken-file/, the two unmatched
    payments (71.00 at remit-truncated.835 segment 17, 61.50 at unmatched-payment/remit.835 segment
    25) and the double refund at the PLB of remit-3 (segment 34)."""
    rows = table(reports["november"] / "audit_discrepancies.csv")
    assert sum(1 for r in rows if r["kind"] == "PARSE_ERROR") == 8
    money_rows = [(r["kind"], r["source_file"], r["segment"], r["payer_id"], r["amount"]) for r in rows if r["kind"] != "PARSE_ERROR"]
    assert money_rows == [
        ("UNMATCHED_PAYMENT", "sample_edi/broken-file/remit-truncated.835", "17", "87726", "71.00"),
        ("UNMATCHED_PAYMENT", "sample_edi/unmatched-payment/remit.835", "25", "77099", "61.50"),
        ("DOUBLE_REFUND", "sample_edi/plb-recoupment-settles-refund/remit-3.835", "34", "12202", "99.96"),
    ]


def test_audit_of_an_unbalanced_remittance(tmp_path: Path) -> None:
    """tests/fixtures/engine/unbalanced-claim-and-remittance: BPR02 183.00 against Σ CLP04 105.00 +
    73.00 = 178.00, off by 5.00; the claim RFM2710001 is off by 5.00 too, at its CLP segment."""
    folder = FIXTURES / "engine" / "unbalanced-claim-and-remittance"
    db = f"sqlite:///{tmp_path / 'e.db'}"
    cli("run", folder, "--db", db, "--out", tmp_path / "out", "--as-of", "2026-11-27", "--workers", "1")
    cli("report", "--db", db, "--out", tmp_path / "rep", "--as-of", "2026-11-27")
    (remit,) = table(tmp_path / "rep" / "audit_remittances.csv")
    assert (remit["bpr_amount"], remit["claim_payments"], remit["expected"], remit["difference"], remit["balanced"]) == (
        "183.00",
        "178.00",
        "178.00",
        "5.00",
        "no",
    )
    segments = (folder / "remit.835").read_text().split("~")
    clp = next(i for i, seg in enumerate(segments, start=1) if seg.strip().startswith("CLP*RFM2710001*"))
    rows = {r["kind"]: r for r in table(tmp_path / "rep" / "audit_discrepancies.csv")}
    assert (rows["UNBALANCED_CLAIM"]["segment"], rows["UNBALANCED_CLAIM"]["amount"], rows["UNBALANCED_CLAIM"]["patient_control_number"]) == (
        str(clp),
        "5.00",
        "RFM2710001",
    )
    assert (rows["UNBALANCED_REMITTANCE"]["amount"], rows["UNBALANCED_REMITTANCE"]["source_file"]) == ("5.00", str(folder / "remit.835"))


def test_root_cause_analytics(reports: dict[str, Any]) -> None:
    """Refunds found, by dimension, on 2026-11-27.  The credits arose 04-08 (Blue River dup 155.50),
    07-15 (Medicaid COB 27.00), 08-07 (patient 15.00) and 10-16 (Medicare dup 99.96); the last 90
    days (08-29 to 11-27) hold 99.96, the 90 before (05-31 to 08-29) 27.00 + 15.00 = 42.00."""
    dims = {
        (r["dimension"], r["key"]): (r["count"], r["amount"], r["last_90_days"], r["previous_90_days"], r["trend"])
        for r in table(reports["november"] / "root_cause_dimensions.csv")
    }
    assert dims[("reason", "DUPLICATE_PAYMENT")] == ("2", "255.46", "99.96", "0.00", "up")
    assert dims[("reason", "COB_OVERPAYMENT")] == ("1", "27.00", "0.00", "27.00", "down")
    assert dims[("reason", "PATIENT_OVERPAYMENT")] == ("1", "15.00", "0.00", "15.00", "down")
    assert dims[("payer", "87726")] == ("1", "155.50", "0.00", "0.00", "flat")  # 04-08 is older than both windows
    assert dims[("payer", "12202")][:2] == ("1", "99.96")
    assert dims[("billing_provider", "1467523894")] == ("4", "297.46", "99.96", "42.00", "up")
    # CARCs and procedures of the payments behind each refund; the routine ones (contractual CO-45,
    # PR-1/2/3 on a normal adjudication, mappings/routine_adjustment_codes.csv) are no cause
    assert {k[1] for k in dims if k[0] == "carc"} == {"CO-253", "OA-23"}
    assert dims[("carc", "CO-253")][:2] == ("1", "99.96")  # Medicare sequestration
    assert dims[("carc", "OA-23")][:2] == ("1", "27.00")  # the secondary's prior-payer adjustment
    assert dims[("procedure", "99214")][:2] == ("2", "126.96")  # Medicare 99.96 + Medicaid 27.00
    assert dims[("procedure", "99203")][:2] == dims[("procedure", "93000")][:2] == ("1", "155.50")
    assert {k[1]: v[:2] for k, v in dims.items() if k[0] == "month"} == {
        "2026-04": ("1", "155.50"),
        "2026-07": ("1", "27.00"),
        "2026-08": ("1", "15.00"),
        "2026-10": ("1", "99.96"),
    }
    months = table(reports["november"] / "root_cause_months.csv")
    assert [m["month"] for m in months] == ["2026-04", "2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10", "2026-11"]
    patterns = table(reports["november"] / "root_cause_patterns.csv")
    assert [(p["rank"], p["pattern"], p["count"], p["amount"], p["payers"], p["recurring"]) for p in patterns] == [
        ("1", "DUP_NEW_ICN", "2", "255.46", "12202:1 87726:1", "yes"),  # both duplicates came under a new ICN
        ("2", "COB_SECONDARY_OVERPAID", "1", "27.00", "77099:1", "no"),
        ("3", "PATIENT_PAID_OVER_RESPONSIBILITY", "1", "15.00", "patient:1", "no"),
    ]


def test_cms838_for_2026q4(reports: dict[str, Any]) -> None:
    """One Medicare credit: JOHNSON ROBERT (MBI 1EG4TE5MK73), ICN 22627500456700 paid 2026-10-16
    for the 2026-09-08 visit, 99.96, reason 1 (duplicate); repaid by check 5001 on 2026-11-02 (C),
    nothing outstanding; the cost report of 2026 is open (closed through 2025-12-31)."""
    (row,) = table(reports["november"] / "cms838-2026Q4.csv")
    pick = (
        "medicare_part",
        "beneficiary_name",
        "mbi",
        "icn",
        "type_of_bill",
        "admission_or_from_date",
        "discharge_or_through_date",
        "paid_date",
        "cost_report",
        "credit_balance",
        "amount_repaid",
        "method_of_payment",
        "amount_outstanding",
        "reason",
    )
    assert tuple(row[c] for c in pick) == (
        "B",
        "JOHNSON, ROBERT",
        "1EG4TE5MK73",
        "22627500456700",
        "",
        "2026-09-08",
        "2026-09-08",
        "2026-10-16",
        "O",
        "99.96",
        "99.96",
        "C",
        "0.00",
        "1",
    )
    assert "duplicate of ICN 22626100123400" in row["comments"] and "99.96 to recover" in row["comments"]
    text = pdf_text(reports["november"] / "cms838-2026Q4.pdf")
    assert "For the calendar quarter ended 12/31/2026 (2026Q4)" in text
    assert "[X] The Credit Balance Report Detail Page(s) is attached (1 credit balance(s))." in text
    assert "Provider number: 381234" in text
    for value in ("JOHNSON,", "1EG4TE5MK73", "22627500456700", "2026-10-16", "99.96", "PART B"):
        assert value in text
    # the credit arose 2026-10-16: nothing to report for 2026Q3
    assert table(reports["q3"] / "cms838-2026Q3.csv") == []
    assert "[X] There are no Medicare credit balances to report for this quarter" in pdf_text(reports["q3"] / "cms838-2026Q3.pdf")


def test_cms838_reason_of_medicare_paying_a_claim_it_was_not_billed(tmp_path: Path) -> None:
    """tests/fixtures/engine/medicare-paid-claim-billed-to-another-payer: Medicare, never billed,
    paid RFM2729001 as primary (96.00, 2026-08-21); on the 2026Q3 CMS-838 its credit is reason 2
    (another insurer primary: the claim went to Blue River as primary), not 3, and the comment says so."""
    folder = FIXTURES / "engine" / "medicare-paid-claim-billed-to-another-payer"
    db = f"sqlite:///{tmp_path / 'e.db'}"
    cli("run", folder, "--db", db, "--out", tmp_path / "out", "--as-of", "2026-11-27", "--workers", "1")
    cli("report", "--db", db, "--out", tmp_path / "rep", "--as-of", "2026-11-27")
    (row,) = table(tmp_path / "rep" / "cms838-2026Q3.csv")
    pick = ("medicare_part", "beneficiary_name", "mbi", "icn", "paid_date", "credit_balance", "amount_outstanding", "reason")
    assert tuple(row[c] for c in pick) == ("B", "HALVORSEN, MARGARET", "4TR7WA2KD61", "22623300729010", "2026-08-21", "96.00", "96.00", "2")
    assert row["comments"] == (
        "Medicare was not billed: the claim was billed as primary to BLUE RIVER HEALTH PLAN (87726), "
        "yet Medicare processed it as primary; its whole payment is refunded"
    )
    assert "balance left after contractual adjustments" not in pdf_text(tmp_path / "rep" / "cms838-2026Q3.pdf")


def test_refund_packets(reports: dict[str, Any]) -> None:
    """Approved payer refunds get a letter and remittance form per payer; the held patient credit a
    plain-language notice; Medicare's (sent, then a double refund) gets no new packet."""
    folder = reports["november"] / "packets"
    assert sorted(p.name for p in folder.iterdir()) == [
        "mail_merge.csv",
        f"patient-{reports['ids']['RFM2606001']}.pdf",
        "patients.pdf",
        "payer-77099-1467523894.pdf",
        "payer-87726-1467523894.pdf",
        "payers.pdf",
    ]
    blue = pdf_text(folder / "payer-87726-1467523894.pdf")
    assert "Re: Refund of overpayments - 1 claim, total $155.50" in blue
    assert "NPI 1467523894 TIN 376012345" in blue and "Overpayment Recovery Unit" in blue  # configured [payers."87726"]
    assert "Check amount: $155.50" in blue
    assert "GARCIA, MARIA BRH112233401 BRH2604060342 RFM2602001 2026-03-04 Duplicate payment $155.50" in blue
    medicaid = pdf_text(folder / "payer-77099-1467523894.pdf")
    assert "TAYLOR, DAVID SM40028813 SM2618100773 RFM2605001 2026-06-09" in medicaid and "$27.00" in medicaid
    # STATE MEDICAID is not configured: its address is that of its 835 (N1*PR N3/N4)
    assert "STATE MEDICAID PO BOX 19122 SPRINGFIELD, IL 62794-9122" in medicaid
    notice = pdf_text(folder / f"patient-{reports['ids']['RFM2606001']}.pdf")
    assert "Dear Karen Lee," in notice
    assert "credit of $15.00 for your visit on July 21, 2026" in notice
    assert "you paid $40.00 for this visit" in notice and "your share of the cost was $25.00" in notice
    assert "less than $20.00, we are keeping it on your account" in notice
    # Karen Lee is the subscriber (no 2010CA): her 2010BA address, under her name
    assert "KAREN LEE 4401 SUNSET TERRACE SPRINGFIELD, IL 62711" in notice


def test_report_summary_and_usage_errors(reports: dict[str, Any], tmp_path: Path) -> None:
    """report.json lists what was written; a bad quarter is a usage error (exit 2)."""
    import json

    summary = json.loads((reports["november"] / "report.json").read_text())
    assert summary["worklist"] == {"count": 3, "outstanding": "197.50", "overdue": 3}
    assert summary["followups"] == {"DOUBLE_REFUND": 1} and summary["cms838_rows"] == 1
    assert "dashboard.html" in summary["files"] and "cms838-2026Q4.pdf" in summary["files"]
    assert {"packets/payers.pdf", "packets/patients.pdf", "packets/mail_merge.csv"} <= set(summary["files"])
    assert summary["letters"] == {"payer": 2, "patient": 1, "not_mailable": []}
    assert summary["warnings"] == []  # RIVERBEND is configured, and so is the CMS-838's provider number
    bad = CliRunner().invoke(app, ["report", "--db", reports["db"], "--out", str(tmp_path), "--quarter", "2026Q5"])
    assert (bad.exit_code, bad.output) == (2, "edirecon: --quarter '2026Q5' is not a quarter like 2026Q4\n")


def test_report_shows_no_progress_off_a_terminal(in_repo: Path, tmp_path: Path) -> None:
    """Run off a terminal (as here), `report` writes its summary to stdout and nothing to stderr:
    no progress bar (tests/cli/test_report_progress.py), not even an empty line."""
    db = f"sqlite:///{tmp_path / 'e.db'}"
    run = CliRunner().invoke(app, ["run", "sample_edi/duplicate-payment", "--db", db, "--out", str(tmp_path / "out"), "--as-of", "2026-11-27"])
    assert run.exit_code == 0, run.output
    result = CliRunner().invoke(app, ["report", "--db", db, "--out", str(tmp_path / "report"), "--as-of", "2026-11-27"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        "worklist",
        "follow-ups",
        "reports written to " + str(tmp_path / "report") + "/",
    ]
