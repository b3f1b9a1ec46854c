"""The CMS-838 of a hospital billing Medicare Part A: the 837I's type of bill (CLM05-1 + CLM05-3),
statement period (DTP*434) and admission date (DTP*435), from the parser through the store (revision
0005) to the CSV and the PDF.  Figures are worked by hand in the scenario's README
(tests/fixtures/engine/medicare-part-a-inpatient-and-outpatient)."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, SAMPLE_EDI
from pypdf import PdfReader
from sqlalchemy import select
from typer.testing import CliRunner

from edirecon import parsers
from edirecon.cli import app
from edirecon.engine.ingest import ingestor as ingest
from edirecon.engine.store import schema as t
from edirecon.engine.store.connection import HEAD, Store
from edirecon.parsers.serialize import record_dict

SCENARIO = FIXTURES / "engine" / "medicare-part-a-inpatient-and-outpatient"
CONFIG = SCENARIO / "config.toml"
CLAIMS = SCENARIO / "claims-institutional.837"
PICK = (
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
    "amount_outstanding",
    "reason",
)
INPATIENT = ("A", "NELSON, DOROTHY", "3QA9C12DF45", "22626800345600", "111", "2026-08-03", "2026-08-07", "2026-08-28", "O", "860.00", "0.00", "860.00", "3")
OUTPATIENT = ("A", "PARKER, WALTER", "6KW2H47NP83", "22626800345700", "131", "2026-08-10", "2026-08-11", "2026-08-28", "O", "45.20", "0.00", "45.20", "3")


def cli(*args: Any) -> None:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output


def run_and_report(db: str, root: Path, *inputs: Path) -> Path:
    """``edirecon run`` as of 2026-09-15, then ``edirecon report --quarter 2026Q3`` as of 2026-10-05."""
    cli("run", *(inputs or (SCENARIO,)), "--db", db, "--out", root / "out", "--as-of", "2026-09-15", "--config", CONFIG, "--workers", "1")
    cli("report", "--db", db, "--out", root / "report", "--as-of", "2026-10-05", "--quarter", "2026Q3", "--config", CONFIG)
    return root / "report"


def cms838_csv(report: Path) -> list[tuple[str, ...]]:
    with open(report / "cms838-2026Q3.csv", newline="", encoding="utf-8") as fh:
        return [tuple(row[c] for c in PICK) for row in csv.DictReader(fh)]


def pdf_text(path: Path) -> str:
    return " ".join(" ".join(page.extract_text() for page in PdfReader(path).pages).split())


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("cms838")
    db = f"sqlite:///{root / 'store.db'}"
    return run_and_report(db, root), db


def test_837i_claims_carry_type_of_bill_and_positioned_dates() -> None:
    """The inpatient claim reads as type of bill 111, statement 08-03..08-07 and admission 08-03 (DT, hour dropped), each DTP with its segment."""
    records, summary = parsers.parse_file(CLAIMS)
    assert summary.findings == []
    inpatient, outpatient = records
    assert (inpatient.type_of_bill, inpatient.statement_from, inpatient.statement_to, inpatient.admission_date) == (
        "111",
        date(2026, 8, 3),
        date(2026, 8, 7),
        date(2026, 8, 3),
    )
    assert inpatient.discharge_date is None  # DTP*096*TM is an hour only
    data = CLAIMS.read_bytes()
    for source, segment, text in (
        (inpatient.statement_source, 23, b"DTP*434*RD8*20260803-20260807~"),
        (inpatient.admission_source, 24, b"DTP*435*DT*202608031430~"),
        (outpatient.statement_source, 45, b"DTP*434*RD8*20260810-20260811~"),
    ):
        assert source is not None and (source.segment, source.loop, source.st02) == (segment, "2300", "8181")
        assert data[source.offset : source.offset + len(text)] == text
    assert (outpatient.type_of_bill, outpatient.statement_from, outpatient.statement_to) == ("131", date(2026, 8, 10), date(2026, 8, 11))
    assert (outpatient.admission_date, outpatient.admission_source) == (None, None)


@pytest.mark.parametrize("dtp, admitted", [("DTP*435*D8*20260802", date(2026, 8, 2)), ("DTP*435*DT*202608022340", date(2026, 8, 2))])
def test_admission_date_as_d8_or_dt(tmp_path: Path, dtp: str, admitted: date) -> None:
    """DTP*435 is read as a date whether sent as D8 or as DT with the hour."""
    path = tmp_path / "claims.837"
    path.write_bytes(CLAIMS.read_bytes().replace(b"DTP*435*DT*202608031430", dtp.encode()))
    records, summary = parsers.parse_file(path)
    assert summary.findings == [] and records[0].admission_date == admitted


def test_malformed_admission_date_is_a_finding_not_a_traceback(tmp_path: Path) -> None:
    """A DT admission that is no date gives null and a positioned INVALID_DATE finding; the claim is kept."""
    path = tmp_path / "claims.837"
    path.write_bytes(CLAIMS.read_bytes().replace(b"DTP*435*DT*202608031430", b"DTP*435*DT*202613031430"))
    records, summary = parsers.parse_file(path)
    assert [(f.code, f.source.segment) for f in summary.findings] == [("INVALID_DATE", 24)]
    assert (records[0].admission_date, records[0].admission_source.segment, records[0].type_of_bill) == (None, 24, "111")


def test_positions_are_written_for_837i_claims_only() -> None:
    """``parse`` JSON has statement_source/admission_source on 837I claims, and no new key on an 837P claim."""
    inpatient = record_dict(parsers.parse_file(CLAIMS)[0][0])
    assert inpatient["statement_source"]["segment"] == 23 and inpatient["admission_source"]["segment"] == 24
    professional = record_dict(parsers.parse_file(SAMPLE_EDI / "clean-payment" / "claims.837")[0][0])
    assert professional["transaction_type"] == "837P"
    assert "statement_source" not in professional and "admission_source" not in professional


def test_store_keeps_type_of_bill_statement_period_and_admission(report: tuple[Path, str]) -> None:
    """Each 837I claim row has its type of bill, DTP*434 period and DTP*435 admission date."""
    store = Store(report[1])
    with store.engine.connect() as conn:
        c = t.claims.c
        rows = conn.execute(
            select(c.patient_control_number, c.type_of_bill, c.statement_from, c.statement_to, c.admission_date).order_by(c.patient_control_number)
        ).all()
    store.dispose()
    assert [tuple(r) for r in rows] == [
        ("RCH2608101", "111", date(2026, 8, 3), date(2026, 8, 7), date(2026, 8, 3)),
        ("RCH2608102", "131", date(2026, 8, 10), date(2026, 8, 11), None),
    ]


def test_cms838_csv_has_type_of_bill_and_inpatient_or_outpatient_dates(report: tuple[Path, str]) -> None:
    """Inpatient 111: admission 08-03 and discharge 08-07; outpatient 131: from 08-10 through 08-11 (both Part A, reason 3)."""
    assert cms838_csv(report[0]) == [INPATIENT, OUTPATIENT]


def test_cms838_pdf_shows_type_of_bill_and_dates(report: tuple[Path, str]) -> None:
    """The PDF's Part A detail page has both rows with their type of bill and dates."""
    text = pdf_text(report[0] / "cms838-2026Q3.pdf")
    assert "PART A" in text and "Provider number: 140187" in text
    assert "3QA9C12DF45 22626800345600 111 2026-08-03 2026-08-07 2026-08-28" in text
    assert "6KW2H47NP83 22626800345700 131 2026-08-10 2026-08-11 2026-08-28" in text


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return str(request.getfixturevalue("pg_url"))


def test_upgrade_of_a_store_made_at_revision_0004(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store ingested at revision 0004 upgrades to the current revision: its claims are kept without a type of bill
    (the CMS-838 falls back to service dates), and 837I claims ingested afterwards have theirs."""
    store = Store(store_url)
    store.upgrade("0004")
    row = ingest.claim_row
    payment_row = ingest.payment_row
    remittance_row = ingest.remittance_row
    with monkeypatch.context() as m:  # the claim and claim payment columns as revision 0004 had them
        # without 0005's four institutional columns and 0010's mailing columns (last), and 0006's other_payer_ids
        skip = ingest.CLAIM_COLUMNS.index("other_payer_ids") - ingest.CLAIM_COLUMNS.index("transaction_type")  # claim_row starts there
        later = len(ingest.CLAIM_COLUMNS) - ingest.CLAIM_COLUMNS.index("type_of_bill")
        m.setattr(ingest, "CLAIM_COLUMNS", [c for c in ingest.CLAIM_COLUMNS[:-later] if c != "other_payer_ids"])
        m.setattr(ingest, "claim_row", lambda *a: (lambda r: r[:skip] + r[skip + 1 :])(row(*a)[:-later]))
        m.setattr(ingest, "remittance_row", lambda *a: {k: v for k, v in remittance_row(*a).items() if k not in ingest.PAYER_ADDRESS_COLUMNS})
        # and without 0007's crossover_carrier_id (last)
        m.setattr(ingest, "PAYMENT_COLUMNS", ingest.PAYMENT_COLUMNS[:-1])
        m.setattr(ingest, "payment_row", lambda *a: payment_row(*a)[:-1])
        for path in sorted(SCENARIO.glob("*.8*")):
            ingest.Ingestor(store).ingest(path)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == "0004"
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM claims").scalar_one() == 2
    report = run_and_report(store_url, tmp_path, SCENARIO, SAMPLE_EDI / "institutional-and-dental" / "claims-institutional.837")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == HEAD
        c = t.claims.c
        rows = conn.execute(
            select(c.patient_control_number, c.type_of_bill, c.statement_from, c.statement_to, c.admission_date).order_by(c.patient_control_number)
        ).all()
    store.dispose()
    assert [tuple(r) for r in rows] == [
        ("RCH2608101", "", None, None, None),
        ("RCH2608102", "", None, None, None),
        ("RCH2609001", "131", date(2026, 3, 15), date(2026, 3, 15), None),
    ]
    # without the stored 837I fields: no type of bill, the encounters' first and last service dates
    assert cms838_csv(report) == [(*INPATIENT[:4], "", *INPATIENT[5:]), (*OUTPATIENT[:4], "", *OUTPATIENT[5:])]
