"""The SQL of the job queue's side of the store (``engine.scale.queue``): the lock around creating
procrastinate's schema, job failures, the parts of a file ingested by workers, and the queue's
state for ``edirecon status`` and ``retry`` (PostgreSQL only)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from edirecon.engine.store import schema as t
from edirecon.engine.store.intake import insert_ignore

#: the session-level advisory lock held while procrastinate's schema is created
QUEUE_SCHEMA_LOCK = 727272


@contextmanager
def queue_schema_lock(conn: Connection) -> Iterator[bool]:
    """Hold the advisory lock ``QUEUE_SCHEMA_LOCK`` on ``conn`` (waiting for it); say whether the
    queue's schema is there (``procrastinate_jobs`` exists).  Released, and committed, on leaving."""
    conn.exec_driver_sql(f"SELECT pg_advisory_lock({QUEUE_SCHEMA_LOCK})")
    try:
        yield bool(conn.exec_driver_sql("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").scalar_one())
    finally:
        conn.exec_driver_sql(f"SELECT pg_advisory_unlock({QUEUE_SCHEMA_LOCK})")
        conn.commit()


def record_failure(conn: Connection, task: str, arguments: str, error: str, detail: str, failed_at: datetime) -> None:
    """A row of ``job_failures``."""
    conn.execute(t.job_failures.insert().values(task=task, arguments=arguments, error=error, detail=detail, failed_at=failed_at))


def part_done(conn: Connection, file_id: int, part: int, parts: int) -> int:
    """Record that ``part`` of a file is ingested; with the file's row locked (``FOR UPDATE``: the
    parts finishing together count one after the other), how many of its parts are done."""
    insert_ignore(conn, t.file_parts, [{"file_id": file_id, "part": part, "parts": parts}])
    conn.exec_driver_sql("SELECT id FROM files WHERE id = %s FOR UPDATE", (file_id,))
    return int(conn.execute(select(func.count()).select_from(t.file_parts).where(t.file_parts.c.file_id == file_id)).scalar_one())


def mark_complete(conn: Connection, file_id: int) -> None:
    """The file is ingested whole."""
    conn.execute(t.files.update().where(t.files.c.id == file_id).values(complete=True))


def complete_files(conn: Connection, file_ids: Sequence[int]) -> set[int]:
    """Which of ``file_ids`` are complete."""
    return set(conn.execute(select(t.files.c.id).where(t.files.c.id.in_(list(file_ids)), t.files.c.complete)).scalars())


def files_counts(conn: Connection, file_ids: Sequence[int]) -> tuple[int, int]:
    """The claims and claim payments the files ``file_ids`` brought."""
    counts = conn.exec_driver_sql(
        "SELECT (SELECT COUNT(*) FROM claims c JOIN transactions x ON c.transaction_id = x.id WHERE x.file_id = ANY(%s)),"
        " (SELECT COUNT(*) FROM claim_payments p JOIN remittances r ON p.remittance_id = r.id JOIN transactions x"
        "  ON r.transaction_id = x.id WHERE x.file_id = ANY(%s))",
        (list(file_ids), list(file_ids)),
    ).one()
    return int(counts[0]), int(counts[1])


def queue_state(conn: Connection, last_errors: int) -> dict[str, Any]:
    """The jobs by queue, task and state; the last 20 failed jobs; the files by completeness; the
    last ``last_errors`` job failures; the workers."""
    jobs = [
        dict(r)
        for r in conn.exec_driver_sql(
            "SELECT queue_name, task_name, status::text AS status, COUNT(*) AS n FROM procrastinate_jobs GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ).mappings()
    ]
    failed = [
        dict(r)
        for r in conn.exec_driver_sql("SELECT id, task_name, attempts FROM procrastinate_jobs WHERE status = 'failed' ORDER BY id DESC LIMIT 20").mappings()
    ]
    files = {("complete" if c else "incomplete"): n for c, n in conn.exec_driver_sql("SELECT complete, COUNT(*) FROM files GROUP BY complete")}
    errors = [
        dict(r)
        for r in conn.execute(
            select(t.job_failures.c.task, t.job_failures.c.error, t.job_failures.c.failed_at).order_by(t.job_failures.c.id.desc()).limit(last_errors)
        ).mappings()
    ]
    workers = conn.exec_driver_sql("SELECT COUNT(*) FROM procrastinate_workers").scalar_one()
    return {"jobs": jobs, "failed": failed, "files": files, "errors": errors, "workers": workers}


def retry_failed(conn: Connection, job_ids: Sequence[int] | None) -> list[int]:
    """Put the failed jobs ``job_ids`` (all of them when None) back in the queue with fresh
    attempts; their ids."""
    return list(
        conn.exec_driver_sql(
            "UPDATE procrastinate_jobs SET status = 'todo', attempts = 0, scheduled_at = NOW() "
            "WHERE status = 'failed' AND (%(all)s OR id = ANY(%(ids)s)) RETURNING id",
            {"all": job_ids is None, "ids": list(job_ids or [])},
        )
        .scalars()
        .all()
    )
