"""`edirecon report` shows its progress on stderr when it takes more than a second, on a terminal
only: never in a pipe, a log or a test's output (tests/integration/test_reports.py runs `report`
itself off a terminal: stdout the summary, stderr empty)."""

from __future__ import annotations

import io
import time

from rich.console import Console

from edirecon.cli import LateProgress
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
