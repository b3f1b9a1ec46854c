"""The scale-out path: jobs in PostgreSQL (procrastinate), done by ``edirecon worker`` processes.

The store's own database is the queue, so there is no second stateful system to run.  Two tasks:

* ``edirecon.ingest_part`` -- one file, or one part of a large X12 file (every n-th transaction
  set), ingested exactly as ``run`` ingests it (``Ingestor.ingest_part``: idempotent per
  transaction set).  The last part to finish marks the file complete and defers detection for the
  claim numbers the file names.
* ``edirecon.detect`` -- decide again the encounters of some claim numbers and keep their refunds
  (``engine.detect``), under per-claim-number advisory locks.

Both carry ``as_of`` (ISO date), the ``--as-of`` of the run or watch that deferred the work, and
detection dates its refunds by it, never by the worker's clock; the detection jobs a file defers
inherit its ``as_of``.  A job without one (queued by an older version) takes the worker's
``--as-of``, else today.

A failed job is retried with exponential backoff (``RETRY``: 2, 4, 8, 16 s); one that fails five times is left
``failed`` with its error in ``job_failures`` (``edirecon status``) until ``edirecon retry``.  A
worker killed in the middle of a job stops sending heartbeats; any other worker puts its jobs back
in the queue after ``stalled_after`` seconds, and ingestion being idempotent, the job's second run
loses nothing and duplicates nothing.

Files are named by path in the jobs: workers on other machines need the same path (a shared
mount), as drop folders on NFS/SMB have.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import procrastinate
from sqlalchemy.exc import SQLAlchemyError

from edirecon.engine.config import Config
from edirecon.engine.ingest.ingestor import (
    SPLIT_BYTES,
    FileTask,
    Ingestor,
    IngestReport,
)
from edirecon.engine.logging import get_logger
from edirecon.engine.scale.detect import BATCH, detect, file_pcns
from edirecon.engine.store import jobs
from edirecon.engine.store.connection import (
    Store,
    error_text,
    mask_credentials,
    open_store,
    store_error,
)
from edirecon.errors import QueueError, UsageError

log = get_logger("edirecon.queue")


def _retry_strategy() -> procrastinate.RetryStrategy:
    """Four retries (five attempts), waiting 2, 4, 8, 16 s; then the job is parked (``failed``).
    ``EDIRECON_JOB_RETRY="retries,base"`` changes both (the tests use "1,0")."""
    retries, base = (int(x) for x in os.environ.get("EDIRECON_JOB_RETRY", "4,2").split(","))
    return procrastinate.RetryStrategy(max_attempts=retries, exponential_wait=base)


RETRY = _retry_strategy()

app = procrastinate.App(connector=procrastinate.PsycopgConnector())


_configured: dict[str, Store] = {}


class _Context:
    """What the tasks of this process work with (set by ``edirecon worker``)."""

    store: Store | None = None
    config: Config = Config()
    as_of: date | None = None


context = _Context()


def conninfo(url: str) -> str:
    """A libpq URI from a SQLAlchemy PostgreSQL URL (the queue needs PostgreSQL)."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    raise UsageError(f"--db {mask_credentials(url)!r}: the job queue lives in PostgreSQL; give a postgresql:// URL (SQLite runs in-process)")


def configure(url: str, config: Config | None = None, as_of: date | None = None, create: bool = True) -> Store:
    """Point this process's tasks and queue at the store ``url``; create or upgrade both schemas
    (once per process and store).  Without ``create`` the store must exist already
    (``StoreUnavailable`` otherwise, and nothing is created)."""
    conninfo(url)
    store = _configured.get(url)
    if store is None:
        store = open_store(url, create=create)
        try:
            _queue_schema(store)
        except SQLAlchemyError as exc:
            store.dispose()
            raise store_error(exc, url) from None
        _configured[url] = store
    context.store, context.config, context.as_of = store, config or Config(), as_of
    return store


def _queue_schema(store: Store) -> None:
    """One process creates the queue's schema; the others wait for it to be whole (procrastinate
    applies it statement by statement, so its first table exists before its functions do)."""
    with store.engine.connect() as conn, jobs.queue_schema_lock(conn) as exists:
        if not exists:
            with opened(store.url) as sync:
                sync.schema_manager.apply_schema()


@contextmanager
def opened(url: str) -> Iterator[procrastinate.App]:
    """A synchronous app on the queue of ``url``, for deferring jobs and reading their state."""
    sync = procrastinate.App(connector=procrastinate.SyncPsycopgConnector(conninfo=conninfo(url)))
    with sync.open():
        yield sync


# -- tasks -----------------------------------------------------------------------------


def _store() -> Store:
    if context.store is None:
        raise RuntimeError("the worker's store is not configured (engine.queue.configure)")
    return context.store


def _recorded(task_name: str, job_args: dict[str, Any], body: Callable[[], Any]) -> Any:
    """Run a task body; a failure is recorded (error text, no patient data in the arguments) and
    raised again, so that procrastinate retries it."""
    try:
        return body()
    except Exception as exc:
        store = _store()
        with store.write() as conn:
            jobs.record_failure(
                conn,
                task=task_name,
                arguments=repr(job_args)[:2000],
                error=error_text(exc)[:2000],
                detail=("".join(traceback.format_tb(exc.__traceback__)) + error_text(exc))[-4000:],
                failed_at=datetime.now(UTC).replace(tzinfo=None),
            )
        log.warning("job_failed", task=task_name, error=type(exc).__name__)
        raise


def _as_of_arg(as_of: date | str | None) -> dict[str, str]:
    """The ``as_of`` job argument (ISO date), or none: a job deferred without one stays readable
    by workers of the version before it."""
    if as_of is None:
        return {}
    return {"as_of": as_of if isinstance(as_of, str) else as_of.isoformat()}


def _day(as_of: str | None) -> date:
    """The day a job decides as of: the one it carries, else the worker's ``--as-of``, else today."""
    if as_of:
        return date.fromisoformat(as_of)
    return context.as_of or date.today()


@app.task(name="edirecon.ingest_part", retry=RETRY, queue="ingest")
def ingest_part(file_id: int, path: str, name: str, sha: str, kind: str, part: int, parts: int, as_of: str | None = None) -> dict[str, int]:
    task = FileTask(Path(path), name, file_id, sha, kind, part, parts)
    return _recorded(
        "edirecon.ingest_part", {"file_id": file_id, "name": name, "part": part, "parts": parts, **_as_of_arg(as_of)}, lambda: _ingest_part(task, as_of)
    )


def _ingest_part(task: FileTask, as_of: str | None = None) -> dict[str, int]:
    store = _store()
    ingestor = Ingestor(store)
    ingestor.ingest_part(task)
    finished_file = False
    with store.write() as conn:
        done = jobs.part_done(conn, task.file_id, task.part, task.parts)
        if done >= task.parts:
            pcns = file_pcns(conn, task.file_id)
            with opened(store.url) as sync:  # detection first, then the file is complete: a crash in between repeats both
                for i in range(0, len(pcns), BATCH):
                    sync.configure_task("edirecon.detect", queue="detect").defer(pcns=pcns[i : i + BATCH], **_as_of_arg(as_of))
            jobs.mark_complete(conn, task.file_id)
            finished_file = True
    if finished_file and _size(task.path) >= SPLIT_BYTES:
        store.analyze()  # a large load: plan the detection jobs it deferred on fresh statistics
    log.info("part_ingested", file=task.name, part=task.part, parts=task.parts, file_complete=finished_file)
    return asdict(ingestor.report)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


@app.task(name="edirecon.detect", retry=RETRY, queue="detect")
def detect_job(pcns: list[str], as_of: str | None = None) -> int:
    def body() -> int:
        return len(detect(_store(), pcns, _day(as_of), context.config).refunds)

    return _recorded("edirecon.detect", {"claim_numbers": len(pcns), **_as_of_arg(as_of)}, body)


# -- the run's side: defer, then wait -----------------------------------------------


def defer_and_wait(
    store: Store, tasks: list[FileTask], progress: Callable[[str], None] | None = None, timeout: float | None = None, as_of: date | None = None
) -> IngestReport:
    """Defer one ``ingest_part`` job per task and wait until workers have completed every file.
    ``as_of`` (the run's or the watch's ``--as-of``) goes with every job, and with the detection
    jobs the files defer.  A job reads its file at the absolute path, and names it (in the store,
    hence in the outputs) as given to the run: ``task.name``.

    Raises ``QueueError`` when a job is parked as failed (its error is in ``edirecon status``).
    """
    report = IngestReport()
    with opened(store.url) as sync:
        job_ids = [
            sync.configure_task("edirecon.ingest_part", queue="ingest").defer(
                file_id=task.file_id,
                path=str(task.path.resolve()),
                name=task.name,
                sha=task.sha,
                kind=task.kind,
                part=task.part,
                parts=task.parts,
                **_as_of_arg(as_of),
            )
            for task in tasks
        ]
        files = {task.file_id: task.name for task in tasks}
        waiting = set(files)
        deadline = None if timeout is None else time.monotonic() + timeout
        while waiting:
            with store.engine.connect() as conn:
                done = jobs.complete_files(conn, list(waiting))
            for file_id in sorted(done):
                report.files_ingested += 1
                if progress is not None:
                    progress(files[file_id])
            waiting -= done
            if not waiting:
                break
            failed = [j for j in job_ids if sync.job_manager.get_job_status(j).value == "failed"]
            if failed:
                raise QueueError(
                    f"{len(failed)} ingestion job(s) failed after {(RETRY.max_attempts or 0) + 1} attempts (job ids "
                    f"{', '.join(map(str, failed))}); see `edirecon status`, then `edirecon retry`"
                )
            if deadline is not None and time.monotonic() > deadline:
                raise QueueError(f"{len(waiting)} file(s) not ingested within {timeout:.0f} s: are workers running (`edirecon worker`)?")
            time.sleep(0.2)
    with store.engine.connect() as conn:
        report.claims, report.claim_payments = jobs.files_counts(conn, list(files))
    return report


# -- the worker ------------------------------------------------------------------------


def run_worker(
    url: str, config: Config | None = None, concurrency: int = 1, stalled_after: float = 30.0, as_of: date | None = None, name: str | None = None
) -> None:
    """Work the queue until SIGTERM/SIGINT (the job in hand is finished first)."""
    configure(url, config, as_of)
    stop = threading.Event()
    rescuer = threading.Thread(target=_rescue_stalled, args=(url, stalled_after, stop), daemon=True)
    rescuer.start()
    heartbeat = max(0.5, min(10.0, stalled_after / 3))
    log.info("worker_started", concurrency=concurrency, stalled_after=stalled_after)
    try:
        with app.replace_connector(procrastinate.PsycopgConnector(conninfo=conninfo(url))):
            app.run_worker(
                queues=["ingest", "detect"],
                concurrency=concurrency,
                name=name or f"edirecon-{os.getpid()}",
                wait=True,
                update_heartbeat_interval=heartbeat,
                stalled_worker_timeout=stalled_after,
                fetch_job_polling_interval=1.0,
                delete_jobs="never",
            )
    finally:
        stop.set()
        log.info("worker_stopped")


def _rescue_stalled(url: str, stalled_after: float, stop: threading.Event) -> None:
    """Put back in the queue the jobs of workers that stopped sending heartbeats (killed)."""
    rescuer = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo(url)))

    async def rescue() -> None:
        async with rescuer.open_async():
            for job in await rescuer.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after):
                await rescuer.job_manager.retry_job_by_id_async(job.id, retry_at=datetime.now(UTC))
                log.warning("job_rescued", job_id=job.id, task=job.task_name)

    while not stop.wait(max(0.5, stalled_after / 2)):
        try:
            asyncio.run(rescue())
        except Exception as exc:  # the database away for a moment: try again on the next round
            log.warning("rescue_failed", error=type(exc).__name__, detail=error_text(exc)[:200])


# -- status ------------------------------------------------------------------------------


def status(url: str, last_errors: int = 10) -> dict[str, Any]:
    """Queue depth, jobs by state, files by state, and the last errors."""
    store = configure(url, create=False)
    try:
        with store.engine.connect() as conn:
            state = jobs.queue_state(conn, last_errors)
    finally:
        store.dispose()
    by_state: dict[str, int] = {}
    for j in state["jobs"]:
        by_state[j["status"]] = by_state.get(j["status"], 0) + j["n"]
    return {
        "queue_depth": by_state.get("todo", 0),
        "running": by_state.get("doing", 0),
        "failed": by_state.get("failed", 0),
        "succeeded": by_state.get("succeeded", 0),
        "workers": int(state["workers"]),
        "jobs": state["jobs"],
        "failed_jobs": state["failed"],
        "files": state["files"],
        "last_errors": state["errors"],
    }


def retry(url: str, job_ids: list[int] | None = None) -> list[int]:
    """Put parked (failed) jobs back in the queue with fresh attempts: the ones named, or all."""
    conninfo(url)  # PostgreSQL only: a clear message otherwise
    store = open_store(url, create=False)
    try:
        with store.write() as conn:
            rows = jobs.retry_failed(conn, job_ids)
    finally:
        store.dispose()
    log.info("jobs_retried", jobs=len(rows))
    return sorted(rows)
