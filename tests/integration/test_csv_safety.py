"""Spreadsheet formula injection (OWASP "CSV Injection"): formula payloads in 837/835 names and ids
never start a formula in a CSV of `run` or `report`, while amounts stay plain and JSON Lines raw.

The scenario is tests/fixtures/engine/formula-payloads-in-names-and-ids (its README lists every
payload).  It is run from inside its folder, so that its source files are named `@remit-2.835` and
`=remit-3.835` in the outputs.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, REPO
from typer.testing import CliRunner

from edirecon.cli import app
from edirecon.engine.record.csvout import AMOUNT, Lines

SCENARIO = FIXTURES / "engine" / "formula-payloads-in-names-and-ids"
AS_OF = "2026-11-27"
#: how a spreadsheet cell can begin a formula (OWASP)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
#: a plain number: the only kind of cell allowed to begin with "-" (an amount or a count)
PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]{2})?")

#: the amount columns of refund_requests, credit_balances and exceptions
AMOUNTS = {"amount", "total_charge", "payer_paid", "patient_paid", "write_offs", "patient_responsibility", "balance"}

PATIENT_1 = '=HYPERLINK("//x.example/a","y"), ANNA'
PATIENT_2 = "+SUM(1+1), OSCAR"
CLAIM_1, CLAIM_2, CLAIM_3 = "@SUM(1+1)", "-100.00", '=HYPERLINK("//x.example/u","open")'
MEMBER_1 = "+cmd|'/C calc'!A0"
MEMBER_2 = "1EG4TE5MK73\r=cmd|'/C calc'!A0"  # a carriage return, then a formula: quoted, or a spreadsheet starts a row there
PAYER = '=HYPERLINK("//x.example/p","MEDICARE PART B")'


def cli(*args: Any) -> Any:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def table(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    root = tmp_path_factory.mktemp("formulas")
    db = f"sqlite:///{root / 'store.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(SCENARIO)
        cli("run", ".", "--db", db, "--out", root / "run", "--as-of", AS_OF, "--workers", "1")
        cli("report", "--db", db, "--out", root / "report", "--as-of", AS_OF)
    yield {"run": root / "run", "report": root / "report"}


def every_csv(outputs: dict[str, Path]) -> list[Path]:
    return sorted(p for folder in outputs.values() for p in folder.rglob("*.csv"))


def test_every_csv_of_run_and_report_is_found(outputs: dict[str, Path]) -> None:
    """The check below reads the run's 5 CSVs and the report's 12, the formula payloads among their rows."""
    names = {p.relative_to(p.parent.parent).as_posix() for p in every_csv(outputs)}
    assert names == {
        "run/refund_requests.csv",
        "run/recoupments.csv",
        "run/credit_balances.csv",
        "run/exceptions.csv",
        "run/workflow.csv",
        "report/worklist.csv",
        "report/worklist_totals.csv",
        "report/followups.csv",
        "report/audit_remittances.csv",
        "report/audit_payer_months.csv",
        "report/audit_discrepancies.csv",
        "report/root_cause_dimensions.csv",
        "report/root_cause_months.csv",
        "report/root_cause_patterns.csv",
        "report/cms838-2026Q3.csv",
        "report/workflow.csv",
        "packets/mail_merge.csv",  # report/packets/ (no letter here: nothing approved; tests/integration/test_letters.py has them)
    }


def test_no_cell_of_any_csv_starts_a_formula(outputs: dict[str, Path]) -> None:
    """Every cell of every CSV either begins with none of = + - @ tab CR, or is a plain number (an amount or count)."""
    offending = []
    for path in every_csv(outputs):
        with open(path, newline="", encoding="utf-8") as fh:
            for number, row in enumerate(csv.reader(fh), start=1):
                offending += [(path.name, number, cell) for cell in row if cell.startswith(FORMULA_START) and not PLAIN_NUMBER.fullmatch(cell)]
    assert offending == []


def test_payloads_are_written_as_text_with_a_leading_apostrophe(outputs: dict[str, Path]) -> None:
    """Names, claim numbers, member ids, payer names and file names that begin like a formula get one leading '."""
    run, rep = outputs["run"], outputs["report"]
    refunds = {r["reason"]: r for r in table(run / "refund_requests.csv")}
    dup, patient = refunds["DUPLICATE_PAYMENT"], refunds["PATIENT_OVERPAYMENT"]
    assert (dup["patient_control_number"], dup["patient_name"], dup["member_id"], dup["payer_name"]) == (
        "'" + CLAIM_1,
        "'" + PATIENT_1,
        "'" + MEMBER_1,
        "'" + PAYER,
    )
    assert (patient["patient_control_number"], patient["patient_name"], patient["member_id"]) == ("'" + CLAIM_2, "'" + PATIENT_2, MEMBER_2)
    for name in ("refund_requests.csv", "credit_balances.csv"):
        assert f',"{MEMBER_2}",'.encode() in (run / name).read_bytes()  # the CR inside the member id is quoted
    [unmatched] = table(run / "exceptions.csv")
    assert (unmatched["source_file"], unmatched["patient_control_number"]) == ("'=remit-3.835", "'" + CLAIM_3)
    remittance_files = {r["trace_number"]: r["source_file"] for r in table(rep / "audit_remittances.csv")}
    assert remittance_files == {"0000552301": "remit-1.835", "10055120": "'@remit-2.835", "0000552303": "'=remit-3.835"}
    worklist = {r["reason"]: r for r in table(rep / "worklist.csv")}
    assert (worklist["DUPLICATE_PAYMENT"]["payer_name"], worklist["PATIENT_OVERPAYMENT"]["patient_control_number"]) == ("'" + PAYER, "'" + CLAIM_2)
    [medicare] = table(rep / "cms838-2026Q3.csv")
    assert (medicare["beneficiary_name"], medicare["mbi"], medicare["patient_control_number"]) == ("'" + PATIENT_1, "'" + MEMBER_1, "'" + CLAIM_1)
    assert table(rep / "worklist_totals.csv")[0]["payee_name"] == "'" + PAYER


def test_amounts_stay_plain_numbers(outputs: dict[str, Path]) -> None:
    """The credit balance of -100.00 is written -100.00 beside its claim number '-100.00 (the column's type decides, not the value)."""
    balances = {b["patient_control_number"]: b for b in table(outputs["run"] / "credit_balances.csv")}
    assert (balances["'" + CLAIM_2]["balance"], balances["'" + CLAIM_2]["patient_paid"], balances["'" + CLAIM_2]["days_in_credit"]) == (
        "-100.00",
        "120.00",
        "247",
    )
    assert balances["'" + CLAIM_1]["balance"] == "19.60"
    [unmatched] = table(outputs["report"] / "audit_discrepancies.csv")
    assert (unmatched["amount"], unmatched["segment"]) == ("45.00", "17")


def test_json_lines_keep_the_raw_values(outputs: dict[str, Path]) -> None:
    """refund_requests.jsonl, credit_balances.jsonl and exceptions.jsonl carry the names and ids exactly as the 837/835 had them."""
    run = outputs["run"]
    refunds = {r["reason"]: r for r in jsonl(run / "refund_requests.jsonl")}
    assert (refunds["DUPLICATE_PAYMENT"]["patient_name"], refunds["DUPLICATE_PAYMENT"]["payer_name"], refunds["DUPLICATE_PAYMENT"]["member_id"]) == (
        PATIENT_1,
        PAYER,
        MEMBER_1,
    )
    assert [ev["file"] for ev in refunds["DUPLICATE_PAYMENT"]["evidence"]] == ["remit-1.835", "@remit-2.835"]
    assert {b["patient_control_number"]: b["balance"] for b in jsonl(run / "credit_balances.jsonl")} == {CLAIM_2: "-100.00", CLAIM_1: "19.60"}
    [unmatched] = jsonl(run / "exceptions.jsonl")
    assert (unmatched["source_file"], unmatched["patient_control_number"]) == ("=remit-3.835", CLAIM_3)


def test_csv_text_cells_are_the_json_values_behind_one_apostrophe(outputs: dict[str, Path]) -> None:
    """Every CSV cell of the run equals its JSON Lines value, or that value with one leading ' when it begins like a formula."""
    run = outputs["run"]
    for name in ("refund_requests", "credit_balances", "exceptions"):
        rows = zip(table(run / f"{name}.csv"), jsonl(run / f"{name}.jsonl"), strict=True)
        for csv_row, json_row in rows:
            for column, cell in csv_row.items():
                raw = json_row[column]
                if column == "evidence" or not isinstance(raw, str):
                    continue
                assert cell == ("'" + raw if raw.startswith(FORMULA_START) and column not in AMOUNTS else raw), (name, column)


def test_lines_neutralise_tab_and_carriage_return_and_respect_declared_types() -> None:
    """A text cell beginning with a tab or CR gets its '; columns declared amounts (also ones named by data) stay as they are."""
    lines = Lines(["payee", "payee_name", "outstanding", "over-90", "days_in_credit"], {"over-90": AMOUNT})
    line = lines.row(["\t=1+1", "\rMEDICARE PART B", "-100.00", "-12.50", "-3"])
    assert next(csv.reader(io.StringIO(line, newline=""))) == ["'\t=1+1", "'\rMEDICARE PART B", "-100.00", "-12.50", "-3"]
    assert Lines(["payee", "over-90"]).row(["87726", "-12.50"]) == "87726,'-12.50\n"  # undeclared: text


def test_a_carriage_return_inside_a_cell_is_quoted() -> None:
    """Regression: a CR inside a member id was written unquoted (the writer quoted only "\\n"), so a spreadsheet split the row there."""
    line = Lines(["member_id", "balance"]).row(["1EG4TE5MK73\r=SUM(1+1)", "-100.00"])
    assert line == '"1EG4TE5MK73\r=SUM(1+1)",-100.00\n'


def test_no_csv_is_written_outside_record_csvout() -> None:
    """Every CSV writer of the project goes through engine/record/csvout.py: no other module makes a csv.writer."""
    sources = [*(REPO / "engine").rglob("*.py"), *(REPO / "parsers").rglob("*.py"), REPO / "cli.py"]
    writers = [p.relative_to(REPO).as_posix() for p in sources if re.search(r"csv\.(writer|DictWriter)\(", p.read_text(encoding="utf-8"))]
    assert writers == ["engine/record/csvout.py"]
