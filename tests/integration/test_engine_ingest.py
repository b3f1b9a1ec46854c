"""Ingestion details: classification by content, patient-payment rows, unsupported inputs, log events."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import sqlalchemy
import structlog
from conftest import FIXTURES, SAMPLE_EDI
from structlog.testing import capture_logs

from edirecon.engine.config import Config
from edirecon.engine.ingest.ingestor import classify
from edirecon.engine.run import run

AS_OF = date(2026, 11, 27)


def test_files_are_classified_by_content_not_name(tmp_path: Path) -> None:
    """An 835 named .txt is X12, a payments CSV named .dat is patient payments, a PDF-ish file is unsupported."""
    x12 = tmp_path / "remittance.txt"
    x12.write_bytes(b"\xef\xbb\xbf\r\n" + (SAMPLE_EDI / "clean-payment" / "remit.835").read_bytes())
    payments = tmp_path / "front-desk.dat"
    payments.write_text("patient_control_number,amount,paid_on,payment_id,billing_provider_npi\nRFM1,10.00,2026-05-01,P1,1467523894\n")
    other = tmp_path / "scan.pdf"
    other.write_bytes(b"%PDF-1.7\n")
    assert [classify(p) for p in (x12, payments, other)] == ["x12", "patient_payments", "unsupported"]


def test_bad_patient_payment_rows_are_parse_errors_and_good_rows_are_kept(tmp_path: Path) -> None:
    """A row with a bad amount or date is a PARSE_ERROR naming its row; the good rows are still ingested."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "claims.837").write_bytes((SAMPLE_EDI / "patient-copay-overpaid" / "claims.837").read_bytes())
    (folder / "remit.835").write_bytes((SAMPLE_EDI / "patient-copay-overpaid" / "remit.835").read_bytes())
    (folder / "payments.csv").write_text(
        "patient_control_number,amount,paid_on,payment_id\n"
        "RFM2606001,40.00,2026-06-02,FD-1\n"
        "RFM2606001,forty,2026-06-03,FD-2\n"
        "RFM2606001,5.00,06/04/2026,FD-3\n"
    )
    result = run([folder], f"sqlite:///{tmp_path}/s.db", tmp_path / "out", AS_OF, Config())
    errors = [x for x in result.outputs["exceptions"] if x["kind"] == "PARSE_ERROR"]
    assert sorted(x["detail"] for x in errors) == [
        "row 3: amount 'forty' is not a decimal amount",
        "row 4: paid_on '06/04/2026' is not an ISO date (YYYY-MM-DD)",
    ]
    (refund,) = result.outputs["refund_requests"]
    assert (refund["reason"], str(refund["amount"])) == ("PATIENT_OVERPAYMENT", "15.00")


def test_unsupported_files_and_transaction_sets_are_reported_not_ingested(tmp_path: Path) -> None:
    """A 999 acknowledgment is UNSUPPORTED_TRANSACTION, a random file UNSUPPORTED_FILE; nothing else changes."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "ack.x12").write_bytes((FIXTURES / "bad" / "unsupported-999-acknowledgment.x12").read_bytes())
    (folder / "notes.bin").write_bytes(b"\x00\x01 not an edi file")
    result = run([folder], f"sqlite:///{tmp_path}/s.db", tmp_path / "out", AS_OF, Config())
    kinds = sorted(x["kind"] for x in result.outputs["exceptions"])
    assert kinds == ["UNSUPPORTED_FILE", "UNSUPPORTED_TRANSACTION"]
    assert result.outputs["refund_requests"] == [] and result.summary["claims"] == 0


def test_log_events_are_structured_and_carry_no_patient_data(tmp_path: Path, in_repo: Path) -> None:
    """Each file gives received/ingested events with file and hash; no patient name, member id or CLM01 appears."""
    structlog.reset_defaults()
    with capture_logs() as events:
        # one process: capture_logs sees this process's events (pool processes log to stderr)
        run([Path("sample_edi/secondary-overpaid")], f"sqlite:///{tmp_path}/s.db", tmp_path / "out", AS_OF, Config(), workers=1)
    names = [e["event"] for e in events]
    assert names.count("file_received") == 4 and names.count("file_ingested") == 4 and names[-1] == "run_finished"
    assert all("file" in e and "sha256" in e for e in events if e["event"] == "file_received")
    text = repr(events)
    for private in ("TAYLOR", "DAVID", "BRH555012301", "SM40028813", "RFM2605001", "1990-12-05"):
        assert private not in text


@pytest.mark.parametrize(
    ("fixture", "colliding_isa13", "good_isa13", "good_trace"),
    [
        ("isa16-equals-element-separator-then-clean-interchange.835", "000620315", "000621388", "0000468830"),
        ("terminator-equals-element-separator-then-clean-interchange.835", "000620412", "000620733", "0000433018"),
    ],
    ids=["isa16-is-element-separator", "terminator-is-element-separator"],
)
def test_interchange_with_colliding_delimiters_is_not_ingested_but_the_next_one_is(
    fixture: str, colliding_isa13: str, good_isa13: str, good_trace: str, tmp_path: Path
) -> None:
    """Nothing of an interchange whose delimiters collide is ingested (a PARSE_ERROR says why); the clean interchange after it is."""
    path = FIXTURES / "bad" / fixture
    db = tmp_path / "s.db"
    result = run([path], f"sqlite:///{db}", tmp_path / "out", AS_OF, Config())
    assert result.report.claim_payments == 1
    errors = [x for x in result.outputs["exceptions"] if x["kind"] == "PARSE_ERROR"]
    assert errors[0]["detail"].startswith(f"DELIMITER_COLLISION at byte 0: interchange ISA13={colliding_isa13}: ")
    assert (errors[0]["segment"], errors[0]["severity"]) == (1, "error")
    with sqlalchemy.create_engine(f"sqlite:///{db}").connect() as conn:
        ingested = conn.execute(sqlalchemy.text("SELECT isa13, ingested FROM transactions ORDER BY ordinal")).all()
        traces = conn.execute(sqlalchemy.text("SELECT trace_number FROM remittances")).scalars().all()
    assert [(isa13, bool(flag)) for isa13, flag in ingested if isa13 == good_isa13] == [(good_isa13, True)]
    assert all(not flag for isa13, flag in ingested if isa13 == colliding_isa13)
    assert traces == [good_trace]
