"""`edirecon report` shows its progress on stderr when it takes more than a second, on a terminal
only: never in a pipe, a log or a test's output (stdout stays the three summary lines)."""

from __future__ import annotations

import io
import time
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from edirecon.cli import LateProgress, app
from edirecon.engine.reports.report import STEPS


def test_progress_appears_after_the_delay_on_a_terminal() -> None:
    """On a terminal the bar appears once the delay is over, names the step under way and counts
    the steps done; it is not drawn before."""
    out = io.StringIO()
    with LateProgress(Console(file=out, force_terminal=True, width=100), len(STEPS), delay=0.2) as progress:
        progress.step(STEPS[0])
        assert out.getvalue() == ""  # quicker than the delay: nothing shown
        time.sleep(0.5)
        progress.step(STEPS[1])
        progress.bar.refresh()
    shown = out.getvalue()
    assert STEPS[0] in shown and STEPS[1] in shown and f"1/{len(STEPS)}" in shown


def test_no_progress_off_a_terminal() -> None:
    """Not a terminal (a pipe, a file): nothing, however long the work."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=False)
    with LateProgress(console, len(STEPS), delay=0.0) as progress:
        time.sleep(0.2)
        for name in STEPS:
            progress.step(name)
    assert progress.timer is None and out.getvalue() == ""


def test_report_output_is_unchanged(in_repo: Path, tmp_path: Path) -> None:
    """Run from a test (no terminal): stdout is the summary, stderr is empty, and every step ran."""
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
