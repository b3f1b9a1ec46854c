"""Byte-level goldens of what billing systems read: every output of `edirecon run`, `edirecon
report` and the stdout of `refund list` / `refund show`, for the whole sample_edi/ folder in one
run (as `make demo` runs it), for each sample_edi/ scenario alone and for each scenario under
tests/fixtures/engine/.  Stored under tests/golden/sample_edi/ and tests/golden/scenarios/;
rewritten by `make golden` (see tests/goldens.py for the little that is normalised).

Each case is run once, in-process through the CLI, from the repository root with its folder given
relative to it (so that file names in the outputs are machine-independent), on a fresh SQLite
store, with a fixed --as-of (the scenario's expected-run.json, 2026-11-27 for the whole folder),
--workers 1 (the order of ingestion is the one given) and the scenario's config.toml when it has
one.  The whole folder is run with tests/fixtures/reports/config.toml, the billing office's
settings of the report tests, so that its report also holds refund packets (an auto-approved COB
refund, a held patient credit).
"""

from __future__ import annotations

import contextlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, REPO, SAMPLE_EDI
from goldens import (
    GOLDEN,
    UPDATE,
    check_tree,
    normalise_history,
    normalise_outputs,
    read_tree,
    refuse_machine_paths,
)
from typer.testing import CliRunner

from edirecon.cli import app


@dataclass(frozen=True)
class Case:
    """One run: its input folder, the golden folder, the day and the configuration."""

    folder: Path
    golden: Path
    as_of: str
    config: Path | None
    #: the day of `report` and the refund commands, and the CMS-838 quarter, when not --as-of and its default
    report_as_of: str | None = None
    quarter: str | None = None

    @property
    def id(self) -> str:
        return self.golden.relative_to(GOLDEN).as_posix()


#: scenarios whose report is made later, for the quarter their Medicare credits arose in (as in tests/integration/test_cms838_institutional.py)
REPORTED_LATER = {"medicare-part-a-inpatient-and-outpatient": ("2026-10-05", "2026Q3")}


def _scenario(folder: Path, group: str) -> Case:
    doc = json.loads((folder / "expected-run.json").read_text(encoding="utf-8"))
    config = folder / "config.toml"
    return Case(
        folder, GOLDEN / "scenarios" / group / folder.name, doc["as_of"], config if config.exists() else None, *REPORTED_LATER.get(folder.name, (None, None))
    )


CASES = [
    Case(SAMPLE_EDI, GOLDEN / "sample_edi", "2026-11-27", FIXTURES / "reports" / "config.toml"),
    *(_scenario(p, "sample_edi") for p in sorted(SAMPLE_EDI.iterdir()) if (p / "expected-run.json").exists()),
    *(_scenario(p, "engine") for p in sorted((FIXTURES / "engine").iterdir()) if (p / "expected-run.json").exists()),
]


def cli(*args: Any, code: int = 0) -> bytes:
    """Invoke the CLI in-process; its stdout as bytes."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == code, f"edirecon {' '.join(map(str, args))}: exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    return result.stdout_bytes


def produce(case: Case, root: Path) -> dict[str, dict[str, bytes]]:
    """Run the case in ``root``: the outputs of run and report, and the stdout of the refund commands."""
    root.mkdir(parents=True, exist_ok=True)
    store = ["--db", f"sqlite:///{root / 'store.db'}", *(["--config", case.config] if case.config else [])]
    common = [*store, "--as-of", case.report_as_of or case.as_of]
    with contextlib.chdir(REPO):  # the inputs are named relative to the repository in the outputs
        cli("run", case.folder.relative_to(REPO), "--out", root / "out", "--workers", "1", *store, "--as-of", case.as_of)
        cli("report", "--out", root / "report", *common, *(["--quarter", case.quarter] if case.quarter else []))
        refund = {"list.txt": cli("refund", "list", *common)}
        for line in (root / "out" / "refund_requests.jsonl").read_text(encoding="utf-8").splitlines():
            refund_id = json.loads(line)["refund_id"]
            refund[f"show-{refund_id}.txt"] = normalise_history(cli("refund", "show", refund_id, *common))
    outputs = {"run": normalise_outputs(read_tree(root / "out")), "report": normalise_outputs(read_tree(root / "report")), "refund": refund}
    for files in outputs.values():
        refuse_machine_paths(files, root, REPO)
    return outputs


@pytest.fixture(scope="module", params=CASES, ids=lambda c: c.id)
def case_outputs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Case, dict[str, dict[str, bytes]]]:
    """One run per case, shared by the tests of that case."""
    case: Case = request.param
    return case, produce(case, tmp_path_factory.mktemp("golden"))


def test_run_outputs_match_golden(case_outputs: tuple[Case, dict[str, dict[str, bytes]]]) -> None:
    """Every CSV, JSON Lines file, summary.json and manifest.json of `edirecon run` is byte for byte its golden."""
    case, outputs = case_outputs
    check_tree(case.golden / "run", outputs["run"])


def test_report_outputs_match_golden(case_outputs: tuple[Case, dict[str, dict[str, bytes]]]) -> None:
    """Every CSV, report.json and dashboard.html of `edirecon report` is byte for byte its golden, and each PDF's text."""
    case, outputs = case_outputs
    check_tree(case.golden / "report", outputs["report"])


def test_refund_list_and_show_match_golden(case_outputs: tuple[Case, dict[str, dict[str, bytes]]]) -> None:
    """The stdout of `refund list` and of `refund show` for each refund id is byte for byte its golden."""
    case, outputs = case_outputs
    check_tree(case.golden / "refund", outputs["refund"])


def test_no_golden_is_left_without_its_scenario() -> None:
    """Every golden folder under tests/golden/scenarios/ belongs to a scenario that exists (`make golden` removes the others)."""
    kept = {c.golden for c in CASES}
    stale = sorted(p for group in (GOLDEN / "scenarios").glob("*") for p in group.iterdir() if p not in kept)
    if UPDATE:
        for p in stale:
            shutil.rmtree(p)
        stale = []
    assert [p.relative_to(GOLDEN).as_posix() for p in stale] == []


@pytest.mark.slow
def test_outputs_are_the_same_from_another_folder(tmp_path: Path) -> None:
    """The whole sample_edi/ run made twice, in two folders, gives the same bytes (nothing of the path or the clock leaks in)."""
    first = produce(CASES[0], tmp_path / "a")
    second = produce(CASES[0], tmp_path / "elsewhere" / "b")
    assert first == second
