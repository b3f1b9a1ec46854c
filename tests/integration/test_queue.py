"""The scale-out path on a real PostgreSQL: `edirecon worker` processes doing the jobs of
`run --queue`, detection by claim number, killed workers, failing jobs, `status` and `retry`."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy
from conftest import REPO, SAMPLE_EDI
from goldens import normalise_outputs

from edirecon.engine.config import Config
from edirecon.engine.run import run

AS_OF = date(2026, 11, 27)
#: a replay for an audit: refunds due 60 days after it, long before the day the workers run
PAST = date(2026, 1, 15)
pytestmark = [pytest.mark.postgres, pytest.mark.slow]

#: every rule scenario but the one whose kept copy of a twice-sent remittance depends on arrival
SCENARIOS = [
    REPO / "sample_edi",
    *sorted(p for p in (REPO / "tests" / "fixtures" / "engine").iterdir() if p.is_dir() and p.name != "duplicate-file-and-remittance"),
]


def _env(**extra: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO), EDIRECON_JOB_RETRY="1,0", **extra)


@contextmanager
def workers(
    url: str, n: int, stalled_after: float = 30.0, as_of: str | list[str | None] | None = "2026-11-27", cwd: Path = REPO, **env: str
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``n`` `edirecon worker` processes on the store ``url``, stopped with SIGTERM afterwards; each
    started with its ``--as-of`` (one for all, or one each; None: none, the worker's clock) in ``cwd``."""
    days = as_of if isinstance(as_of, list) else [as_of] * n
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "edirecon", "worker", "--db", url, *(["--as-of", day] if day else []), "--stalled-after", str(stalled_after)],
            cwd=cwd,
            env=_env(**env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for day in days
    ]
    try:
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stderr:
                p.stderr.close()


def _outputs(out: Path) -> dict[str, bytes]:
    """Every output of a run, the clock taken out (the manifest's time and batch, the time of each
    refund's last action: ``goldens.normalise_outputs``)."""
    return normalise_outputs({p.name: p.read_bytes() for p in sorted(out.iterdir()) if not p.name.startswith(".")})


def _drain(url: str, timeout: float = 60) -> None:
    """Wait until the workers have no job waiting or running."""
    deadline = time.monotonic() + timeout
    while _count(url, "SELECT COUNT(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"):
        assert time.monotonic() < deadline, "the workers did not drain the queue"
        time.sleep(0.2)


def _engine(url: str) -> sqlalchemy.Engine:
    return sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def _count(url: str, sql: str) -> int:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql(sql).scalar_one())
    finally:
        engine.dispose()


@pytest.mark.parametrize("n", [1, 3])
def test_rule_suite_through_workers_gives_the_outputs_of_sqlite(tmp_path: Path, pg_url: str, n: int) -> None:
    """Every rule scenario, ingested by 1 and by 3 workers from the queue, gives byte-identical
    outputs to the embedded SQLite path; the refunds detection keeps are those of the run."""
    expected = run(SCENARIOS, f"sqlite:///{tmp_path}/s.db", tmp_path / "sqlite", AS_OF, Config(), workers=1)
    with workers(pg_url, n):
        result = run(SCENARIOS, pg_url, tmp_path / "queue", AS_OF, Config(), queue=True)
        _drain(pg_url)  # the detection jobs the files deferred
    assert result.report.files_ingested == expected.report.files_ingested > 40
    assert _outputs(tmp_path / "queue") == _outputs(tmp_path / "sqlite")
    engine = _engine(pg_url)
    with engine.connect() as conn:
        jobs = dict(conn.exec_driver_sql("SELECT status::text, COUNT(*) FROM procrastinate_jobs GROUP BY 1").all())
        kept = {r[0]: (r[1], r[2]) for r in conn.exec_driver_sql("SELECT refund_id, amount::text, status FROM detections")}
    engine.dispose()
    assert set(jobs) == {"succeeded"} and jobs["succeeded"] >= result.report.files_ingested
    assert kept == {r["refund_id"]: (str(r["amount"]), r["status"]) for r in result.outputs["refund_requests"]}


def test_detection_jobs_alone_find_what_the_run_finds(tmp_path: Path, pg_url: str) -> None:
    """With nothing but the workers' detection jobs (deferred as each file completes), the kept
    refunds equal a full run's; two workers share the overlapping claim numbers."""
    with workers(pg_url, 2):
        result = run(SCENARIOS, pg_url, tmp_path / "queue", AS_OF, Config(), queue=True)
        engine = _engine(pg_url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM detections")  # forget what the run kept; detect again by claim number only
            pcns = sorted(
                {r[0] for r in conn.exec_driver_sql("SELECT patient_control_number FROM claims UNION SELECT patient_control_number FROM claim_payments")}
            )
        from edirecon.engine.scale.queue import opened

        with opened(pg_url) as sync:  # overlapping batches: every claim number is in two jobs
            half = len(pcns) // 2
            for batch in (pcns[: half + 5], pcns[half - 5 :], pcns[::2], pcns[1::2]):
                sync.configure_task("edirecon.detect", queue="detect").defer(pcns=batch)
        _drain(pg_url)
        with engine.connect() as conn:
            kept = sorted((r[0], str(r[1])) for r in conn.exec_driver_sql("SELECT refund_id, amount FROM detections"))
            failed = conn.exec_driver_sql("SELECT COUNT(*) FROM procrastinate_jobs WHERE status = 'failed'").scalar_one()
        engine.dispose()
    assert failed == 0
    assert kept == sorted((r["refund_id"], str(r["amount"])) for r in result.outputs["refund_requests"])
    assert len(kept) == len({rid for rid, _ in kept})  # one refund per id, never two


def _generate(folder: Path, claims: int, per: int) -> None:
    spec = importlib.util.spec_from_file_location("bench_generate", REPO / "bench" / "generate.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    sys.modules["bench_generate"] = gen
    spec.loader.exec_module(gen)
    gen.generate("837p", str(folder / "claims.837"), claims=claims, seed=11, claims_per_transaction=per)
    gen.generate("835", str(folder / "remit.835"), claims=claims, seed=11, claims_per_transaction=per, duplicates=4, overpayments=4)
    for leftover in folder.glob("*.planted.json"):
        leftover.unlink()


def test_a_worker_killed_mid_job_loses_nothing_and_duplicates_nothing(tmp_path: Path, pg_url: str) -> None:
    """SIGKILL a worker in the middle of ingesting; another worker puts its stalled job back in
    the queue and completes it: the store holds every claim once and the outputs are SQLite's."""
    data = tmp_path / "in"
    data.mkdir()
    _generate(data, claims=6000, per=60)
    expected = run([data], f"sqlite:///{tmp_path}/s.db", tmp_path / "sqlite", AS_OF, Config(), workers=1)
    run_proc = None
    with workers(pg_url, 1, stalled_after=2) as (victim,):
        run_proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edirecon",
                "run",
                str(data),
                "--db",
                pg_url,
                "--queue",
                "--out",
                str(tmp_path / "queue"),
                "--as-of",
                "2026-11-27",
                "--workers",
                "1",
            ],
            cwd=REPO,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        done = 0
        while time.monotonic() < deadline:
            assert run_proc.poll() is None, run_proc.communicate()[1].decode(errors="replace")[-2000:]
            try:
                done = _count(pg_url, "SELECT COUNT(*) FROM transactions")
            except sqlalchemy.exc.SQLAlchemyError:
                done = 0
            if done >= 5:
                victim.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        else:
            victim.kill()
        victim.wait()
        assert victim.returncode == -signal.SIGKILL and 5 <= done < 200, f"not killed in the middle ({done} transaction sets in)"
        time.sleep(0.5)
        partial = _count(pg_url, "SELECT COUNT(*) FROM transactions")
        assert partial < 200  # the killed job left a file half ingested
        with workers(pg_url, 1, stalled_after=2):  # a second worker rescues the stalled job
            _, err = run_proc.communicate(timeout=180)
    assert run_proc.returncode == 0, err.decode(errors="replace")[-2000:]
    assert _count(pg_url, "SELECT COUNT(*) FROM claims") == expected.report.claims == 6000
    assert _count(pg_url, "SELECT COUNT(*) FROM claim_payments") == expected.report.claim_payments
    assert _count(pg_url, "SELECT COUNT(*) FROM transactions") == 200
    assert _outputs(tmp_path / "queue") == _outputs(tmp_path / "sqlite")


def test_a_failing_job_is_retried_parked_shown_by_status_and_rerun_by_retry(tmp_path: Path, pg_url: str) -> None:
    """A job that keeps failing is retried, then parked as failed; `status` shows it and its error;
    once the cause is fixed, `retry` runs it again and the file is ingested."""
    from edirecon.engine.ingest.ingestor import Ingestor
    from edirecon.engine.scale.queue import configure, opened

    source = REPO / "sample_edi" / "duplicate-payment" / "remit-1.835"
    moved = tmp_path / "remit-1.835"
    moved.write_bytes(source.read_bytes())
    store = configure(pg_url)
    task = Ingestor(store).begin(moved, "remit-1.835")
    assert task is not None
    moved.rename(tmp_path / "away.835")  # the job will not find its file
    with opened(pg_url) as sync:
        job_id = sync.configure_task("edirecon.ingest_part", queue="ingest").defer(
            file_id=task.file_id, path=str(moved), name=task.name, sha=task.sha, kind=task.kind, part=0, parts=1
        )
    store.dispose()
    with workers(pg_url, 1):
        deadline = time.monotonic() + 60
        while _count(pg_url, f"SELECT COUNT(*) FROM procrastinate_jobs WHERE id = {job_id} AND status = 'failed'") == 0:
            assert time.monotonic() < deadline, "the job was not parked"
            time.sleep(0.2)
        shown = subprocess.run([sys.executable, "-m", "edirecon", "status", "--db", pg_url, "--json"], cwd=REPO, env=_env(), capture_output=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        doc = json.loads(shown.stdout)
        assert doc["failed"] == 1 and doc["files"] == {"incomplete": 1} and doc["workers"] == 1
        assert [j["id"] for j in doc["failed_jobs"]] == [job_id] and doc["failed_jobs"][0]["attempts"] == 2
        assert len(doc["last_errors"]) == 2 and all("cannot be read" in e["error"] for e in doc["last_errors"])
        (tmp_path / "away.835").rename(moved)  # fixed: the file is back
        again = subprocess.run([sys.executable, "-m", "edirecon", "retry", "--db", pg_url], cwd=REPO, env=_env(), capture_output=True, timeout=60)
        assert again.returncode == 0 and f"1 job(s) back in the queue: {job_id}" in again.stdout.decode()
        deadline = time.monotonic() + 60
        while _count(pg_url, "SELECT COUNT(*) FROM files WHERE complete") == 0:
            assert time.monotonic() < deadline, "the retried job did not complete the file"
            time.sleep(0.2)
    assert _count(pg_url, "SELECT COUNT(*) FROM claim_payments") == 1
    assert _count(pg_url, f"SELECT COUNT(*) FROM procrastinate_jobs WHERE id = {job_id} AND status = 'succeeded'") == 1


def test_worker_and_status_refuse_sqlite_with_one_line(tmp_path: Path) -> None:
    """The queue lives in PostgreSQL: a SQLite URL is a usage error (exit 2), never a traceback."""
    for args in (["worker"], ["status"], ["retry"]):
        done = subprocess.run(
            [sys.executable, "-m", "edirecon", *args, "--db", f"sqlite:///{tmp_path}/x.db"], cwd=REPO, env=_env(), capture_output=True, timeout=60
        )
        assert done.returncode == 2 and b"Traceback" not in done.stderr
        assert done.stderr.decode().count("\n") == 1 and "PostgreSQL" in done.stderr.decode()


def test_watch_defers_each_dropped_file_to_the_workers(tmp_path: Path, pg_url: str) -> None:
    """`watch --queue` on PostgreSQL: workers parse and ingest the dropped files; the watcher
    acknowledges, archives and publishes as it does alone, with the outputs of `run` on SQLite."""
    scenario = REPO / "sample_edi" / "duplicate-payment"
    files = sorted(p for p in scenario.iterdir() if p.suffix in (".835", ".837"))
    inbound = tmp_path / "root" / "inbound" / "partner-a"
    inbound.mkdir(parents=True)
    for f in files:
        (inbound / f.name).write_bytes(f.read_bytes())
        (inbound / f"{f.name}.done").write_bytes(b"")
    expected = run(files, f"sqlite:///{tmp_path}/s.db", tmp_path / "sqlite", AS_OF, Config(), workers=1)
    with workers(pg_url, 2):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "edirecon",
                "watch",
                str(tmp_path / "root"),
                "--db",
                pg_url,
                "--once",
                "--queue",
                "--interval",
                "0.2",
                "--as-of",
                "2026-11-27",
            ],
            cwd=REPO,
            env=_env(),
            capture_output=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
        _drain(pg_url)
        ingest_jobs = _count(pg_url, "SELECT COUNT(*) FROM procrastinate_jobs WHERE task_name = 'edirecon.ingest_part' AND status = 'succeeded'")
    assert ingest_jobs == len(files)
    archived = sorted(p.name for p in (tmp_path / "root" / "archive").rglob("*") if p.is_file())
    assert archived == sorted(f.name for f in files)
    assert sorted(p.name for p in (tmp_path / "root" / "ack").rglob("*.999")) == ["claims.837.999"]
    import csv

    def refunds(path: Path) -> list[tuple[str, ...]]:  # evidence names files as each path saw them
        return [(r["refund_id"], r["reason"], r["amount"], r["status"], r["due_by"]) for r in csv.DictReader(open(path, encoding="utf-8"))]

    assert refunds(tmp_path / "root" / "outbound" / "refund_requests.csv") == refunds(tmp_path / "sqlite" / "refund_requests.csv")
    assert [r["reason"] for r in expected.outputs["refund_requests"]] == ["DUPLICATE_PAYMENT"]


def test_a_fleet_started_at_once_on_a_fresh_database_comes_up_whole(pg_url: str) -> None:
    """Regression: four workers started together on an empty database raced to create the queue's
    schema; one saw its first table before its functions existed and stopped with a database error."""
    with workers(pg_url, 4) as procs:
        deadline = time.monotonic() + 60
        while (
            _count(pg_url, "SELECT COUNT(*) FROM pg_tables WHERE tablename = 'procrastinate_workers'") == 0
            or _count(pg_url, "SELECT COUNT(*) FROM procrastinate_workers") < 4
        ):
            assert all(p.poll() is None for p in procs), "a worker stopped while the fleet started"
            assert time.monotonic() < deadline, "the fleet did not come up"
            time.sleep(0.1)
        assert all(p.poll() is None for p in procs)


def _kept_dates(url: str) -> dict[str, tuple[date, date]]:
    """The refunds detection keeps: refund id -> (identified_on, due_by)."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return {r[0]: (r[1], r[2]) for r in conn.exec_driver_sql("SELECT refund_id, identified_on, due_by FROM detections")}
    finally:
        engine.dispose()


def _job_days(url: str) -> dict[str, set[str | None]]:
    """The ``as_of`` arguments the jobs were deferred with, by task name (None: none)."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            found: dict[str, set[str | None]] = {}
            for task, day in conn.exec_driver_sql("SELECT task_name, args->>'as_of' FROM procrastinate_jobs"):
                found.setdefault(task, set()).add(day)
            return found
    finally:
        engine.dispose()


def test_run_queue_with_a_past_as_of_writes_the_outputs_of_run_byte_for_byte(tmp_path: Path, pg_url: str, in_repo: Path) -> None:
    """Regression (issue 12): `run --queue --as-of` in the past, with two workers (one on its clock,
    one started with another --as-of) in another folder, writes every output file byte for byte as
    `run` does: refunds dated by the run's --as-of, files named as given."""
    inputs = [Path("sample_edi")]
    expected = run(inputs, f"sqlite:///{tmp_path}/s.db", tmp_path / "plain", PAST, Config(), workers=1)
    with workers(pg_url, 2, as_of=[None, "2026-11-27"], cwd=tmp_path):
        run(inputs, pg_url, tmp_path / "queue", PAST, Config(), queue=True)
        _drain(pg_url)  # the detection jobs the files deferred
    assert _outputs(tmp_path / "queue") == _outputs(tmp_path / "plain")
    refunds = [json.loads(line) for line in (tmp_path / "queue" / "refund_requests.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(refunds) == len(expected.outputs["refund_requests"]) == 4
    assert {(r["identified_on"], r["due_by"]) for r in refunds} == {(PAST.isoformat(), (PAST + timedelta(days=60)).isoformat())}
    files = {e["file"] for r in refunds for e in r["evidence"] if "file" in e}
    assert files and all(f.startswith("sample_edi/") for f in files)
    assert _kept_dates(pg_url) == {r["refund_id"]: (PAST, PAST + timedelta(days=60)) for r in refunds}
    assert _job_days(pg_url) == {"edirecon.ingest_part": {PAST.isoformat()}, "edirecon.detect": {PAST.isoformat()}}


def test_detection_jobs_date_refunds_by_the_as_of_they_carry(tmp_path: Path, pg_url: str) -> None:
    """With no run deciding after them, the workers' detection jobs keep every refund dated by the
    --as-of of the run that deferred the files, not by the workers' clocks or their own --as-of."""
    from edirecon.engine.run import ingest_files, input_files
    from edirecon.engine.scale.queue import configure

    expected = run([SAMPLE_EDI], f"sqlite:///{tmp_path}/s.db", tmp_path / "plain", PAST, Config(), workers=1)
    store = configure(pg_url)
    try:
        with workers(pg_url, 2, as_of=[None, "2026-11-27"]):
            ingest_files(store, input_files([SAMPLE_EDI]), workers=1, queue=True, as_of=PAST)
            _drain(pg_url)
    finally:
        store.dispose()
    assert _kept_dates(pg_url) == {r["refund_id"]: (r["identified_on"], r["due_by"]) for r in expected.outputs["refund_requests"]}
    assert {r["identified_on"] for r in expected.outputs["refund_requests"]} == {PAST}
    assert _job_days(pg_url) == {"edirecon.ingest_part": {PAST.isoformat()}, "edirecon.detect": {PAST.isoformat()}}


def test_jobs_queued_without_as_of_by_an_older_version_still_run(tmp_path: Path, pg_url: str) -> None:
    """Ingestion jobs deferred with the arguments of the version before (no as_of) still run, and
    their detection dates refunds by the worker's --as-of, as it did."""
    from edirecon.engine.ingest.ingestor import Ingestor
    from edirecon.engine.scale.queue import configure, opened

    files = sorted(p for p in (SAMPLE_EDI / "duplicate-payment").iterdir() if p.suffix in (".835", ".837"))
    expected = run(files, f"sqlite:///{tmp_path}/s.db", tmp_path / "plain", AS_OF, Config(), workers=1)
    store = configure(pg_url)
    try:
        tasks = [task for f in files if (task := Ingestor(store).begin(f, str(f))) is not None]
        with opened(pg_url) as sync:
            for task in tasks:
                sync.configure_task("edirecon.ingest_part", queue="ingest").defer(
                    file_id=task.file_id, path=str(task.path), name=task.name, sha=task.sha, kind=task.kind, part=0, parts=1
                )
    finally:
        store.dispose()
    with workers(pg_url, 1, as_of="2026-11-27"):
        _drain(pg_url)
    assert _count(pg_url, "SELECT COUNT(*) FROM procrastinate_jobs WHERE status <> 'succeeded'") == 0
    assert _kept_dates(pg_url) == {r["refund_id"]: (AS_OF, AS_OF + timedelta(days=60)) for r in expected.outputs["refund_requests"]}
    assert len(expected.outputs["refund_requests"]) == 1
    assert _job_days(pg_url) == {"edirecon.ingest_part": {None}, "edirecon.detect": {None}}


def _drop(root: Path) -> None:
    """Every X12 file and patient-payments CSV of sample_edi/, one partner folder per scenario, ready."""
    for f in sorted(SAMPLE_EDI.rglob("*")):
        if f.suffix in (".835", ".837", ".csv"):
            target = root / "inbound" / f.parent.name / f.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(f.read_bytes())
            target.with_name(f"{f.name}.done").write_bytes(b"")


def _published(outbound: Path) -> dict[str, bytes]:
    """The outputs of `run` a watcher published (not its manifest, which names the batch and time)."""
    return {p.name: p.read_bytes() for p in sorted(outbound.iterdir()) if p.is_file() and p.name != "manifest.json"}


def test_watch_queue_with_a_past_as_of_publishes_the_outputs_of_watch_alone(tmp_path: Path, pg_url: str) -> None:
    """Regression (issue 12): `watch --queue --once --as-of` in the past, with workers on other
    clocks, publishes byte for byte what `watch --once --as-of` alone publishes from the same drop."""
    for name in ("alone", "queued"):
        _drop(tmp_path / name)
    watch = [sys.executable, "-m", "edirecon", "watch", "--once", "--interval", "0.2", "--as-of", PAST.isoformat()]
    alone = subprocess.run([*watch, str(tmp_path / "alone"), "--db", f"sqlite:///{tmp_path}/s.db"], cwd=REPO, env=_env(), capture_output=True, timeout=180)
    with workers(pg_url, 2, as_of=[None, "2026-11-27"], cwd=tmp_path):
        queued = subprocess.run([*watch, str(tmp_path / "queued"), "--db", pg_url, "--queue"], cwd=REPO, env=_env(), capture_output=True, timeout=300)
        _drain(pg_url)
    assert alone.returncode == queued.returncode == 1, queued.stderr.decode(errors="replace")[-2000:]  # broken-file/ quarantined
    published = _published(tmp_path / "queued" / "outbound")
    assert published == _published(tmp_path / "alone" / "outbound")
    refunds = published["refund_requests.csv"].decode().splitlines()[1:]
    assert len(refunds) == 4 and all(f",{PAST.isoformat()},{PAST + timedelta(days=60)}," in r for r in refunds)
    assert _job_days(pg_url)["edirecon.detect"] == {PAST.isoformat()}
