#!/usr/bin/env python3
"""The scale-out path measured in one run on this machine (PostgreSQL at EDIRECON_PG_ADMIN).

    python bench/bench_queue.py [--claims 100000] [--workers 1,2,4] [--store-claims 1000000]

1. N claims (837P + the 835 that pays them, 1,000 claims per transaction set) through
   ``edirecon run --queue`` with 1, 2 and 4 ``edirecon worker`` processes on a fresh PostgreSQL
   database each, and through the in-process path on SQLite (``edirecon run``, a process pool):
   seconds, claims/s, and scaling efficiency (claims/s with W workers / (W x claims/s with 1)).
   "Done" is when the run has written its outputs; "drained" when the workers have also finished
   the detection jobs the files deferred.
2. The cost of one more small 835 (10 claim payments, a second payment of claims already paid)
   into a store that holds M claims and their payments: ingested and detected in-process, and
   through a worker (deferred -> file complete -> detection done).  Target: under 1 second.

Generated inputs are kept in bench/data/ (not in git) and reused.  Figures go to
bench/results/queue.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DATA = BENCH / "data"
ADMIN = os.environ.get("EDIRECON_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))


def inputs(claims: int, seed: int) -> Path:
    """bench/data/<claims>-<seed>/ with claims.837 and remit.835 (generated once)."""
    from generate import generate

    folder = DATA / f"{claims}-{seed}"
    if not (folder / "remit.835").exists():
        folder.mkdir(parents=True, exist_ok=True)
        generate("837p", str(folder / "claims.837"), claims, seed=seed, claims_per_transaction=1000)
        generate("835", str(folder / "remit.835.tmp"), claims, seed=seed, claims_per_transaction=1000, duplicates=25, overpayments=25)
        os.replace(folder / "remit.835.tmp", folder / "remit.835")
    return folder


def small_835(seed: int) -> Path:
    """Ten claim payments of claims 1-10 of ``seed`` again, under a new trace number."""
    from generate import generate

    path = DATA / f"small-{seed}.835"
    if not path.exists():
        DATA.mkdir(parents=True, exist_ok=True)
        generate("835", str(path), 10, seed=seed, claims_per_transaction=10, plb=False)
        text = path.read_text(encoding="ascii")
        trn = text.split("TRN*1*", 1)[1].split("*", 1)[0]
        path.write_text(text.replace(f"TRN*1*{trn}*", "TRN*1*RESENT000001*", 1), encoding="ascii")
    return path


@contextmanager
def database() -> str:
    import sqlalchemy

    admin = sqlalchemy.create_engine(ADMIN.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    name = f"edirecon_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def workers(url: str, n: int):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "cli", "worker", "--db", url, "--as-of", "2026-11-27"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(n)
    ]
    try:
        deadline = time.monotonic() + 60
        while scalar(url, "SELECT COUNT(*) FROM procrastinate_workers", default=0) < n:  # every worker up
            if time.monotonic() > deadline:
                raise RuntimeError("workers did not start")
            time.sleep(0.1)
        yield procs
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)


def scalar(url: str, sql: str, default: int | None = None) -> int:
    import sqlalchemy

    engine = sqlalchemy.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql(sql).scalar_one())
    except sqlalchemy.exc.SQLAlchemyError:
        if default is None:
            raise
        return default
    finally:
        engine.dispose()


def drained(url: str) -> None:
    while scalar(url, "SELECT COUNT(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"):
        time.sleep(0.05)
    failed = scalar(url, "SELECT COUNT(*) FROM procrastinate_jobs WHERE status = 'failed'")
    if failed:
        raise RuntimeError(f"{failed} jobs failed")


def run_cli(args: list[str], cwd: Path) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "cli", "run", *args, "--as-of", "2026-11-27"], cwd=cwd, env=env, capture_output=True)
    if done.returncode:
        raise RuntimeError(done.stderr.decode(errors="replace")[-2000:])
    return time.perf_counter() - start


def scaling(claims: int, counts: list[int], seed: int, work: Path) -> dict:
    folder = inputs(claims, seed)
    out: dict = {}
    seconds = run_cli([str(folder), "--db", f"sqlite:///{work}/sqlite.db", "--out", str(work / "sqlite-out")], work)
    out["sqlite in-process"] = {"workers": os.cpu_count(), "seconds": round(seconds, 2), "claims_per_s": round(claims / seconds)}
    print(f"  SQLite, in-process pool of {os.cpu_count()}: {seconds:6.1f} s  {claims / seconds:8,.0f} claims/s", flush=True)
    for n in counts:
        with database() as url:
            with workers(url, n):
                start = time.perf_counter()
                run_cli([str(folder), "--db", url, "--queue", "--workers", str(n), "--out", str(work / f"pg-{n}-out")], work)
                done = time.perf_counter() - start
                drained(url)
                drain = time.perf_counter() - start
            same = all(
                (work / f"pg-{n}-out" / f).read_bytes() == (work / "sqlite-out" / f).read_bytes()
                for f in ("refund_requests.csv", "recoupments.csv", "credit_balances.csv")
            )
        out[f"postgresql {n} workers"] = {
            "workers": n,
            "seconds": round(done, 2),
            "drained_seconds": round(drain, 2),
            "claims_per_s": round(claims / done),
            "outputs_equal_sqlite": same,
        }
        print(
            f"  PostgreSQL, {n} worker(s):          {done:6.1f} s  {claims / done:8,.0f} claims/s  (queue drained at {drain:.1f} s; "
            f"outputs {'equal' if same else 'DIFFERENT from'} SQLite's)",
            flush=True,
        )
    base = out.get("postgresql 1 workers")
    for key, row in out.items():
        if key.startswith("postgresql") and base:
            # to the outputs (the run also decides in its own process) and to the drained queue
            row["scaling_efficiency"] = round(row["claims_per_s"] / (row["workers"] * base["claims_per_s"]), 2)
            row["drained_claims_per_s"] = round(claims / row["drained_seconds"])
            row["drained_scaling_efficiency"] = round(base["drained_seconds"] / (row["workers"] * row["drained_seconds"]), 2)
    return out


def incremental(store_claims: int, seed: int) -> dict:
    from datetime import date

    from edirecon.engine.config import Config
    from edirecon.engine.ingest.ingestor import Ingestor
    from edirecon.engine.run import ingest_files, input_files
    from edirecon.engine.scale.detect import detect, file_pcns
    from edirecon.engine.scale.queue import configure, defer_and_wait
    from edirecon.engine.store.connection import Store

    folder = inputs(store_claims, seed)
    small = small_835(seed)
    result: dict = {"store_claims": store_claims}
    with database() as url:
        store = configure(url)
        start = time.perf_counter()
        ingest_files(store, input_files([folder]), workers=os.cpu_count())
        result["store_build_seconds"] = round(time.perf_counter() - start, 1)
        store = Store(url)
        result["claims_in_store"] = scalar(url, "SELECT COUNT(*) FROM claims")
        result["payments_in_store"] = scalar(url, "SELECT COUNT(*) FROM claim_payments")
        print(
            f"  store: {result['claims_in_store']:,} claims and {result['payments_in_store']:,} claim payments "
            f"(built in {result['store_build_seconds']:.0f} s)",
            flush=True,
        )
        # in-process: ingest the small 835, then detect its claim numbers
        copy_a = DATA / "small-a.835"
        copy_a.write_bytes(small.read_bytes())
        start = time.perf_counter()
        ingestor = Ingestor(store)
        ingestor.ingest(copy_a, "small-a.835")
        with store.engine.connect() as conn:
            file_id = conn.exec_driver_sql("SELECT id FROM files WHERE path = 'small-a.835'").scalar_one()
            pcns = file_pcns(conn, file_id)
        decisions = detect(store, pcns, date(2026, 11, 27), Config())
        in_process = time.perf_counter() - start
        result["in_process_seconds"] = round(in_process, 3)
        result["in_process_refunds"] = len(decisions.refunds)
        print(
            f"  one more 835 ({ingestor.report.claim_payments} claim payments), ingested and detected in-process: {in_process:.3f} s, "
            f"{len(decisions.refunds)} refunds",
            flush=True,
        )
        # through a worker: the same payments under another trace number
        copy_b = DATA / "small-b.835"
        copy_b.write_text(small.read_text(encoding="ascii").replace("RESENT000001", "RESENT000002"), encoding="ascii")
        with workers(url, 1):
            start = time.perf_counter()
            task = Ingestor(store).begin(copy_b, "small-b.835")
            defer_and_wait(store, [task])
            drained(url)
            through = time.perf_counter() - start
        result["through_worker_seconds"] = round(through, 3)
        print(f"  the same through a worker (defer, ingest, detect): {through:.3f} s", flush=True)
        store.dispose()
    result["target_met"] = max(result["in_process_seconds"], result["through_worker_seconds"]) < 1
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--claims", type=int, default=100_000)
    ap.add_argument("--workers", default="1,2,4")
    ap.add_argument("--store-claims", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--skip-scaling", action="store_true")
    ap.add_argument("--skip-incremental", action="store_true")
    ap.add_argument("--out", default=str(BENCH / "results" / "queue.json"))
    a = ap.parse_args(argv)
    import logging
    import tempfile

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(f"edirecon scale-out benchmark - Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} cores", flush=True)
    result: dict = {"python": platform.python_version(), "cores": os.cpu_count(), "claims": a.claims}
    if not a.skip_scaling:
        print(f"{a.claims:,} claims through the queue and in-process:", flush=True)
        with tempfile.TemporaryDirectory(prefix="edirecon-bench-") as tmp:
            result["scaling"] = scaling(a.claims, [int(n) for n in a.workers.split(",")], a.seed, Path(tmp))
        for row in result["scaling"].values():
            if "scaling_efficiency" in row:
                print(
                    f"  scaling efficiency, {row['workers']} worker(s): {row['scaling_efficiency']:.2f} to the outputs, "
                    f"{row['drained_scaling_efficiency']:.2f} to the drained queue ({row['drained_claims_per_s']:,} claims/s)"
                )
    if not a.skip_incremental:
        print(f"one more small 835 into a store of {a.store_claims:,} claims:", flush=True)
        result["incremental"] = incremental(a.store_claims, a.seed + 1)
        print(f"  under 1 second: {'met' if result['incremental']['target_met'] else 'NOT met'}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
