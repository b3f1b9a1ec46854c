"""``edirecon run``: ingest the inputs, decide from everything known, record the refund history,
write the outputs.  parse → map → decide → record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from parsers import find_files
from parsers.errors import EdireconError

from . import schema as t
from .config import Config
from .decide import Decisions, decide
from .facts import load
from .ingest import Ingestor, IngestReport, insert_ignore
from .store import Store
from .writers import rows, summary, write

log = structlog.get_logger("edirecon.run")

#: met while recursing a folder: documentation, golden outputs and expected results, not inputs
SKIPPED_NAMES = (".md", ".json", ".jsonl", ".toml")


class StoreError(EdireconError):
    """The database given with --db cannot be reached or opened."""

    exit_code = 2


@dataclass
class RunResult:
    report: IngestReport
    decisions: Decisions
    outputs: dict[str, list[dict[str, Any]]]
    summary: dict[str, Any]
    written: list[Path]


def input_files(paths: list[Path]) -> list[tuple[Path, str]]:
    """(path, name as given) of every input file; folders recursed in sorted order."""
    return [(p, str(p)) for p in find_files(paths, SKIPPED_NAMES)]


def run(
    inputs: list[Path],
    db_url: str,
    out_dir: Path,
    as_of: date,
    config: Config,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    files = input_files(inputs)
    store = Store(db_url)
    try:
        try:
            store.upgrade()
        except OperationalError as exc:
            raise StoreError(f"the store at {store.engine.url.render_as_string(hide_password=True)} cannot be opened: {exc.orig}") from exc
        ingestor = Ingestor(store)
        for path, name in files:
            ingestor.ingest(path, name)
            if progress is not None:
                progress(name)
        with store.engine.connect() as conn:
            facts = load(conn)
        decisions = decide(facts, as_of, config)
        with store.engine.begin() as conn:
            known = set(conn.execute(select(t.refund_history.c.refund_id)).scalars())
            insert_ignore(conn, t.refund_history, [
                {"refund_id": r.refund_id, "identified_on": r.identified_on} for r in decisions.refunds if r.refund_id not in known
            ])
        outputs = rows(decisions, as_of, facts.ingest_exceptions)
        counts = {
            "files": _count(store, t.files),
            "claims": len(facts.claims),
            "claim_payments": len(facts.payments),
            "patient_payments": len(facts.patient_payments),
        }
        doc = summary(decisions, outputs, counts, as_of)
        written = write(out_dir, outputs, doc)
        log.info("run_finished", refunds=len(outputs["refund_requests"]), recoupments=len(outputs["recoupments"]),
                 exceptions=len(outputs["exceptions"]), out=str(out_dir))
        return RunResult(ingestor.report, decisions, outputs, doc, written)
    finally:
        store.dispose()


def _count(store: Store, table: Any) -> int:
    from sqlalchemy import func

    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
