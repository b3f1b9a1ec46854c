#!/usr/bin/env python3
"""Benchmark of the refund workflow's commands on a large store (issue 15, step 0: decisions
recorded, not recomputed).

    python bench/bench_workflow.py [--claims 1000000] [--duplicates 7500] [--overpayments 7500]
                                   [--db sqlite|postgresql|both] [--no-peer] [--cache DIR]

Builds (or reuses, cached under ``--cache``, default /tmp/edirecon-bench-workflow) a store of N
generated claims and the 835 that pays them, with planted duplicate payments and overpayments
(bench/generate.py, as bench/bench_run.py), by ``edirecon run`` (which records the decisions and
syncs the workflow).  Then times, as whole commands in fresh processes (``python -m edirecon``),
best of 3: ``refund show`` of a refund, one ``refund approve`` (a different pending refund each
time), and ``refund list`` of every refund (``--format csv``), on SQLite and on PostgreSQL.
The peer is the same commands deciding the whole store on every command, as before the records
(``EDIRECON_WORKFLOW_FULL=1``).  Prints the figures, the peak RSS, and the ratio against the
targets (``refund show`` and an action under 0.5 s, ``refund list`` of ~15,000 refunds under 2 s,
on 1,000,000 claims); writes bench/results/workflow-<claims>.json.

With ``--report`` (or ``--report-only``, which writes bench/results/report-<claims>.json) it also
times ``edirecon report`` on each ``--db``, best of 3, each on a fresh copy of the store (SQLite: a copy
of the file; PostgreSQL: ``CREATE DATABASE … TEMPLATE`` the cached database, dropped after): from the records
``run`` made (the default while they are current), against the peers that decide the whole store
(``EDIRECON_WORKFLOW_FULL=1``): in shards (a store of more than 25,000 claims, as ``run`` decides
it; ``--report-shards-runs``, default 3), and in one process (``--workers 1``;
``--report-peer-runs``, default 1); peak RSS of the largest process, against the targets of 60 s
and 500 MB on 1,000,000 claims, and which files of the peers differ from the records' (none should;
with ``--db both``, also which differ between the two databases' reports from the records).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
AS_OF = "2026-11-27"
TARGETS = {"show": 0.5, "approve": 0.5, "list": 2.0}
#: ``edirecon report`` on 1,000,000 claims: seconds and peak RSS of the largest process (MiB)
REPORT_TARGET = (60.0, 500.0)
PG_ADMIN = os.environ.get("EDIRECON_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


def generate(folder: Path, claims: int, duplicates: int, overpayments: int, per: int, seed: int) -> None:
    sys.path.insert(0, str(BENCH))
    from generate import generate as gen

    folder.mkdir(parents=True, exist_ok=True)
    gen("837p", str(folder / "claims.837"), claims, seed=seed, claims_per_transaction=per)
    gen("835", str(folder / "remit.835"), claims, seed=seed, claims_per_transaction=per, duplicates=duplicates, overpayments=overpayments)
    for leftover in folder.glob("*.planted.json"):
        leftover.unlink()


def timed(args: list[str], env: dict[str, str] | None = None, python: str = sys.executable) -> tuple[float, float, str, float]:
    """``python -m edirecon ARGS`` in a fresh process: wall seconds, peak RSS (MiB, ``os.wait4``),
    stdout, and the CPU seconds it used (user + system: what other load on the machine does not
    inflate).  ``python``: the interpreter (another checkout's, for ``--peer-python``)."""
    start = time.perf_counter()
    proc = subprocess.Popen([python, "-m", "edirecon", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
    # the outputs are small but a list of 15,000 refunds is ~3 MB: read it while waiting
    out = proc.stdout.read()  # type: ignore[union-attr]
    err = proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"edirecon {' '.join(args[:3])} failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, out.decode(), usage.ru_utime + usage.ru_stime


def build(url: str, inputs: Path, work: Path) -> float:
    start = time.perf_counter()
    timed(["run", str(inputs), "--db", url, "--out", str(work / "out"), "--as-of", AS_OF])
    return time.perf_counter() - start


def report_leg(fresh: Callable[[], str], drop: Callable[[], None], work: Path, repeat: int, shards_runs: int, peer_runs: int) -> dict[str, object]:
    """``edirecon report`` as a whole command, each time on a fresh copy of the store as ``run``
    left it (``fresh()`` makes one and returns its URL, ``drop()`` removes it; the copying is not
    timed): best of ``repeat`` from the records ``run`` made (the default when they are current:
    ``reports.recorded``), and the peak RSS of its largest process (``os.wait4`` reports the
    largest of the command and the shard processes it waited for; a PostgreSQL server's own
    processes are not counted, nor their CPU).  The peers decide the whole store
    (``EDIRECON_WORKFLOW_FULL=1``): in shards (a store of more than 25,000 claims, as ``run``
    decides it; ``shards_runs`` times), and in one process (``--workers 1``, as before the shards;
    ``peer_runs`` times; 0: not run).  Each leg writes its own folder under ``work``; the files of
    the peers are compared with the records' (``differs_from_records``: the names that differ, the
    PDFs and the workflow's times of action aside)."""
    full = {"EDIRECON_WORKFLOW_FULL": "1"}

    def once(name: str, extra: list[str], env: dict[str, str] | None) -> tuple[float, float, str, float]:
        url = fresh()
        try:
            return timed(["report", "--db", url, "--out", str(work / f"report-{name}"), "--as-of", AS_OF, *extra], env)
        finally:
            drop()

    out: dict[str, object] = {}
    for name, extra, env, runs in (("records", [], None, repeat), ("shards", [], full, shards_runs), ("peer", ["--workers", "1"], full, peer_runs)):
        if not runs:
            continue
        shutil.rmtree(work / f"report-{name}", ignore_errors=True)  # no file of an earlier run compared
        results = [once(name, extra, env) for _ in range(runs)]
        out[name] = {
            "seconds": round(min(r[0] for r in results), 3),
            "cpu_seconds": round(min(r[3] for r in results), 3),
            "peak_rss_mib": round(max(r[1] for r in results)),
            "all": [round(r[0], 3) for r in results],
            "runs": runs,
            "load_average": round(os.getloadavg()[0], 2),
        }
        if name != "records":
            out[name]["differs_from_records"] = differing(work / "report-records", work / f"report-{name}")  # type: ignore[index]
    return out


def sqlite_copies(pristine: Path, work: Path) -> tuple[Callable[[], str], Callable[[], None]]:
    """A fresh copy of the SQLite store ``pristine`` (its URL), and its removal."""
    copy = work / "report.db"

    def drop() -> None:
        for path in (copy, work / "report.db-wal", work / "report.db-shm"):  # a log left would be applied to the next copy
            path.unlink(missing_ok=True)

    def fresh() -> str:
        drop()
        shutil.copyfile(pristine, copy)
        return f"sqlite:///{copy}"

    return fresh, drop


def pg_copies(template: str, wait: float = 900.0) -> tuple[Callable[[], str], Callable[[], None]]:
    """A fresh copy of the PostgreSQL store ``template`` (``CREATE DATABASE … TEMPLATE``: the cached
    store is read, never changed), its URL, and its removal (``DROP DATABASE … WITH (FORCE)``).
    PostgreSQL copies a template only while no session is connected to it: another benchmark's
    session is waited for (up to ``wait`` seconds), never ended."""
    import psycopg

    admin = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
    copy = f"{template}_report_{os.getpid()}"[:63]

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')

    def fresh() -> str:
        drop()
        deadline = time.monotonic() + wait
        with psycopg.connect(admin, autocommit=True) as conn:
            while True:
                try:
                    conn.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{template}"')
                    break
                except psycopg.errors.ObjectInUse:  # a session is connected to the template
                    if time.monotonic() > deadline:
                        raise SystemExit(f"PostgreSQL: {template} still has sessions after {wait:.0f} s: no copy made") from None
                    time.sleep(2)
        return admin.rsplit("/", 1)[0] + f"/{copy}"

    return fresh, drop


def differing(a: Path, b: Path) -> list[str]:
    """The files of report folder ``a`` and ``b`` whose bytes differ (or that one lacks), but the
    PDFs (their bytes carry the clock) and the team's work (its times of action)."""
    names = {p.relative_to(a) for p in a.rglob("*") if p.is_file()} | {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    out = []
    for name in sorted(names):
        if name.suffix == ".pdf" or name.stem == "workflow":
            continue
        if not (a / name).is_file() or not (b / name).is_file() or (a / name).read_bytes() != (b / name).read_bytes():
            out.append(str(name))
    return out


def pending(url: str) -> list[str]:
    out = timed(["refund", "list", "--db", url, "--as-of", AS_OF, "--status", "pending", "--format", "csv"])[2]
    return [r["refund_id"] for r in csv.DictReader(io.StringIO(out))]


def measure(url: str, ids: list[str], env: dict[str, str] | None, repeat: int, python: str = sys.executable) -> dict[str, dict[str, float]]:
    """Best of ``repeat`` of each command (and its peak RSS); approves ``repeat`` refunds of ``ids``."""
    out: dict[str, dict[str, float]] = {}
    runs = {
        "show": [["refund", "show", ids[0], "--db", url, "--as-of", AS_OF]] * repeat,
        "approve": [["refund", "approve", rid, "--db", url, "--as-of", AS_OF, "--user", "bench"] for rid in ids[1 : 1 + repeat]],
        "list": [["refund", "list", "--db", url, "--as-of", AS_OF, "--format", "csv"]] * repeat,
    }
    for name, commands in runs.items():
        results = [timed(args, env, python) for args in commands]
        best = min(results, key=lambda r: r[0])
        out[name] = {
            "seconds": round(best[0], 3),
            "cpu_seconds": round(min(r[3] for r in results), 3),
            "peak_rss_mib": round(max(r[1] for r in results)),
            "all": [round(r[0], 3) for r in results],
        }
        if name == "list":
            out[name]["refunds"] = best[2].count("\n") - 1
    return out


#: the same three calls in one long-lived process, as the web app makes them (``views``): no
#: interpreter start or imports; best of ``repeat`` after one warm-up call each
IN_PROCESS = """
import json, sys, time
from datetime import date
from edirecon.engine.config import Config
from edirecon.engine.workflow import views
url, day, repeat, ids = sys.argv[1], date.fromisoformat(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
config, out = Config(), {}
def best(call):
    times = []
    for _ in range(repeat):
        t = time.perf_counter(); call(); times.append(time.perf_counter() - t)
    return round(min(times), 3)
views.refund_detail(url, ids[0], day, config)
out["show"] = best(lambda: views.refund_detail(url, ids[0], day, config))
approvals = iter(ids[1:])
views.take_action(url, [next(approvals)], "approve", "bench", day, config)
out["approve"] = best(lambda: views.take_action(url, [next(approvals)], "approve", "bench", day, config))
views.refund_list(url, day, config)
out["list"] = best(lambda: views.list_csv(views.refund_list(url, day, config)))
print(json.dumps(out))
"""


def in_process(url: str, ids: list[str], repeat: int) -> dict[str, float]:
    """Best of ``repeat`` of the library calls behind the commands, in one process (approves
    ``repeat + 1`` refunds of ``ids``)."""
    proc = subprocess.run([sys.executable, "-c", IN_PROCESS, url, AS_OF, str(repeat), *ids], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"in-process calls failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


#: the JSON API's calls (``engine/web/api.py``) in one long-lived process, through FastAPI's
#: TestClient (the app's whole request path but the socket): after one warm-up call each, N calls
#: of each with one user, then N calls of each spread over 20 users at once; p50/p95/max in seconds
API_CALLS = """
import json, statistics, sys, time, uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from fastapi.testclient import TestClient
from edirecon.engine.config import Config
from edirecon.engine.web import api
from edirecon.engine.web.app import create_app
from edirecon.engine.workflow import users as u
url, day, n, users, ids = sys.argv[1], date.fromisoformat(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
app = create_app(url, Config(), "b" * 43)
app.dependency_overrides[api.today] = lambda: day
store = app.state.served.store
name = "bench-" + uuid.uuid4().hex[:8]
u.add_user(store, name, "approver", "a bench password of some length")
auth = {"Authorization": "Bearer " + u.create_token(store, name).text}
clients = [TestClient(app) for _ in range(users)]
warm = clients[0]
def cursor_of(path, pages=3):
    # the next URL after a few pages of 100: a page from the middle of the list
    got = warm.get(path, params={"limit": 100}, headers=auth).json()
    for _ in range(pages - 1):
        if got["next"] is None:
            break
        got = warm.get(got["next"], headers=auth).json()
    return got["next"] or path
approvals = iter(ids[1:])
calls = {
    "recoupments": lambda c: c.get("/api/v1/recoupments", headers=auth),
    "credit-balances": lambda c: c.get("/api/v1/credit-balances", headers=auth),
    "credit-balances (a later page)": lambda c, nxt=[]: c.get(nxt[0] if nxt else "/api/v1/credit-balances", headers=auth),
    "exceptions": lambda c: c.get("/api/v1/exceptions", headers=auth),
    "refunds/{id}": lambda c: c.get("/api/v1/refunds/" + ids[0], headers=auth),
    "changes": lambda c: c.get("/api/v1/changes", params={"limit": 100}, headers=auth),
    "refunds/{id}/note": lambda c: c.post("/api/v1/refunds/" + ids[0] + "/note", json={"note": "bench"}, headers=auth),
}
first = {}
t = time.perf_counter(); warm.get("/api/v1/recoupments", headers=auth); first["recoupments (first call)"] = round(time.perf_counter() - t, 3)
later = cursor_of("/api/v1/credit-balances")
calls["credit-balances (a later page)"] = lambda c: c.get(later, headers=auth)
def one(call, c):
    t = time.perf_counter()
    r = call(c)
    if r.status_code != 200:
        raise SystemExit(f"{r.status_code}: {r.text[:300]}")
    return time.perf_counter() - t
def figures(times):
    times = sorted(times)
    return {"p50": round(statistics.median(times), 4), "p95": round(times[max(0, int(len(times) * 0.95 + 0.5) - 1)], 4), "max": round(times[-1], 4), "calls": len(times)}
out = {"first": first, "one_user": {}, "concurrent": {}, "users": users}
for label, call in calls.items():
    one(call, warm)
    out["one_user"][label] = figures([one(call, warm) for _ in range(n)])
with ThreadPoolExecutor(users) as pool:
    for label, call in calls.items():
        out["concurrent"][label] = figures(list(pool.map(lambda i: one(call, clients[i % users]), range(max(n, users) * 1))))
print(json.dumps(out))
"""


def api_calls(url: str, ids: list[str], n: int, users: int) -> dict[str, object]:
    """The API's calls in one process (``API_CALLS``): p50/p95/max of ``n`` calls each, with one
    user and with ``users`` at once."""
    proc = subprocess.run([sys.executable, "-c", API_CALLS, url, AS_OF, str(n), str(users), *ids], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"API calls failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def pg_database(name: str, fresh: bool) -> str | None:
    """The URL of database ``name`` on the local PostgreSQL (created, or dropped and created
    with ``fresh``); None when no server answers."""
    try:
        import psycopg
    except ImportError:
        return None
    admin = PG_ADMIN.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
            if exists and fresh:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            if not exists or fresh:
                conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError:
        return None
    return admin.rsplit("/", 1)[0] + f"/{name}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--claims", type=int, default=1_000_000)
    ap.add_argument("--duplicates", type=int, default=7500)
    ap.add_argument("--overpayments", type=int, default=7500)
    ap.add_argument("--claims-per-transaction", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-peer", dest="peer", action="store_false", help="skip the peer (deciding the whole store on every command)")
    ap.add_argument(
        "--peer-python",
        default="",
        help="a second peer: the same commands with another interpreter whose `python -m edirecon` is other code (e.g. the venv of a checkout of main), "
        "right after this code's, on the same store; the ratios this/that",
    )
    ap.add_argument("--cache", default="/tmp/edirecon-bench-workflow", help="where the generated files and stores are kept between runs")
    ap.add_argument("--out", default="")
    ap.add_argument("--api-calls", type=int, default=100, help="calls of each API endpoint per measure (0: no API calls)")
    ap.add_argument("--users", type=int, default=20, help="users calling the API at once")
    ap.add_argument(
        "--pg-prefix", default="edirecon_bench_workflow", help="the PostgreSQL database is <prefix>_<claims>_<seed> (dropped and made again with a new cache)"
    )
    ap.add_argument("--api-only", action="store_true", help="only the API's calls (no command timings)")
    ap.add_argument("--report", action="store_true", help="also time `edirecon report` (each --db; in shards, and in one process as peer)")
    ap.add_argument("--report-only", action="store_true", help="only `edirecon report` (implies --report)")
    ap.add_argument("--report-shards-runs", type=int, default=3, help="runs of the report's peer deciding the store in shards (0: none)")
    ap.add_argument("--report-peer-runs", type=int, default=1, help="runs of the report's peer in one process (at 1,000,000 claims minutes and GBs; 0: none)")
    a = ap.parse_args(argv)
    cache = Path(a.cache) / f"{a.claims}-{a.duplicates}-{a.overpayments}-{a.seed}"
    inputs = cache / "in"
    if not (inputs / "remit.835").exists():
        t0 = time.perf_counter()
        generate(inputs, a.claims, a.duplicates, a.overpayments, a.claims_per_transaction, a.seed)
        print(f"generated {a.claims:,} claims and their 835 in {time.perf_counter() - t0:.0f} s", flush=True)
    results: dict[str, object] = {
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "claims": a.claims,
        "planted": {"duplicates": a.duplicates, "overpayments": a.overpayments},
        "load_average_at_start": os.getloadavg()[0],
    }
    # the floor: Python, typer and SQLAlchemy starting, no store touched
    pythons = {"floor": sys.executable, **({"floor of the peer python": a.peer_python} if a.peer_python else {})}
    for label, python in pythons.items():
        floor = [timed(["refund", "show", "--help"], python=python) for _ in range(a.repeat)]
        results[label] = {"seconds": round(min(f[0] for f in floor), 3), "cpu_seconds": round(min(f[3] for f in floor), 3)}
        print(
            f"{label} (`edirecon refund show --help`, best of {a.repeat}): {results[label]['seconds']:.3f} s, {results[label]['cpu_seconds']:.3f} s CPU; "  # type: ignore[index]
            f"load average {os.getloadavg()[0]:.1f}"
        )
    kinds = ["sqlite", "postgresql"] if a.db == "both" else [a.db]
    for kind in kinds:
        work = cache / kind
        work.mkdir(parents=True, exist_ok=True)
        if kind == "sqlite":
            pristine = work / "store.db"
            if not pristine.exists():
                seconds = build(f"sqlite:///{work / 'building.db'}", inputs, work)
                (work / "building.db").rename(pristine)
                (work / "build_seconds").write_text(f"{seconds:.1f}\n")
            copy = work / "bench.db"  # every benchmark acts on a copy of the store as run left it
            if not a.report_only:  # the report makes its own copies
                for leftover in (work / "bench.db-wal", work / "bench.db-shm"):  # the last copy's log would be applied to this one
                    leftover.unlink(missing_ok=True)
                shutil.copyfile(pristine, copy)
            url = f"sqlite:///{copy}"
        else:
            name = f"{a.pg_prefix}_{a.claims}_{a.seed}"
            built = (work / "build_seconds").exists()
            found = pg_database(name, fresh=not built)
            if found is None:
                print("PostgreSQL: no server reachable, skipped")
                continue
            url = found
            if not built:
                (work / "build_seconds").write_text(f"{build(url, inputs, work):.1f}\n")
        build_seconds = float((work / "build_seconds").read_text())
        if a.report or a.report_only:
            fresh, drop = sqlite_copies(pristine, work) if kind == "sqlite" else pg_copies(name)
            figures_report = report_leg(fresh, drop, work, a.repeat, a.report_shards_runs if a.peer else 0, a.report_peer_runs if a.peer else 0)
            results.setdefault("report", {})[kind] = figures_report  # type: ignore[union-attr]
            seconds_target, rss_target = REPORT_TARGET
            got = figures_report["records"]
            print(
                f"{kind}: `edirecon report` on {a.claims:,} claims from the records, best of {a.repeat}: {got['seconds']:.1f} s ({got['cpu_seconds']:.1f} s CPU), "  # type: ignore[index]
                f"peak RSS {got['peak_rss_mib']:.0f} MiB (largest process{'' if kind == 'sqlite' else '; the server not counted'}); targets {seconds_target:.0f} s / {rss_target:.0f} MiB: "  # type: ignore[index]
                f"time {'met' if got['seconds'] <= seconds_target else 'MISSED'} (x{got['seconds'] / seconds_target:.2f}), "  # type: ignore[index]
                f"memory {'met' if got['peak_rss_mib'] <= rss_target else 'MISSED'} (x{got['peak_rss_mib'] / rss_target:.2f}); "  # type: ignore[index]
                f"load average {got['load_average']:.1f}",  # type: ignore[index]
                flush=True,
            )
            for name, what in (("shards", "deciding the store in shards"), ("peer", "deciding the store in one process, --workers 1")):
                if name in figures_report:
                    peer = figures_report[name]
                    print(
                        f"  peer ({what}), best of {peer['runs']}: {peer['seconds']:.1f} s ({peer['cpu_seconds']:.1f} s CPU), "  # type: ignore[index]
                        f"peak RSS {peer['peak_rss_mib']:.0f} MiB: {peer['seconds'] / got['seconds']:.1f}x the time, "  # type: ignore[index]
                        f"{peer['cpu_seconds'] / got['cpu_seconds']:.1f}x the CPU, {peer['peak_rss_mib'] / got['peak_rss_mib']:.1f}x the memory; "  # type: ignore[index]
                        f"load average {peer['load_average']:.1f}; files differing from the records': {peer['differs_from_records'] or 'none'}",  # type: ignore[index]
                        flush=True,
                    )
        if a.report_only:
            continue
        ids = pending(url)
        need = 1 + 3 * a.repeat + 1 + (a.repeat if a.peer_python else 0)
        if len(ids) < need:
            print(f"{kind}: only {len(ids)} pending refunds left: remove {work} (and the database) to build the store again")
            return 1
        figures: dict[str, object] = {"build_seconds": build_seconds}
        if a.api_calls:
            figures["api"] = calls = api_calls(url, ids[:2], a.api_calls, a.users)
            print(f"{kind}: the API in one process, {a.api_calls} calls of each; p95 (s) one user / {a.users} users at once (targets 0.3 / 1.0):", flush=True)
            for label, one in calls["one_user"].items():  # type: ignore[attr-defined]
                many = calls["concurrent"][label]  # type: ignore[index]
                print(f"  {label:<32} {one['p95']:.4f} / {many['p95']:.4f}  {'met' if one['p95'] < 0.3 and many['p95'] < 1.0 else 'MISSED'}", flush=True)
            print(f"  first call after the run: {calls['first']}", flush=True)  # type: ignore[index]
        if a.api_only:
            results[kind] = figures
            continue
        figures["recorded"] = measure(url, ids[:need], None, a.repeat)
        if a.peer:
            figures["peer"] = measure(url, [ids[0], *ids[1 + a.repeat : 1 + 2 * a.repeat]], {"EDIRECON_WORKFLOW_FULL": "1"}, a.repeat)
        if a.peer_python:
            figures["peer_python"] = measure(url, [ids[0], *ids[2 + 3 * a.repeat : need]], None, a.repeat, a.peer_python)
        figures["in_process"] = in_process(url, [ids[0], *ids[1 + 2 * a.repeat : 2 + 3 * a.repeat]], a.repeat)
        results[kind] = figures
        print(f"{kind}: store of {a.claims:,} claims built by `edirecon run` in {build_seconds:.0f} s; best of {a.repeat} (s), peak RSS (MiB):", flush=True)
        for name, target in TARGETS.items():
            rec = figures["recorded"][name]
            line = (
                f"  refund {name:<8} {rec['seconds']:7.3f} s ({rec['cpu_seconds']:.3f} s CPU) {rec['peak_rss_mib']:5.0f} MiB  target < {target} s: "
                f"{'met' if rec['seconds'] < target else 'MISSED'} (x{rec['seconds'] / target:.2f} of it)"
            )
            if a.peer:
                peer = figures["peer"][name]
                line += f"; peer (decide everything) {peer['seconds']:.2f} s ({peer['cpu_seconds']:.2f} s CPU) {peer['peak_rss_mib']:.0f} MiB, {peer['seconds'] / rec['seconds']:.0f}x slower"
            if a.peer_python:
                other = figures["peer_python"][name]
                line += (
                    f"; peer python {other['seconds']:.3f} s ({other['cpu_seconds']:.3f} s CPU) {other['peak_rss_mib']:.0f} MiB: "
                    f"x{rec['seconds'] / other['seconds']:.2f} of its time, x{rec['cpu_seconds'] / other['cpu_seconds']:.2f} of its CPU"
                )
            if name == "list":
                line += f"; {rec['refunds']:,} refunds"
            print(line, flush=True)
        calls = figures["in_process"]
        print(
            f"  in one process (the app's calls, no start-up): refund_detail {calls['show']:.3f} s, take_action {calls['approve']:.3f} s, "
            f"refund_list + CSV {calls['list']:.3f} s",
            flush=True,
        )
    if len(results.get("report", {})) == 2:  # type: ignore[arg-type]
        # the same store's reports on the two databases (the workflow's times of action aside)
        results["report_sqlite_vs_postgresql"] = across = differing(cache / "sqlite" / "report-records", cache / "postgresql" / "report-records")
        print(f"files of the report from the records differing between SQLite and PostgreSQL: {across or 'none'}", flush=True)
    out = Path(a.out or BENCH / "results" / f"{'report' if a.report_only else 'workflow'}-{a.claims}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
