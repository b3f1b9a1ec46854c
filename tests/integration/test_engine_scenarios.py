"""`edirecon run` on every scenario folder gives its hand-computed expected outputs, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import FIXTURES, SAMPLE_EDI
from engine_oracle import expected, run_folder

SCENARIOS = sorted(
    [p for p in SAMPLE_EDI.iterdir() if (p / "expected-run.json").exists()] + [p for p in (FIXTURES / "engine").glob("*") if (p / "expected-run.json").exists()]
)


def _id(p: Path) -> str:
    return f"{p.parent.name}/{p.name}"


@pytest.mark.parametrize("folder", SCENARIOS, ids=_id)
def test_scenario_on_sqlite(folder: Path, tmp_path: Path) -> None:
    """The run's refunds, recoupments, balances and exceptions are the hand-computed ones (SQLite)."""
    got = run_folder(folder, f"sqlite:///{tmp_path}/store.db", tmp_path / "out")
    want = expected(folder)
    for key in ("refunds", "recoupments", "credit_balances", "exceptions"):
        assert got[key] == want[key], key


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("folder", SCENARIOS, ids=_id)
def test_scenario_on_postgresql(folder: Path, tmp_path: Path, pg_url: str) -> None:
    """The same scenario on a throwaway PostgreSQL database gives the same outputs."""
    got = run_folder(folder, pg_url, tmp_path / "out")
    want = expected(folder)
    for key in ("refunds", "recoupments", "credit_balances", "exceptions"):
        assert got[key] == want[key], key
