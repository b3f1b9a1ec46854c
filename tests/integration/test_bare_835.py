"""Issue 12: an 835 handed out by a payer portal as a bare ST..SE transaction set, with no ISA/GS.

It is read with the delimiters of its ST segment and a NO_ENVELOPE warning (parse), and ingested
like any remittance (run), once: the remittance is known by payer and TRN02 alone.
The scenario is tests/fixtures/engine/duplicate-in-bare-835-without-envelope (see its README);
tests/fixtures/bad/bare-835-pipe-separated-no-isa-gs.835 has '|' and '>' for separators.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

from conftest import FIXTURES, SAMPLE_EDI
from goldens import normalise_outputs
from typer.testing import CliRunner

from edirecon import parsers
from edirecon.cli import app
from edirecon.engine.config import Config
from edirecon.engine.ingest.ingestor import classify
from edirecon.engine.run import run

SCENARIO = FIXTURES / "engine" / "duplicate-in-bare-835-without-envelope"
BARE = SCENARIO / "remit-2-portal-bare.835"
PIPES = FIXTURES / "bad" / "bare-835-pipe-separated-no-isa-gs.835"
AS_OF = date(2026, 11, 27)


def test_parse_reads_a_bare_835_with_a_warning() -> None:
    """`edirecon parse` prints the bare 835's claim payment, warns NO_ENVELOPE once and exits 0."""
    result = CliRunner().invoke(app, ["parse", "--format-version", "1", str(BARE)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and '"patient_control_number":"RFM3102001"' in lines[0]
    assert '"isa13":"","gs06":"","st02":"35240"' in lines[0]
    v2 = CliRunner().invoke(app, ["parse", str(BARE)])  # format version 2: the envelope ids on the transaction_set line
    assert (v2.exit_code, v2.stderr) == (0, result.stderr)
    kinds = [line.split(",", 1)[0] for line in v2.stdout.splitlines()]
    assert kinds == ['{"record":"format"', '{"record":"transaction_set"', '{"record":"claim_payment"']
    assert '"isa13":"","gs06":"","st02":"35240"' in v2.stdout.splitlines()[1]
    assert '"values":["RFM3102001",' in v2.stdout.splitlines()[2]
    assert [line.split(": ", 1)[1].split(" ", 1)[0] for line in result.stderr.splitlines()] == ["NO_ENVELOPE"]
    assert f"{BARE}:1:0: NO_ENVELOPE transaction set ST02=35240 has no ISA/GS envelope" in result.stderr


def test_delimiters_come_from_the_st_segment_and_the_content() -> None:
    """With '|' after ST, '~' ending it and 'HC>99214' in SVC01, the composite splits on '>'."""
    records, summary = parsers.parse_file(PIPES)
    assert [(r.patient_control_number, str(r.paid), r.trusted) for r in records] == [("RFM2601001", "110.00", True), ("RFM2601002", "76.00", True)]
    assert [(s.procedure_qualifier, s.procedure_code) for s in records[0].services] == [("HC", "99214"), ("HC", "36415")]
    assert (summary.interchanges, summary.functional_groups, summary.transaction_sets) == (0, 0, 1)


def test_text_starting_with_st_that_is_not_a_transaction_set_is_still_not_x12(tmp_path: Path) -> None:
    """A CSV whose header starts with 'ST' (no separator, ST01, ST02 and terminator) stays NOT_X12."""
    path = tmp_path / "statements.csv"
    path.write_text("STATEMENT_ID,PATIENT,AMOUNT\n1001,DOE JANE,25.00\n", encoding="ascii")
    records, summary = parsers.parse_file(path)
    assert (records, [f.code for f in summary.findings]) == ([], ["NOT_X12"])
    assert classify(path) == "unsupported" and classify(BARE) == "x12"


def test_the_same_bare_file_twice_changes_nothing(tmp_path: Path) -> None:
    """A second run over the same files (bare 835 included) ingests nothing and writes the same bytes."""
    db = f"sqlite:///{tmp_path}/store.db"
    first = run([SCENARIO], db, tmp_path / "first", AS_OF, Config())
    assert (first.report.files_ingested, first.report.claim_payments) == (3, 2)
    second = run([SCENARIO], db, tmp_path / "second", AS_OF, Config())
    assert second.report.files_ingested == 0 and second.report.files_skipped == 3
    # the clock taken out: the manifest's time and batch (goldens.normalise_outputs)
    first_files, second_files = ({p.name: p.read_bytes() for p in (tmp_path / run).iterdir()} for run in ("first", "second"))
    assert normalise_outputs(second_files) == normalise_outputs(first_files)


def test_the_bare_remittance_again_in_an_envelope_adds_nothing(tmp_path: Path) -> None:
    """The same remittance later received in its ISA/GS envelope (payer 87726, trace 31048817) is
    recognised by payer and trace number: no second payment, still one duplicate refund."""
    db = f"sqlite:///{tmp_path}/store.db"
    run([SCENARIO], db, tmp_path / "first", AS_OF, Config())
    sample = (SAMPLE_EDI / "duplicate-payment" / "remit-2.835").read_bytes().splitlines(keepends=True)
    enveloped = tmp_path / "in" / "remit-2-enveloped.835"
    enveloped.parent.mkdir()
    enveloped.write_bytes(b"".join(sample[:2]) + BARE.read_bytes() + b"".join(sample[-2:]))  # its ISA, GS ... GE, IEA
    again = run([enveloped], db, tmp_path / "second", AS_OF, Config())
    assert (again.report.files_ingested, again.report.claim_payments) == (1, 0)
    with open(tmp_path / "second" / "refund_requests.csv", newline="", encoding="utf-8") as fh:
        refunds = [(r["reason"], r["payer_claim_control_number"], r["amount"]) for r in csv.DictReader(fh)]
    assert refunds == [("DUPLICATE_PAYMENT", "BRH3104060342", "155.50")]
    with open(tmp_path / "second" / "exceptions.csv", newline="", encoding="utf-8") as fh:
        kinds = [(x["kind"], x["payer_id"], x["amount"]) for x in csv.DictReader(fh)]
    assert kinds == [("DUPLICATE_FILE", "87726", "155.50")]


def test_plb03_without_reference_is_not_a_delimiter_collision(tmp_path: Path) -> None:
    """A bare 835 holding only 'PLB|...|WO|99.96' (PLB03 a reason with no reference) is read as before: no DELIMITER_COLLISION."""
    text = PIPES.read_text(encoding="ascii")
    header = text[: text.index("LX|1~")].replace("BPR|I|186.00|", "BPR|I|99.96|")  # BPR02 = -(PLB04)
    body = header + "PLB|1467523894|20261231|WO|-99.96~\n"
    segments = body.count("~")
    path = tmp_path / "plb-only.835"
    path.write_text(body + f"SE|{segments + 1}|35001~\n", encoding="ascii")
    records, summary = parsers.parse_file(path)
    assert [f.code for f in summary.findings] == ["NO_ENVELOPE"]
    assert [(r.record, r.reason, str(r.amount), r.trusted) for r in records] == [("provider_adjustment", "WO", "-99.96", True)]
