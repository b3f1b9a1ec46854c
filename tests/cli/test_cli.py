"""The ``edirecon`` command line through typer's CliRunner: exact exit codes, output and messages.

Exit codes: 0 clean, 1 the input had error findings, 2 usage or unreadable input.  Findings go
to stderr as ``file:segment:offset: CODE message``; records go to stdout as JSON Lines.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import typer.main
from conftest import REPO
from typer.testing import CliRunner

from edirecon import parsers
from edirecon.cli import app

CLEAN_CLAIMS = "sample_edi/clean-payment/claims.837"
CLEAN_REMIT = "sample_edi/clean-payment/remit.835"
TRUNCATED_REMIT = "sample_edi/broken-file/remit-truncated.835"
FINDING_LINE = re.compile(r"^(?P<file>[^:]+):(?P<segment>\d+):(?P<offset>-?\d+): (?P<code>[A-Z_]+) (?P<message>\S.*)$")
TWO_DECIMALS = re.compile(r"^-?\d+\.\d{2}$")
#: money fields of claims, lines, claim payments and services (JSON: two-decimal strings)
MONEY_FIELDS = {"total_charge", "charge", "paid", "patient_responsibility", "amount", "allowed"}
COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def run(*args: str) -> Any:
    """Invoke the app; stdout and stderr are captured separately (``result.stdout``/``result.stderr``)."""
    return CliRunner().invoke(app, list(args))


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every stdout line parsed as one JSON object."""
    return [json.loads(line) for line in text.splitlines()]


def byte_offset(path: str, marker: bytes) -> int:
    """Where a segment starts in a file, found without the parser."""
    offset = (REPO / path).read_bytes().find(marker)
    assert offset >= 0, marker
    return offset


def money_values(obj: Any) -> list[Any]:
    """Every value of a money field, at any depth of a JSON object."""
    out: list[Any] = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            if key in MONEY_FIELDS and not isinstance(value, (dict, list)):
                out.append(value)
            else:
                out.extend(money_values(value))
    elif isinstance(obj, list):
        for item in obj:
            out.extend(money_values(item))
    return out


# ------------------------------------------------------------------------------------ parse
def test_parse_clean_claims_prints_one_json_object_per_claim(in_repo: Path) -> None:
    """`parse` on a clean 837 exits 0, prints nothing on stderr and one JSON object per CLM."""
    result = run("parse", "--format-version", "1", CLEAN_CLAIMS)
    assert result.exit_code == 0
    assert result.stderr == ""
    objects = json_lines(result.stdout)
    assert [o["patient_control_number"] for o in objects] == ["RFM2601001", "RFM2601002"]
    for obj in objects:
        assert list(obj)[:2] == ["record", "transaction_type"] and list(obj)[-1] == "source"
        assert (obj["record"], obj["transaction_type"], obj["trusted"]) == ("claim", "837P", True)
    assert [o["total_charge"] for o in objects] == ["205.00", "140.00"]
    assert [[line["charge"] for line in o["lines"]] for o in objects] == [["180.00", "25.00"], ["140.00"]]
    assert objects[0]["source"] == {
        "file": CLEAN_CLAIMS,
        "segment": 21,
        "offset": byte_offset(CLEAN_CLAIMS, b"CLM*RFM2601001*"),
        "isa13": "000001101",
        "gs06": "1101",
        "st02": "0101",
        "loop": "2300",
    }


def test_parse_remit_amounts_are_two_decimal_strings(in_repo: Path) -> None:
    """`parse` on a clean 835: claim_payment objects whose every amount is a two-decimal string."""
    result = run("parse", "--format-version", "1", CLEAN_REMIT)
    assert result.exit_code == 0
    assert result.stderr == ""
    objects = json_lines(result.stdout)
    assert [(o["record"], o["transaction_type"]) for o in objects] == [("claim_payment", "835")] * 2
    assert [(o["patient_control_number"], o["charge"], o["paid"], o["patient_responsibility"]) for o in objects] == [
        ("RFM2601001", "205.00", "110.00", "30.00"),
        ("RFM2601002", "140.00", "76.00", "19.00"),
    ]
    amounts = [v for v in money_values(objects) if v is not None]
    assert amounts and all(isinstance(v, str) and TWO_DECIMALS.match(v) for v in amounts), amounts
    assert {o["source"]["file"] for o in objects} == {CLEAN_REMIT}


def test_parse_summary_prints_the_exact_line(in_repo: Path) -> None:
    """`parse --summary` prints exactly one counts line for a sample file and exits 0."""
    result = run("parse", "--summary", CLEAN_REMIT)
    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout == (
        "sample_edi/clean-payment/remit.835: interchanges=1 transaction_sets=1 claims=0 claim_payments=2 "
        "service_lines=3 provider_adjustments=0 errors=0 warnings=0\n"
    )


def test_parse_truncated_file_exits_1_with_positioned_findings(in_repo: Path) -> None:
    """A truncated 835 exits 1; stderr is `file:segment:offset: CODE message` lines with the exact MISSING_SE."""
    result = run("parse", "--format-version", "1", TRUNCATED_REMIT)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    matches = [FINDING_LINE.match(line) for line in lines]
    assert all(matches), lines
    assert all(m["file"] == TRUNCATED_REMIT and m["code"] in parsers.CODES for m in matches if m)
    assert [m["code"] for m in matches if m] == ["MISSING_SE", "TRUNCATED_SEGMENT", "TRANSACTION_NOT_POSTABLE", "MISSING_GE", "MISSING_IEA"]
    st = byte_offset(TRUNCATED_REMIT, b"ST*835*36141~")
    assert lines[0] == f"{TRUNCATED_REMIT}:27:{st}: MISSING_SE transaction set ST02=36141 ends without SE (found end of file instead)"
    objects = json_lines(result.stdout)
    assert [(o["patient_control_number"], o["trusted"]) for o in objects] == [("RFM2608001", True), ("RFM2608002", False)]


def test_parse_truncated_file_does_not_read_the_half_written_segment(in_repo: Path) -> None:
    """The cut-off last bytes `CAS*CO*4` (no terminator) are reported, never read as a CAS adjustment."""
    data = (REPO / TRUNCATED_REMIT).read_bytes()
    assert data.endswith(b"~\nCAS*CO*4")
    cut = len(data) - len(b"CAS*CO*4")
    result = run("parse", "--format-version", "1", TRUNCATED_REMIT)
    adjustments = [a for o in json_lines(result.stdout) for s in o["services"] for a in s["adjustments"]]
    assert [a for a in adjustments if a["source"]["offset"] == cut] == []
    assert any(f":{cut}: " in line for line in result.stderr.splitlines()), result.stderr


DMG02_NOT_A_DATE = "tests/fixtures/bad/dmg02-birth-date-not-a-date.837"
MALFORMED_AMOUNT_AND_DATE = "tests/fixtures/bad/malformed-amount-and-date.835"


def test_parse_never_repeats_a_date_of_birth(in_repo: Path) -> None:
    """Regression: `DMG02 is '19771304'` put a mistyped birth date on stderr; the finding names DMG02 and CCYYMMDD only."""
    result = run("parse", "--format-version", "1", DMG02_NOT_A_DATE)
    assert result.exit_code == 1
    dmg = byte_offset(DMG02_NOT_A_DATE, b"DMG*D8*19771304")
    assert result.stderr == f"{DMG02_NOT_A_DATE}:19:{dmg}: INVALID_DATE DMG02 is not a real date; expected CCYYMMDD\n"
    assert [o["patient"]["date_of_birth"] for o in json_lines(result.stdout)] == [None, "2015-07-04"]  # the second claim is not touched


def test_findings_quote_a_malformed_amount_but_not_a_date(in_repo: Path) -> None:
    """The documented rule: an amount's malformed text is quoted (no patient data in a money element); a date never is."""
    result = run("parse", MALFORMED_AMOUNT_AND_DATE)
    assert [line.split(": ", 1)[1] for line in result.stderr.splitlines()] == [
        "INVALID_AMOUNT CLP04 is '12.3.4'; expected a decimal amount such as 125.00",
        "INVALID_DATE DTM02 is not a real date; expected CCYYMMDD",
    ]


def test_parse_missing_path_exits_2(in_repo: Path) -> None:
    """A path that does not exist is a usage error: exit 2 and `edirecon: <path>: no such file or folder`."""
    result = run("parse", "sample_edi/no-such-file.837")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == "edirecon: sample_edi/no-such-file.837: no such file or folder\n"


def test_validate_missing_path_exits_2(in_repo: Path) -> None:
    """`validate` treats a missing path like `parse`: exit 2 with the same message."""
    result = run("validate", "no-such-folder")
    assert result.exit_code == 2
    assert result.stderr == "edirecon: no-such-folder: no such file or folder\n"


def test_parse_without_files_is_a_usage_error() -> None:
    """`parse` with no file argument exits 2 with click's usage message."""
    result = run("parse")
    assert result.exit_code == 2
    assert "Usage: edirecon parse" in result.stderr
    assert "Missing argument" in result.stderr


# ----------------------------------------------------------------------- app-level options
def test_no_arguments_prints_usage_and_exits_2() -> None:
    """`edirecon` alone prints the usage with every command and exits 2."""
    result = run()
    assert result.exit_code == 2
    assert "Usage: edirecon [OPTIONS] COMMAND [ARGS]..." in result.stdout
    assert all(name in result.stdout for name in COMMANDS)


def test_version_prints_the_installed_version() -> None:
    """`edirecon --version` prints `edirecon <version>` of the installed package and exits 0."""
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout == f"edirecon {version('edirecon')}\n"


def test_commands_are_parse_validate_and_run() -> None:
    """The app registers at least the commands this suite and the docs rely on."""
    assert {"parse", "retry", "run", "status", "validate", "watch", "worker"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(name: str) -> None:
    """`edirecon CMD --help` exits 0 and shows the command's (non-empty) docstring summary."""
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    doc = (command.help or "").strip()
    assert doc, f"{name} has no docstring"
    result = run(name, "--help")
    assert result.exit_code == 0
    assert f"Usage: edirecon {name}" in result.stdout
    first_words = " ".join(doc.split()[:4])
    assert first_words in " ".join(result.stdout.split())


def _options(group: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(command path, click option) of every command of the app, the refund subcommands included."""
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):
            yield from _options(command, f"{prefix}{name} ")
        else:
            yield from ((f"{prefix}{name}", p) for p in command.params)


def test_every_db_and_config_option_reads_the_environment() -> None:
    """Every --db takes EDIRECON_DB and every --config EDIRECON_CONFIG as its default, in each
    command that has them (run, watch, worker, status, retry, report, refund ...)."""
    found = {(path, p.opts[0], p.envvar) for path, p in _options(typer.main.get_command(app)) if p.opts[0] in ("--db", "--config")}
    assert {(path, opt, env) for path, opt, env in found if env != {"--db": "EDIRECON_DB", "--config": "EDIRECON_CONFIG"}[opt]} == set()
    with_db = {path for path, opt, _env in found if opt == "--db"}
    assert {
        "run",
        "watch",
        "worker",
        "status",
        "retry",
        "report",
        "refund list",
        "refund show",
        "refund approve",
        "refund hold",
        "refund mark-sent",
        "refund void",
        "refund mark-cashed",
        "refund mark-recovered",
    } <= with_db


def test_queue_commands_take_their_db_from_the_environment() -> None:
    """`status` and `retry` without --db use EDIRECON_DB (here a SQLite URL, refused as for --db);
    without either, --db is missing."""
    env = {"EDIRECON_DB": "sqlite:///edirecon-env.db"}
    for name in ("status", "retry"):
        result = CliRunner(env=env).invoke(app, [name])
        assert (result.exit_code, result.stderr) == (
            2,
            "edirecon: --db 'sqlite:///edirecon-env.db': the job queue lives in PostgreSQL; give a postgresql:// URL (SQLite runs in-process)\n",
        )
    missing = CliRunner(env={"EDIRECON_DB": None}).invoke(app, ["status"])
    assert missing.exit_code == 2 and "Missing option '--db'" in missing.stderr


# ------------------------------------------------------------------------------ README.md and docs/
def _doc(name: str) -> str:
    page = REPO / name
    assert page.is_file(), f"{name} is missing"
    return page.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_is_documented(name: str) -> None:
    """README.md's table of commands and docs/commands.md show `edirecon <command>` for every command."""
    assert f"| `edirecon {name}" in _doc("README.md")
    assert f"edirecon {name}" in _doc("docs/commands.md")


def test_every_finding_code_is_documented_in_findings_doc() -> None:
    """Every finding code in parsers.CODES appears in docs/findings.md (as a whole word)."""
    text = _doc("docs/findings.md")
    missing = [code for code in parsers.CODES if not re.search(rf"(?<![A-Z0-9_]){code}(?![A-Z0-9_])", text)]
    assert missing == []
