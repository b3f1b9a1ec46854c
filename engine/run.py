"""``edirecon run``: ingest the inputs, decide from everything known, record the refund history,
write the outputs.  parse → map → decide → record."""

from __future__ import annotations

import gc
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

from edirecon.engine.config import Config
from edirecon.engine.decide.rules import Decisions, decide
from edirecon.engine.ingest.ingestor import (
    SPLIT_BYTES,
    FileTask,
    Ingestor,
    IngestReport,
)
from edirecon.engine.logging import get_logger
from edirecon.engine.record.manifest import MANIFEST, batch_name, output_entries, utcnow, write_manifest
from edirecon.engine.record.workflow import NAME as WORKFLOW
from edirecon.engine.record.workflow import workflow_rows, write_workflow
from edirecon.engine.record.writers import rows, summary, tallies, write
from edirecon.engine.scale import shards
from edirecon.engine.scale.processes import die_with_parent, fork_context, worker_count
from edirecon.engine.store.connection import Store, open_store
from edirecon.engine.store.facts import load
from edirecon.engine.store.tables import count_rows
from edirecon.engine.store.workflow import with_last_event
from edirecon.engine.workflow import lists
from edirecon.engine.workflow import refunds as workflow
from edirecon.parsers import find_files

log = get_logger("edirecon.run")

#: met while recursing a folder: documentation, golden outputs and expected results, not inputs
SKIPPED_NAMES = (".md", ".json", ".jsonl", ".toml")


@dataclass
class RunResult:
    report: IngestReport
    decisions: Decisions | None  # None when decided in shards (engine.shards: shards.in_shards)
    outputs: dict[str, Sequence[dict[str, Any]]]
    summary: dict[str, Any]
    written: list[Path]


def input_files(paths: list[Path]) -> list[tuple[Path, str]]:
    """(path, name as given) of every input file; folders recursed in sorted order; a file met
    twice (named and inside a folder given, say) is taken once."""
    seen: set[Path] = set()
    out = []
    for p in find_files(paths, SKIPPED_NAMES):
        real = p.resolve()
        if real not in seen:
            seen.add(real)
            out.append((p, str(p)))
    return out


def run(
    inputs: list[Path],
    db_url: str,
    out_dir: Path,
    as_of: date,
    config: Config,
    progress: Callable[[str], None] | None = None,
    workers: int | None = None,
    queue: bool = False,
) -> RunResult:
    files = input_files(inputs)
    store = open_store(db_url, create=True)
    try:
        seconds: dict[str, float] = {}
        clock = time.perf_counter()
        report = ingest_files(store, files, workers, progress, queue=queue, as_of=as_of)
        seconds["ingest"], clock = time.perf_counter() - clock, time.perf_counter()
        peak = {"ingest": _peak_mib()}
        decisions, outputs, doc, written = decide_and_record(store, out_dir, as_of, config, seconds, peak, worker_count(workers), publish=True)
        log.info(
            "run_finished",
            refunds=len(outputs["refund_requests"]),
            recoupments=len(outputs["recoupments"]),
            exceptions=len(outputs["exceptions"]),
            out=str(out_dir),
            seconds={phase: round(s, 2) for phase, s in seconds.items()},
            peak_rss_mib=peak,
        )
        return RunResult(report, decisions, outputs, doc, written)
    finally:
        store.dispose()


def publish_workflow(store: Store, out_dir: Path, as_of: date, written: list[Path], row_counts: dict[str, int]) -> list[Path]:
    """What ``run`` writes after the engine's outputs (``written``, with ``row_counts`` per table):
    the team's work as the store holds it (``workflow.csv``/``.jsonl``: ``record.workflow``), then
    ``manifest.json`` listing every output (``record.manifest``, as ``watch`` writes it), last.
    Returns the paths written."""
    with store.engine.connect() as conn:
        team = workflow_rows(with_last_event(conn))
    files = write_workflow(out_dir, team)
    now = utcnow()
    write_manifest(out_dir, output_entries([*written, *files], {**row_counts, WORKFLOW: len(team)}), as_of, batch_name(now), now)
    return [*files, out_dir / MANIFEST]


def decide_and_record(
    store: Store,
    out_dir: Path,
    as_of: date,
    config: Config,
    seconds: dict[str, float] | None = None,
    peak: dict[str, int] | None = None,
    workers: int = 1,
    publish: bool = False,
) -> tuple[Decisions | None, dict[str, Sequence[dict[str, Any]]], dict[str, Any], list[Path]]:
    """Decide from everything the store knows, keep the refunds (history and detections), and
    write the outputs: what ``run`` does after ingesting, and ``watch`` after each batch.
    ``seconds`` and ``peak`` receive the time and peak RSS of the load, decide and record phases.

    A store of more than ``shards.SHARD_CLAIMS`` claims is decided shard by shard, ``workers``
    processes at a time (``engine.shards``; the same outputs, no ``Decisions`` returned), so that
    memory follows a shard's size, not the store's, with one worker too; with more than one
    worker, so is a store of ``shards.PARALLEL_CLAIMS`` claims or more (``shards.in_shards``), so
    that every core decides; a smaller store in this process.  With ``publish``, the workflow and
    the manifest are written too (``publish_workflow``, ``run``'s last step), their paths last in
    the list returned."""
    seconds = {} if seconds is None else seconds
    peak = {} if peak is None else peak
    clock = time.perf_counter()
    store.refresh_statistics()  # PostgreSQL: the planner's statistics of what was just loaded, for deciding and every page after
    facts_key = workflow.facts_key(store)  # before reading them: facts added meanwhile leave the records stale
    if shards.in_shards(_count(store, "claims"), workers):
        store.checkpoint()  # measured: the shards read a checkpointed store about 1 s faster (100,000 claims)
        with tempfile.TemporaryDirectory(prefix="edirecon-shards-") as spool:
            outputs, tally, counts = shards.decide_sharded(store, as_of, config, workers, Path(spool))
            seconds["decide"], clock = time.perf_counter() - clock, time.perf_counter()
            peak["decide"] = max(_peak_mib(), _peak_mib(children=True))
            doc = summary(outputs, {"files": _count(store, "files"), **counts}, tally, as_of)
            written: list[Path] = []
            # the refunds are kept: the workflow follows those whose decision changed, set by set,
            # in a process of its own while this one writes the outputs (neither reads what the
            # other writes; both were done one after the other, on one core)
            store.dispose()  # no open database handle may cross a fork
            shards.beside(
                _sync_workflow, (store.url, as_of, config, facts_key), lambda: written.extend(write(out_dir, outputs, doc)), "syncing the workflow failed"
            )
            if publish:
                # the rows of the API's lists in a process of its own while this one writes the
                # workflow's files, read from the store as synced (another table)
                store.dispose()  # no open database handle may cross a fork
                row_counts = {name: len(table) for name, table in outputs.items()}
                shards.beside(
                    _record_lists,
                    (store.url, outputs, facts_key, as_of, config),
                    lambda: written.extend(publish_workflow(store, out_dir, as_of, list(written), row_counts)),
                    "recording the API's lists failed",
                )
            else:
                with store.write() as conn:  # the rows of the API's lists (the balances read back from their file)
                    lists.record(conn, outputs, facts_key, as_of, config)
        seconds["record"] = time.perf_counter() - clock
        peak["record"] = _peak_mib()
        return None, outputs, doc, written
    # the facts are millions of long-lived objects without cycles: the cyclic collector need
    # not scan them while they are built, nor again while deciding
    collecting = gc.isenabled()
    gc.disable()
    try:
        with store.engine.connect() as conn:
            facts = load(conn)
    finally:
        if collecting:
            gc.enable()
    gc.freeze()
    try:
        seconds["load"], clock = time.perf_counter() - clock, time.perf_counter()
        peak["load"] = _peak_mib()
        decisions = decide(facts, as_of, config)
        seconds["decide"], clock = time.perf_counter() - clock, time.perf_counter()
        peak["decide"] = _peak_mib()
        outputs = rows(decisions, as_of, facts.ingest_exceptions)
        # the refund history, the refunds kept, the workflow synced with them, and the rows of the
        # API's lists, from everything known, in one transaction
        with store.write() as conn:
            workflow.record(conn, workflow.Book(as_of, config, facts, decisions), facts_key)
            lists.record(conn, outputs, facts_key, as_of, config)
        counts = {
            "files": _count(store, "files"),
            "claims": len(facts.claims),
            "claim_payments": len(facts.payments),
            "patient_payments": len(facts.patient_payments),
        }
        doc = summary(outputs, counts, tallies(decisions), as_of)
        written = write(out_dir, outputs, doc)
        if publish:
            written += publish_workflow(store, out_dir, as_of, written, {name: len(table) for name, table in outputs.items()})
        seconds["record"] = time.perf_counter() - clock
        peak["record"] = _peak_mib()
        return decisions, outputs, doc, written
    finally:
        gc.unfreeze()


def _sync_workflow(url: str, as_of: date, config: Config, facts_key: str) -> int:
    """``workflow.sync_changed`` on the store at ``url`` (in a process of its own: ``decide_and_record``)."""
    store = Store(url)
    try:
        return workflow.sync_changed(store, as_of, config, facts_key)
    finally:
        store.dispose()


def _record_lists(url: str, outputs: dict[str, Sequence[dict[str, Any]]], facts_key: str, as_of: date, config: Config) -> None:
    """``lists.record`` in a write transaction of the store at ``url`` (in a process of its own:
    ``decide_and_record``)."""
    store = Store(url)
    try:
        with store.write() as conn:
            lists.record(conn, outputs, facts_key, as_of, config)
    finally:
        store.dispose()


def ingest_files(
    store: Store,
    files: list[tuple[Path, str]],
    workers: int | None = None,
    progress: Callable[[str], None] | None = None,
    queue: bool = False,
    as_of: date | None = None,
) -> IngestReport:
    """Ingest the files, in parallel processes when there are several cores.

    The files are recorded first (SHA-256, duplicates) in this process; then the processes take
    the files, and a large X12 file in parts (every n-th transaction set), so that one big file
    keeps every core busy too.  Each transaction set is one write transaction (on SQLite the
    processes queue for the write lock, parsing side by side), so the store ends up the same
    whatever the interleaving.  A file is marked complete when all its parts are in.
    ``workers`` defaults to the number of cores.

    With ``queue`` (PostgreSQL), the same tasks are deferred as jobs to ``edirecon worker``
    processes, on this machine or others, and the run waits for them (``engine.queue``); the jobs
    carry ``as_of``, the day their detection dates refunds by.
    """
    n = worker_count(workers)
    ingestor = Ingestor(store)
    if queue:
        # deferred: the queue path imports procrastinate, which a run without --queue never needs
        from edirecon.engine.scale.queue import configure, defer_and_wait

        configure(store.url)
        split = [part for path, name in files if (task := ingestor.begin(path, name)) is not None for part in _parts(task, n)]
        if split:
            ingestor.report.add(defer_and_wait(store, split, progress, as_of=as_of))
        return ingestor.report
    if n == 1 or not files:
        for path, name in files:
            ingestor.ingest(path, name)
            if progress is not None:
                progress(name)
        return ingestor.report
    store.dispose()  # no open database handle may cross a fork
    # fork on Linux: the pool starts at once and inherits the loaded modules
    context = fork_context()
    # the largest first, so that the processes finish close together
    ordered = sorted(files, key=lambda file: -file[0].stat().st_size)
    tasks: list[FileTask] = []
    left: dict[int, int] = {}
    futures: dict[Future[IngestReport], FileTask] = {}
    with ProcessPoolExecutor(min(n, len(files)), mp_context=context, initializer=die_with_parent) as pool:
        # the processes start now, before this one opens the store again: each file is recorded
        # (SHA-256, duplicates) here and handed to them at once, so that they parse the largest
        # files while the others are still being recorded
        pool.submit(int).result()
        for path, name in ordered:
            task = ingestor.begin(path, name)
            if task is None:
                if progress is not None:
                    progress(name)
                continue
            parts = _parts(task, n)
            tasks += parts
            left[task.file_id] = len(parts)
            futures.update((pool.submit(_ingest_in_worker, store.url, part), part) for part in parts)
        for future in as_completed(futures):
            ingestor.report.add(future.result())
            task = futures[future]
            left[task.file_id] -= 1
            if left[task.file_id] == 0:
                ingestor.finish(task)
                if progress is not None:
                    progress(task.name)
    if any(task.parts > 1 for task in tasks):
        store.analyze()
    return ingestor.report


def _parts(task: FileTask, n: int) -> list[FileTask]:
    """A large X12 file in ``n`` parts (every n-th transaction set); any other file whole."""
    parts = n if task.kind == "x12" and task.path.stat().st_size >= SPLIT_BYTES else 1
    return [replace(task, part=k, parts=parts) for k in range(parts)]


_worker_store: Store | None = None


def _ingest_in_worker(url: str, task: FileTask) -> IngestReport:
    """One file or part of one, in a pool process (which keeps its own store open between tasks)."""
    global _worker_store
    if _worker_store is None or _worker_store.url != url:
        _worker_store = Store(url)
    ingestor = Ingestor(_worker_store)
    ingestor.ingest_part(task)
    return ingestor.report


def _peak_mib(children: bool = False) -> int:
    """This process's peak resident set so far, or with ``children`` the largest of the processes
    it has waited for, in MiB (0 where the platform does not say)."""
    try:
        # deferred: resource is POSIX-only (peak memory is simply not reported elsewhere)
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return 0
    return resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF).ru_maxrss // 1024


def _count(store: Store, table: str) -> int:
    with store.engine.connect() as conn:
        return count_rows(conn, table)
