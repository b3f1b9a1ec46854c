#!/usr/bin/env python3
"""The web work queue's and the JSON API's latency (issue 15, step 0): ``edirecon serve`` in its
own process over a store of N generated claims (SQLite, or PostgreSQL with ``--db postgresql``),
its pages and API calls made over HTTP by 1 user, then by U users at once.

    python bench/bench_pages.py [--claims 10000] [--users 1,20] [--rounds 3] [--repeat 1] [--legs pages,api] [--db sqlite|postgresql]

The pages: every user logs in at once (its own session; each login checks an argon2id password
hash, about 0.13 s of CPU by design, so logins are timed on their own), then every user does
``--rounds`` times: the work queue (``/worklist``), the pending refunds by amount
(``/worklist?status=pending&sort=amount&order=desc``), one refund's page (``/refunds/{id}``, a
different refund each time) and a note on it (``POST /refunds/{id}/note``: an action that is
always allowed, with its audit event).

The API: a token of an approver made by ``edirecon token create``; every user does ``--rounds``
times, with ``Authorization: Bearer``: ``GET /api/v1/refunds?limit=50`` and its ``next`` page, one
refund (``/api/v1/refunds/{id}``), a note on it (``POST /api/v1/refunds/{id}/note``, JSON), the
changes since its last cursor (``/api/v1/changes?since=``, starting at the feed's end, read before
the timing), ``/api/v1/recoupments``, ``/api/v1/credit-balances`` and ``/api/v1/exceptions``.

Per call: the median, the 95th percentile and the slowest, in seconds; the targets are 0.3 s at
the 95th percentile for one user and 1 s for 20.  With ``--repeat N`` every leg runs N times and
the best run of each call (by its p95) is printed at the end.  The load average is printed with
each run.

Generated inputs are kept in bench/data/ (not in git) and reused, the store in
bench/data/pages-<claims>.db or the PostgreSQL database edirecon_bench_pages_<claims> (drop it
when done).  Figures go to bench/results/pages.json (pages-postgresql.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DATA = BENCH / "data"
sys.path.insert(0, str(BENCH))

PASSWORD = "bench-password-long-enough"
TARGETS = {1: 0.3, 20: 1.0}


def edirecon(*args: str, stdin: str | None = None) -> str:
    """Runs ``edirecon ARGS`` and answers what it printed."""
    return subprocess.run([sys.executable, "-m", "edirecon", *args], input=stdin, text=True, check=True, cwd=ROOT, capture_output=True).stdout


def inputs(claims: int) -> Path:
    """The generated 837 and 835 of ``claims`` claims (3% paid twice, 1% overpaid), made once."""
    from generate import generate

    folder = DATA / f"pages-{claims}"
    if not (folder / "remit.835").exists():
        folder.mkdir(parents=True, exist_ok=True)
        generate("837p", str(folder / "claims.837"), claims, seed=7, claims_per_transaction=1000)
        generate("835", str(folder / "remit.835.tmp"), claims, seed=7, claims_per_transaction=1000, duplicates=claims * 3 // 100, overpayments=claims // 100)
        os.replace(folder / "remit.835.tmp", folder / "remit.835")
        for planted in folder.glob("*.planted.json"):
            planted.unlink()
    return folder


def store(claims: int, kind: str = "sqlite") -> str:
    """A store of ``claims`` generated claims and their payments, built once by ``edirecon run``:
    SQLite in bench/data/pages-<claims>.db, or the PostgreSQL database edirecon_bench_pages_<claims>
    on the local server (``EDIRECON_PG_ADMIN``), kept until dropped."""
    folder = inputs(claims)
    if kind == "sqlite":
        db = DATA / f"pages-{claims}.db"
        url = f"sqlite:///{db}"
        if not db.exists():
            edirecon("run", str(folder), "--db", url + ".tmp", "--out", str(folder / "out"), "--workers", "1")
            os.replace(f"{db}.tmp", db)
        return url
    import psycopg

    admin = os.environ.get("EDIRECON_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"edirecon_bench_pages_{claims}"
    built = DATA / f"pages-{claims}.pg-built"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None
        if exists and not built.exists():  # a build that did not finish
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        if not exists or not built.exists():
            conn.execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    if not built.exists():
        edirecon("run", str(folder), "--db", url, "--out", str(folder / "out-pg"), "--workers", "1")
        # the planner's statistics, which autovacuum gathers only later: without them a refund's
        # closure is read by sequential scans (docs/benchmarks.md; `run` does not analyze yet)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")
        built.write_text(url + "\n")
    return url


def users(url: str, count: int) -> None:
    from edirecon.engine.store.connection import open_store
    from edirecon.engine.workflow import users as us

    s = open_store(url)
    try:
        known = {u.name for u in us.users(s)}
        for i in range(count):
            if f"bench-{i}" not in known:
                us.add_user(s, f"bench-{i}", "approver", PASSWORD)
    finally:
        s.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def session(base: str, name: str) -> tuple[Any, str, float]:
    """A logged-in client of user ``name``, the CSRF token of its session, and the seconds its
    login (the POST of the form) took."""
    import httpx

    client = httpx.Client(base_url=base, timeout=600)
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    start = time.perf_counter()
    r = client.post("/login", data={"username": name, "password": PASSWORD, "csrf": csrf})
    took = time.perf_counter() - start
    assert r.status_code == 303, r.text[:300]
    page = client.get("/worklist")
    return client, re.search(r'name="csrf" value="([^"]+)"', page.text).group(1), took  # type: ignore[union-attr]


def user_rounds(client: Any, csrf: str, name: str, refund_ids: list[str], rounds: int) -> dict[str, list[float]]:
    """``rounds`` times the four calls of a logged-in user: the seconds of each."""
    times: dict[str, list[float]] = {"worklist": [], "worklist pending by amount": [], "refund page": [], "note (POST)": []}
    for i in range(rounds):
        refund_id = refund_ids[i % len(refund_ids)]
        for label, method, path, data in (
            ("worklist", "GET", "/worklist", None),
            ("worklist pending by amount", "GET", "/worklist?status=pending&sort=amount&order=desc", None),
            ("refund page", "GET", f"/refunds/{refund_id}", None),
            ("note (POST)", "POST", f"/refunds/{refund_id}/note", {"csrf": csrf, "note": f"bench {name} {i}"}),
        ):
            start = time.perf_counter()
            r = client.request(method, path, data=data)
            times[label].append(time.perf_counter() - start)
            assert r.status_code in (200, 303), (label, r.status_code, r.text[:300])
    client.close()
    return times


def token(url: str, name: str) -> str:
    """A new API token of user ``name``, made by ``edirecon token create`` (its last line)."""
    return edirecon("token", "create", name, "--db", url).strip().splitlines()[-1]


def api_client(base: str, bearer: str) -> Any:
    import httpx

    return httpx.Client(base_url=base, timeout=600, headers={"Authorization": f"Bearer {bearer}"})


def feed_end(base: str, bearer: str) -> str:
    """The cursor of the last change in the feed, as a billing system that has caught up keeps
    it (read page by page before the timing)."""
    with api_client(base, bearer) as client:
        got = client.get("/api/v1/changes", params={"limit": 1000}).json()
        while got["items"]:
            got = client.get("/api/v1/changes", params={"since": got["cursor"], "limit": 1000}).json()
        return str(got["cursor"])


#: the API calls of a user's round (issue 15: the refunds' first page of 50 and its next page, one
#: refund, a note on it, the changes since the user's last cursor, the engine's three lists)
API_CALLS = (
    "api refunds?limit=50",
    "api refunds (next page)",
    "api refunds/{id}",
    "api refunds/{id}/note (POST)",
    "api changes?since=cursor",
    "api recoupments",
    "api credit-balances",
    "api exceptions",
)


def api_rounds(client: Any, since: str, name: str, refund_ids: list[str], rounds: int) -> dict[str, list[float]]:
    """``rounds`` times the API calls of ``API_CALLS`` with a user's token: the seconds of each.
    The changes are polled from the cursor the previous poll answered, as a billing system does."""
    times: dict[str, list[float]] = {label: [] for label in API_CALLS}

    def call(label: str, method: str, path: str, body: dict[str, str] | None = None, params: dict[str, Any] | None = None) -> Any:
        start = time.perf_counter()
        r = client.request(method, path, json=body, params=params)
        times[label].append(time.perf_counter() - start)
        assert r.status_code == 200, (label, r.status_code, r.text[:300])
        return r.json()

    for i in range(rounds):
        refund_id = refund_ids[i % len(refund_ids)]
        first = call("api refunds?limit=50", "GET", "/api/v1/refunds", params={"limit": 50})
        assert len(first["items"]) == 50 and first["next"], first["next"]
        call("api refunds (next page)", "GET", first["next"])
        call("api refunds/{id}", "GET", f"/api/v1/refunds/{refund_id}")
        call("api refunds/{id}/note (POST)", "POST", f"/api/v1/refunds/{refund_id}/note", body={"note": f"bench api {name} {i}"})
        since = call("api changes?since=cursor", "GET", "/api/v1/changes", params={"since": since})["cursor"]
        call("api recoupments", "GET", "/api/v1/recoupments")
        call("api credit-balances", "GET", "/api/v1/credit-balances")
        call("api exceptions", "GET", "/api/v1/exceptions")
    client.close()
    return times


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]


def summarise(results: dict[str, Any], attempt: int, count: int, per_user: list[dict[str, list[float]]], target: float | None) -> None:
    """The median, 95th percentile and slowest of each call over every user's rounds: printed,
    and kept in ``results``."""
    for label in per_user[0]:
        values = [t for times in per_user for t in times[label]]
        row = {"run": attempt, "users": count, "page": label, "calls": len(values), "median": statistics.median(values), "p95": p95(values), "max": max(values)}
        results["runs"].append(row)
        verdict = f" (target p95 {target} s: {'met' if row['p95'] <= target else 'missed'})" if target else ""
        print(f"{count:>3} user(s)  {label:<30} median {row['median']:.3f} s  p95 {row['p95']:.3f} s  max {row['max']:.3f} s{verdict}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--claims", type=int, default=10_000)
    ap.add_argument("--users", default="1,20", help="concurrent users, comma separated")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the four calls per user")
    ap.add_argument("--repeat", type=int, default=1, help="runs of every leg; the best run of each call (by its p95) is printed at the end")
    ap.add_argument("--legs", default="pages,api", help="what is timed: the HTML pages, the JSON API, or both (comma separated)")
    ap.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite", help="the store: SQLite, or a database of the local PostgreSQL")
    args = ap.parse_args()
    counts = [int(u) for u in args.users.split(",")]
    url = store(args.claims, args.db)
    users(url, max(counts))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(DATA / "pages-serve.log", "w")  # the server's log events and errors, for a look afterwards
    server = subprocess.Popen(
        [sys.executable, "-m", "edirecon", "serve", "--db", url, "--port", str(port), "--verbose"],
        cwd=ROOT,
        env={**os.environ, "EDIRECON_SECRET": "bench-secret-bench-secret-bench-secret"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    results: dict[str, Any] = {
        "claims": args.claims,
        "store": args.db,
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "runs": [],
    }
    try:
        import httpx

        for _ in range(300):
            try:
                if httpx.get(base + "/login").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        client, _, _ = session(base, "bench-0")
        refund_ids = re.findall(r'data-refund="([^"]+)"', client.get("/worklist").text)
        total = re.search(r'id="total">(\d+)', client.get("/worklist").text).group(1)  # type: ignore[union-attr]
        client.close()
        results["refunds"] = int(total)
        print(f"{args.claims} claims, {total} refunds, {args.db}; {results['machine']}")
        legs = args.legs.split(",")
        if "api" in legs:
            bearer = token(url, "bench-0")  # an approver's token, shared by the API's users
            since = feed_end(base, bearer)
        for attempt, count in ((a, c) for a in range(1, args.repeat + 1) for c in counts):
            target = TARGETS.get(count)
            print(f"-- run {attempt} of {args.repeat}, {count} user(s), load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            if "pages" in legs:
                with ThreadPoolExecutor(count) as pool:
                    # every user logs in at once, then all work at once: a login checks the password's
                    # argon2id hash (RFC 9106 parameters, about 0.13 s of CPU each by design), so it is
                    # timed on its own, and the pages are timed in the steady state after it
                    logged_in = list(pool.map(lambda i: session(base, f"bench-{i}"), range(count)))
                    per_user = list(
                        pool.map(
                            lambda i, who: user_rounds(who[0], who[1], f"bench-{i}", refund_ids[i * args.rounds :] or refund_ids, args.rounds),
                            range(count),
                            logged_in,
                        )
                    )
                logins = [took for _, _, took in logged_in]
                row = {
                    "run": attempt,
                    "users": count,
                    "page": "login (POST)",
                    "calls": count,
                    "median": statistics.median(logins),
                    "p95": p95(logins),
                    "max": max(logins),
                }
                results["runs"].append(row)
                print(
                    f"{count:>3} user(s)  {'login (POST), argon2id':<30} median {row['median']:.3f} s  p95 {row['p95']:.3f} s  max {row['max']:.3f} s (the password hash's cost, by design)"
                )
                summarise(results, attempt, count, per_user, target)
            if "api" in legs:
                # the API's users call at once with the approver's token (made by `token create`)
                with ThreadPoolExecutor(count) as pool:
                    per_user = list(
                        pool.map(
                            lambda i: api_rounds(api_client(base, bearer), since, f"bench-{i}", refund_ids[i * args.rounds :] or refund_ids, args.rounds),
                            range(count),
                        )
                    )
                summarise(results, attempt, count, per_user, target)
        results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        if args.repeat > 1:
            print(f"-- best of {args.repeat} runs (by p95), load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            best: dict[tuple[int, str], dict[str, Any]] = {}
            for row in results["runs"]:
                key = (row["users"], row["page"])
                if key not in best or row["p95"] < best[key]["p95"]:
                    best[key] = row
            results["best"] = list(best.values())
            for (count, label), row in best.items():
                target = TARGETS.get(count) if label != "login (POST)" else None
                verdict = f" (target p95 {target} s: {'met' if row['p95'] <= target else 'missed'})" if target else ""
                print(f"{count:>3} user(s)  {label:<30} median {row['median']:.3f} s  p95 {row['p95']:.3f} s  max {row['max']:.3f} s{verdict}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    out = BENCH / "results" / ("pages.json" if args.db == "sqlite" else f"pages-{args.db}.json")
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"figures written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
