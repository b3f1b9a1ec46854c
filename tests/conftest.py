"""Shared test fixtures: where the repository, sample files and the public corpus are."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

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


PG_ADMIN = os.environ.get("EDIRECON_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL database, dropped afterwards; skipped with a reason only outside CI."""
    import uuid

    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:  # no server reachable (a laptop): skip, but never in CI
        admin.dispose()
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}")
        pytest.skip(f"no PostgreSQL reachable at {PG_ADMIN} ({type(exc).__name__})")
    name = f"edirecon_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    """Each test starts from structlog's defaults: a command run by a CliRunner or under capsys
    binds the logger to a stream that is closed when that test ends, and the next test that logs
    from the library (not through the CLI) would write to it."""
    yield
    structlog.reset_defaults()
