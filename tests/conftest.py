"""Shared test fixtures: where the repository, sample files and the public corpus are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE_EDI = REPO / "sample_edi"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
#: real public 835/837 files written by others (never modified, never copied into the repo)
CORPUS = Path(os.environ.get("EDIRECON_CORPUS", REPO.parent / "shared" / "corpus"))


def corpus_files() -> list[Path]:
    """Every X12 file of the corpus (MANIFEST.tsv excluded); empty when the corpus is absent."""
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.iterdir() if p.is_file() and p.name != "MANIFEST.tsv")


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The corpus folder; in CI its absence is a failure, elsewhere a skip with the reason."""
    if not CORPUS.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"the public corpus is missing at {CORPUS} (CI must have ../shared/corpus)")
        pytest.skip(f"no public corpus at {CORPUS}; set EDIRECON_CORPUS to run these tests")
    return CORPUS


@pytest.fixture
def in_repo(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from the repository root, so relative paths (and golden 'source.file' values) are stable."""
    monkeypatch.chdir(REPO)
    return REPO
