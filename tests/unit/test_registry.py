"""One registry of codes (mappings/codes.csv), the code that writes them and the docs that list them.

- the docs list exactly the registered codes of each family (and the severities, where a table gives them);
- the code writes only registered codes: a finding, exception, refund, recoupment, audit event,
  follow-up or refusal of an unregistered code raises; the code's literals of these families are
  registered (scanned from the source); every code in the goldens is registered;
- these checks can fail: a registry with one code missing or one extra differs from the docs.
"""

from __future__ import annotations

import ast
import csv
import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import REPO

from edirecon import mappings, parsers
from edirecon.engine.decide.rules import ExceptionRow, Recoupment, Refund
from edirecon.engine.dropfolder.layout import Refusal
from edirecon.engine.ingest.ingestor import exception_row
from edirecon.engine.reports.analytics import REASONS
from edirecon.engine.workflow import refunds
from edirecon.parsers.source import Source

#: family -> (the page, the header row of the table whose first column lists the family's codes)
DOCUMENTED: dict[str, tuple[str, str]] = {
    "finding": ("docs/findings.md", "| code | severity | meaning |"),
    "exception_kind": ("docs/outputs.md", "| kind | severity | when |"),
    "refund_reason": ("docs/outputs.md", "| reason | payee | meaning |"),
    "refund_status": ("docs/outputs.md", "| refund status | meaning |"),
    "recoupment_kind": ("docs/outputs.md", "| recoupment kind | meaning |"),
    "recoupment_status": ("docs/outputs.md", "| recoupment status | meaning |"),
    "workflow_status": ("docs/workflow-and-reports.md", "| status | meaning | manual actions from it |"),
    "audit_action": ("docs/workflow-and-reports.md", "| action | by | meaning |"),
    "followup_kind": ("docs/workflow-and-reports.md", "| follow-up | meaning |"),
    "refusal": ("docs/dropfolders.md", "| refusal | meaning |"),
    "role": ("docs/users.md", "| role | may |"),
}
#: the families whose codes have a severity (every code one of error, warning, info)
WITH_SEVERITY = {"finding", "exception_kind", "refusal"}

TICKED = re.compile(r"`([^`]+)`")


def doc_table(text: str, header: str) -> dict[str, str]:
    """code -> severity ('' when the table has no severity column) of the one table of ``text``
    with this header row; every backticked code of a row's first cell counts."""
    lines = [line.strip() for line in text.splitlines()]
    starts = [i for i, line in enumerate(lines) if line == header]
    assert len(starts) == 1, f"{len(starts)} tables with the header {header!r}"
    columns = [c.strip() for c in header.strip("|").split("|")]
    severity = columns.index("severity") if "severity" in columns else None
    found: dict[str, str] = {}
    for line in lines[starts[0] + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        codes = TICKED.findall(cells[0])
        assert codes, f"a row of {header!r} names no code: {line}"
        for code in codes:
            assert code not in found, f"{code} listed twice under {header!r}"
            found[code] = cells[severity] if severity is not None else ""
    return found


def registry_of(family: str, registry: dict[str, mappings.Code] | None = None) -> dict[str, str]:
    """code -> severity of a family of the registry, as its docs table shows it."""
    entries = mappings.registry(family) if registry is None else registry
    with_severity = "severity" in DOCUMENTED[family][1]
    return {code: (c.severity if with_severity else "") for code, c in entries.items()}


def difference(registry: dict[str, str], documented: dict[str, str]) -> tuple[list[str], list[str]]:
    """(registered but not documented as such, documented but not registered as such)."""
    reg, doc = set(registry.items()), set(documented.items())
    return sorted(f"{c} ({s})" if s else c for c, s in reg - doc), sorted(f"{c} ({s})" if s else c for c, s in doc - reg)


def documented(family: str) -> dict[str, str]:
    page, header = DOCUMENTED[family]
    return doc_table((REPO / page).read_text(encoding="utf-8"), header)


# -- the registry itself ---------------------------------------------------------------------------


def test_every_family_is_documented_somewhere() -> None:
    """A family added to the registry must name the table of the docs that lists it."""
    assert set(DOCUMENTED) == set(mappings.FAMILIES)
    assert {row["family"] for row in mappings.rows("codes")} == set(mappings.FAMILIES)


def test_registry_rows_are_well_formed() -> None:
    """Codes are bare words, each described; severities only (and always) where the family has them."""
    for row in mappings.rows("codes"):
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", row["code"]), row
        assert row["description"].strip(), row
        if row["family"] in WITH_SEVERITY:
            assert row["severity"] in ("error", "warning", "info"), row
        else:
            assert row["severity"] == "", row


@pytest.mark.parametrize("family", sorted(mappings.FAMILIES))
def test_docs_list_exactly_the_registered_codes(family: str) -> None:
    """The docs table of each family lists every registered code and no other (with its severity)."""
    not_documented, not_registered = difference(registry_of(family), documented(family))
    assert not_documented == [], f"registered in mappings/codes.csv but not in {DOCUMENTED[family][0]}"
    assert not_registered == [], f"listed in {DOCUMENTED[family][0]} but not registered in mappings/codes.csv"


def test_finding_codes_come_from_the_registry() -> None:
    """parsers.CODES is the registry's finding family, severities and meanings included."""
    assert {code: (sev.value, meaning) for code, (sev, meaning) in parsers.CODES.items()} == {
        c.code: (c.severity, c.description) for c in mappings.registry("finding").values()
    }


def test_recoupment_kinds_are_the_claim_reversal_and_each_plb_recovery_code() -> None:
    """PLB_<code> for every PLB code of kind recovery (``_plb_recoupments`` makes those), and CLAIM_REVERSAL."""
    recovery = {code for code, kind in mappings.plb_kinds().items() if kind == "recovery"}
    assert set(mappings.registry("recoupment_kind")) == {"CLAIM_REVERSAL", *(f"PLB_{code}" for code in recovery)}


def test_ordered_lists_are_the_registry_in_its_order() -> None:
    """`refund list --status` names the workflow statuses, and the root-cause months the reasons, in the registry's order."""
    assert refunds.STATUSES == ("pending", "held", "approved", "sent", "acknowledged", "cashed", "double_refund", "recovered", "settled", "withdrawn", "voided")
    assert REASONS == ("DUPLICATE_PAYMENT", "PAYER_OVERPAYMENT", "COB_OVERPAYMENT", "PATIENT_OVERPAYMENT")
    assert refunds.TO_WORK <= set(refunds.STATUSES)
    assert {target for _, target in refunds.MANUAL.values()} <= set(refunds.STATUSES)
    assert set().union(*(sources for sources, _ in refunds.MANUAL.values())) <= set(refunds.STATUSES)
    assert set(refunds.MANUAL) <= set(mappings.registry("audit_action"))


# -- the code writes only registered codes ---------------------------------------------------------

SOURCE_ROOTS = ("__init__.py", "cli.py", "engine", "parsers", "mappings")
CODE_LIKE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
#: upper-case literals of the source that are no code of the registry, each for its reason
NOT_CODES = {
    "PC_NAME_MAX": "an os.pathconf name",
}


def source_files() -> list[Path]:
    files: list[Path] = []
    for root in SOURCE_ROOTS:
        path = REPO / root
        files += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return files


def code_literals(files: list[Path]) -> dict[str, set[str]]:
    """Every string literal that looks like a code (UPPER_SNAKE) -> the files it is in."""
    found: dict[str, set[str]] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE_LIKE.fullmatch(node.value):
                found.setdefault(node.value, set()).add(path.name)
    return found


def other_tables_codes() -> set[str]:
    """Codes that other tables of mappings/ define: root-cause patterns, the CMS-838's PAYER_NOT_BILLED."""
    patterns = set(mappings.codes("root_cause_patterns"))
    cms838 = {reason for row in mappings.rows("cms838_reason_codes") for reason in row["refund_reasons"].split()}
    return patterns | cms838


def unregistered_literals(files: list[Path]) -> dict[str, set[str]]:
    """The code-like literals of ``files`` that no family registers (nor another table, nor NOT_CODES)."""
    known = {code for family in mappings.FAMILIES for code in mappings.registry(family)} | other_tables_codes() | set(NOT_CODES)
    return {
        literal: where for literal, where in code_literals(files).items() if literal not in known and not literal.startswith("EDIRECON_")
    }  # EDIRECON_*: environment variables


def test_every_code_literal_of_the_source_is_registered() -> None:
    """A finding code, exception kind, refund reason, follow-up ... written as a literal anywhere in
    the package is in the registry: a new one must be registered (and so documented)."""
    literals = code_literals(source_files())
    assert {"UNMATCHED_PAYMENT", "DUPLICATE_FILE", "CLAIM_REVERSAL", "DUPLICATE_PAYMENT", "MISSING_SE", "DOUBLE_REFUND"} <= set(literals)
    assert unregistered_literals(source_files()) == {}


def _returned_strings(path: Path, cls: str, method: str) -> set[str]:
    """The string literals a method of a class can return (``return "a" if x else "b"`` counts both)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    klass = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls)
    func = next(n for n in klass.body if isinstance(n, ast.FunctionDef) and n.name == method)
    out: set[str] = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Return) and node.value is not None:
            out |= {c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    return out


def test_engine_statuses_are_exactly_the_registered_ones() -> None:
    """Refund.status and Recoupment.status can return exactly the registered refund and recoupment statuses."""
    rules = REPO / "engine" / "decide" / "rules.py"
    assert _returned_strings(rules, "Refund", "status") == set(mappings.registry("refund_status"))
    assert _returned_strings(rules, "Recoupment", "status") == set(mappings.registry("recoupment_status"))


def test_workflow_literals_are_registered() -> None:
    """The statuses and actions the workflow's sync writes (``_entry``, ``_change``) are registered."""
    tree = ast.parse((REPO / "engine" / "workflow" / "refunds.py").read_text(encoding="utf-8"))
    statuses: set[str] = set()
    actions: set[str] = set()

    def add(status: ast.expr, action: ast.expr) -> None:
        if isinstance(status, ast.Constant) and isinstance(status.value, str):
            statuses.add(status.value)
        if isinstance(action, ast.Constant) and isinstance(action.value, str):
            actions.add(action.value)

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "_change":
            add(node.args[2], node.args[3])
        if isinstance(node, ast.FunctionDef) and node.name == "_entry":
            for ret in ast.walk(node):
                if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Tuple):
                    add(ret.value.elts[0], ret.value.elts[1])
    assert {"settled", "withdrawn", "double_refund", "acknowledged", "pending"} <= statuses
    assert {"rejudged", "identified", "auto-approved", "amount_changed"} <= actions
    assert statuses <= set(mappings.registry("workflow_status"))
    assert actions <= set(mappings.registry("audit_action"))


AT = Source("x.835", 1, 0)


def test_an_unregistered_code_cannot_be_written() -> None:
    """Each place that makes a code for the outputs raises on an unregistered one."""
    with pytest.raises(mappings.UnregisteredCode, match="FIELD_NOT_REGISTERED"):
        parsers.Finding.make("FIELD_NOT_REGISTERED", "x", AT)
    with pytest.raises(mappings.UnregisteredCode, match="UNMATCHED_CLAIM"):
        ExceptionRow("UNMATCHED_CLAIM", "error", "x.835", 1, "", "", None, "")
    with pytest.raises(mappings.UnregisteredCode, match="severity 'error', not 'warning'"):
        ExceptionRow("UNMATCHED_PAYMENT", "warning", "x.835", 1, "", "", None, "")
    with pytest.raises(mappings.UnregisteredCode, match="UNKNOWN_FILE"):
        exception_row(["x"], "UNKNOWN_FILE", "x.bin", "")
    with pytest.raises(mappings.UnregisteredCode, match="severity 'warning', not 'error'"):
        exception_row(["x"], "DUPLICATE_FILE", "x.835", "")
    with pytest.raises(mappings.UnregisteredCode, match="OVERPAYMENT"):
        Refund("RF-1", "OVERPAYMENT", "payer", "P", "", None, "", Decimal("1.00"), "", [])  # type: ignore[arg-type]
    with pytest.raises(mappings.UnregisteredCode, match="PLB_L6"):
        Recoupment("RC-1", "PLB_L6", "P", "", "T", date(2026, 1, 1), Decimal("1.00"), None, "")
    with pytest.raises(mappings.UnregisteredCode, match="escalate"):
        refunds._event(None, "RF-1", "alice", "escalate", "pending", "pending", "")  # type: ignore[arg-type]
    with pytest.raises(mappings.UnregisteredCode, match="closed"):
        refunds._event(None, "RF-1", "alice", "void", "pending", "closed", "")  # type: ignore[arg-type]
    with pytest.raises(mappings.UnregisteredCode, match="SYMLINK"):
        Refusal("SYMLINK", "symlink", "x")


def test_registered_codes_are_written_as_they_are() -> None:
    """The checks let registered codes through unchanged."""
    assert parsers.Finding.make("MISSING_SE", "x", AT).severity is parsers.Severity.ERROR
    assert ExceptionRow("VOIDED_ENCOUNTER_PAID", "info", "x.837", 1, "", "", None, "").kind == "VOIDED_ENCOUNTER_PAID"
    assert exception_row(["x"], "DUPLICATE_FILE", "x.835", "", severity="warning")["kind"] == "DUPLICATE_FILE"
    assert Recoupment("RC-1", "PLB_WO", "P", "", "T", None, Decimal("1.00"), None, "").status == "untied"
    assert Refusal("UNREADABLE_FILE", "file", "x").code == "UNREADABLE_FILE"


#: golden CSV file name -> its columns of registered codes, and the families each may be of
GOLDEN_COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "exceptions.csv": {"kind": ("exception_kind",)},
    "audit_discrepancies.csv": {"kind": ("exception_kind", "followup_kind")},
    "refund_requests.csv": {"reason": ("refund_reason",), "status": ("refund_status",)},
    "recoupments.csv": {"kind": ("recoupment_kind",), "status": ("recoupment_status",)},
    "worklist.csv": {"reason": ("refund_reason",), "workflow_status": ("workflow_status",), "engine_status": ("refund_status",)},
    "followups.csv": {"kind": ("followup_kind",), "workflow_status": ("workflow_status",)},
}


def test_every_code_in_the_goldens_is_registered() -> None:
    """The codes the outputs really carry (every golden of `run` and `report`) are registered in their family."""
    seen: dict[str, set[str]] = {}
    for path in sorted((REPO / "tests" / "golden").rglob("*.csv")):
        columns = GOLDEN_COLUMNS.get(path.name)
        if columns is None:
            continue
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                for column, families in columns.items():
                    allowed = set().union(*(mappings.registry(f) for f in families))
                    assert row[column] in allowed, f"{path.relative_to(REPO)}: {column} {row[column]!r} is not registered"
                    seen.setdefault(families[0], set()).add(row[column])
    assert seen["exception_kind"] >= {"PARSE_ERROR", "UNMATCHED_PAYMENT", "VOIDED_ENCOUNTER_PAID"}
    assert seen["refund_reason"] == set(mappings.registry("refund_reason"))
    assert seen["recoupment_kind"] >= {"CLAIM_REVERSAL", "PLB_WO"}


# -- the checks can fail ---------------------------------------------------------------------------


def test_a_registry_with_a_code_missing_or_extra_differs_from_the_docs() -> None:
    """Dropping a registered code, adding one, or changing a severity is a difference either way."""
    for family in mappings.FAMILIES:
        entries = mappings.registry(family)
        docs = documented(family)
        first = next(iter(entries))
        fewer = {code: c for code, c in entries.items() if code != first}
        shown = f"{first} ({entries[first].severity})" if "severity" in DOCUMENTED[family][1] else first
        assert difference(registry_of(family, fewer), docs) == ([], [shown])
        extra = {**entries, "NOT_A_CODE": mappings.Code(family, "NOT_A_CODE", "", "x")}
        assert difference(registry_of(family, extra), docs)[0] == ["NOT_A_CODE"]
    findings = mappings.registry("finding")
    wrong = {**findings, "NOT_X12": findings["NOT_X12"]._replace(severity="warning")}
    assert difference(registry_of("finding", wrong), documented("finding")) == (["NOT_X12 (warning)"], ["NOT_X12 (error)"])


def test_a_docs_table_with_a_row_missing_differs_from_the_registry() -> None:
    """A page that loses a row (or gains one) no longer matches."""
    page, header = DOCUMENTED["exception_kind"]
    text = (REPO / page).read_text(encoding="utf-8")
    without = "\n".join(line for line in text.splitlines() if not line.startswith("| `UNTIED_RECOUPMENT`"))
    assert difference(registry_of("exception_kind"), doc_table(without, header)) == (["UNTIED_RECOUPMENT (warning)"], [])
    more = text.replace("| `PARSE_ERROR` |", "| `LOST_FILE` | error | x |\n| `PARSE_ERROR` |")
    assert difference(registry_of("exception_kind"), doc_table(more, header)) == ([], ["LOST_FILE (error)"])


def test_the_literal_scan_finds_an_unregistered_code(tmp_path: Path) -> None:
    """A new code written as a literal, and not registered, is reported with its file."""
    module = tmp_path / "ingest_more.py"
    module.write_text('def f():\n    return exception_row([], "AMOUNT_NOT_REGISTERED", "x", "")\n', encoding="utf-8")
    assert unregistered_literals([module]) == {"AMOUNT_NOT_REGISTERED": {"ingest_more.py"}}
