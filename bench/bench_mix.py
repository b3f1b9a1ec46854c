#!/usr/bin/env python3
"""``edirecon run`` on the realistic planted mix (issue 17): many files of varied sizes, as a
clearinghouse delivers them, on SQLite and PostgreSQL, with one and two workers.

    python bench/bench_mix.py [--claims 100000] [--repeat 3] [--db sqlite|postgresql|both]
                              [--cache /tmp/edirecon-bench-mix] [--expect bench/results/mix-100000.json]

The drop (bench/generate.py, seed 7, kept under ``--cache`` between runs, never in the repository):
the N encounters billed in 837P files of varied sizes (a few of 4,000-12,000 claims in transaction
sets of 1,000, a quarter of 300-2,000, most of 1-150 claims in one transaction set); paid in 835s
cut independently of the 837s, each from one of four payers, with planted duplicate payments and
overpayments in the files of 1,000 claims or more; and the front desk's patient payments in four
CSVs (``--kind payments``).

Each leg is ``edirecon run`` in a fresh process on a fresh store (a new SQLite file; a throwaway
PostgreSQL database, dropped after): SQLite with ``--workers 1`` and 2, PostgreSQL with 1 and 2;
the legs run round-robin, best of ``--repeat``.  It samples the peak RSS of the largest process
(``wait4``) and of the whole tree, checks that every planted refund is found and none invented,
checks that every leg wrote the same outputs (SHA-256 of each file but ``manifest.json``, which
is dated) and, with ``--expect``, the same as an earlier run's results (the outputs before and
after a change), prints claims/s and the ratios issue 17 names (2 workers / 1, PostgreSQL /
SQLite), the bounds the CPU each leg spent sets on them were every core busy throughout
(``cpu_bounds``), and writes bench/results/mix-<claims>.json.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import generate as gen  # noqa: E402
from bench_run import MIB, _run  # noqa: E402  the run in a fresh process, shared with bench_run
from bench_workflow import pg_database  # noqa: E402

SEED = 7
STAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")
PLANTED_REASONS = ("DUPLICATE_PAYMENT", "PAYER_OVERPAYMENT")
#: issue 17's targets at 100,000 encounters (SQLite, 2 workers)
TARGET_CLAIMS_S, TARGET_RSS_MB, TARGET_PG_RATIO, TARGET_PG_SCALING = 10_000, 250, 1.3, 1.8


def sizes(claims: int, r: random.Random) -> list[tuple[int, int]]:
    """The claims 1..N cut into files as a clearinghouse delivers them: (first claim, count)."""
    out, first = [], 1
    while first <= claims:
        x = r.random()
        n = r.randint(4000, 12000) if x < 0.05 else r.randint(300, 2000) if x < 0.30 else r.randint(1, 150)
        n = min(n, claims - first + 1)
        out.append((first, n))
        first += n
    return out


def spread(total: int, files: list[tuple[int, int]]) -> list[int]:
    """``total`` planted cases over the files of 1,000 claims or more, in proportion to their size."""
    big = [n if n >= 1000 else 0 for _, n in files]
    whole = sum(big) or 1
    share = [total * n / whole for n in big]
    counts = [int(s) for s in share]
    for k in sorted(range(len(files)), key=lambda k: share[k] - counts[k], reverse=True)[: total - sum(counts)]:
        counts[k] += 1
    return counts


def make_mix(folder: Path, claims: int, duplicates: int, overpayments: int) -> dict:
    """Write the drop into ``folder``; return what was planted and what the drop holds."""
    r = random.Random(f"{SEED}/mix/{claims}")
    bills, remits = sizes(claims, r), sizes(claims, r)
    folder.mkdir(parents=True)
    for k, (first, n) in enumerate(bills, 1):
        with open(folder / f"837p-{k:04d}.x12", "w", encoding="ascii", newline="\n", buffering=1 << 20) as out:
            gen.write_837p(out, n, SEED, 1000 if n > 1000 else None, first=first, file_no=k)
    planted: dict[str, list[str]] = {"duplicates": [], "overpayments": []}
    dups, overs = spread(duplicates, remits), spread(overpayments, remits)
    for k, (first, n) in enumerate(remits, 1):
        payer = r.randrange(len(gen.PAYERS))
        name = f"835-{k:04d}-{gen.PAYERS[payer][1]}.x12"
        with open(folder / name, "w", encoding="ascii", newline="\n", buffering=1 << 20) as out:
            got = gen.write_835(out, n, SEED, 1000 if n > 1000 else None, dups[k - 1], overs[k - 1], first=first, file_no=k, payer=payer)
        for kind in planted:
            planted[kind] += got[kind]
    desk = 0
    for part in range(1, 5):
        with open(folder / f"desk-{part}.csv", "w", encoding="ascii", newline="") as out:
            desk += gen.write_patient_payments(out, claims, SEED, part=part, parts=4)
    return {**planted, "files": {"837p": len(bills), "835": len(remits), "payments": 4}, "patient_payments": desk}


def drop(cache: Path, claims: int, duplicates: int, overpayments: int) -> tuple[Path, dict, float]:
    """The drop's folder (generated once into the cache), what it plants, and seconds spent generating."""
    home = cache / f"{claims}-{duplicates}-{overpayments}-seed{SEED}"
    if not (home / "planted.json").exists():
        t0 = time.perf_counter()
        cache.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="making-", dir=cache))
        info = make_mix(scratch / "in", claims, duplicates, overpayments)
        (scratch / "planted.json").write_text(json.dumps(info, indent=1) + "\n")
        shutil.rmtree(home, ignore_errors=True)
        scratch.rename(home)
        return home / "in", info, time.perf_counter() - t0
    return home / "in", json.loads((home / "planted.json").read_text()), 0.0


def digests(out: Path) -> dict[str, str]:
    """SHA-256 of every output but the dated manifest; in the team's work (``workflow.*``) the
    time each refund was identified (the clock's, not the input's) is masked."""
    return {
        p.name: hashlib.sha256(STAMP.sub(b"<time>", p.read_bytes()) if p.name.startswith("workflow.") else p.read_bytes()).hexdigest()
        for p in sorted(out.iterdir())
        if p.is_file() and p.name != "manifest.json"
    }


def check(out: Path, planted: dict) -> dict[str, int]:
    with open(out / "refund_requests.csv", encoding="utf-8") as fh:
        refunds = list(csv.DictReader(fh))
    found = {reason: {r["patient_control_number"] for r in refunds if r["reason"] == reason} for reason in PLANTED_REASONS}
    every = set(planted["duplicates"]) | set(planted["overpayments"])
    return {
        "duplicates": len(set(planted["duplicates"]) & found["DUPLICATE_PAYMENT"]),
        "overpayments": len(set(planted["overpayments"]) & found["PAYER_OVERPAYMENT"]),
        "invented": sum(1 for r in refunds if r["reason"] in PLANTED_REASONS and r["patient_control_number"] not in every),
        "refunds": len(refunds),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--claims", type=int, default=100_000)
    ap.add_argument("--duplicates", type=int, default=None, help="default: 25 per 100,000 claims")
    ap.add_argument("--overpayments", type=int, default=None, help="default: 25 per 100,000 claims")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("--workers", default="1,2", help="the worker counts to run, comma-separated")
    ap.add_argument("--cache", default="/tmp/edirecon-bench-mix", help="where the generated drop is kept between runs")
    ap.add_argument("--expect", help="an earlier results file: its outputs' digests must be this run's")
    ap.add_argument("--extra", default="", help="more options for edirecon run (e.g. --profile)")
    ap.add_argument(
        "--peer-commit",
        help="also run the code of this commit (e.g. the one before a change) as peer legs (`before-…`), same rounds; its outputs must be the same",
    )
    ap.add_argument("--out", default=None, help="default: bench/results/mix-<claims>.json")
    a = ap.parse_args(argv)
    dup = a.duplicates if a.duplicates is not None else max(1, round(25 * a.claims / 100_000))
    over = a.overpayments if a.overpayments is not None else max(1, round(25 * a.claims / 100_000))
    inputs, planted, gen_s = drop(Path(a.cache), a.claims, dup, over)
    size = sum(p.stat().st_size for p in inputs.iterdir()) / MIB
    counts = [int(w) for w in a.workers.split(",")]
    legs = [(db, w) for db in ("sqlite", "postgresql") if a.db in (db, "both") for w in counts]
    peer = _checkout(a.peer_commit) if a.peer_commit else None
    runs = [(db, w, code) for db, w in legs for code in ([None, peer] if peer else [None])]
    print(f"edirecon run on the realistic mix - Python {platform.python_version()}, {os.cpu_count()} cores, load average {os.getloadavg()}", flush=True)
    print(
        f"  input: {a.claims:,} encounters in {planted['files']['837p']} 837P files, {planted['files']['835']} 835s (4 payers), "
        f"{planted['files']['payments']} patient-payment CSVs ({planted['patient_payments']:,} payments); {size:.1f} MiB"
        + (f", generated in {gen_s:.0f} s" if gen_s else ", cached"),
        flush=True,
    )
    times: dict[str, list[dict]] = {_leg(db, w, code): [] for db, w, code in runs}
    seen: dict[str, dict[str, str]] = {}
    verdicts: dict[str, dict[str, int]] = {}
    loads = []
    with tempfile.TemporaryDirectory(prefix="edirecon-mix-") as tmp:
        for rnd in range(a.repeat):
            for db, w, code in runs:
                leg = _leg(db, w, code)
                url = None
                if db == "postgresql":
                    url = pg_database(f"edirecon_mix_{os.getpid()}_{leg.replace('-', '_')}", fresh=True)
                    if url is None:
                        print("  no PostgreSQL server answers: its legs are skipped", file=sys.stderr)
                        continue
                loads.append(os.getloadavg()[0])
                try:
                    got = _run(Path(tmp), inputs, f"{leg}-{rnd}", ["--workers", str(w), *a.extra.split()], url, code)
                finally:
                    if url is not None:
                        _drop_pg(url)
                if got is None:
                    return 1
                out = Path(tmp) / f"{leg}-{rnd}" / "out"
                seen[f"{leg}-{rnd}"] = digests(out)
                verdicts[leg] = check(out, planted)
                times[leg].append(got)
                print(
                    f"  round {rnd + 1} {leg:<13} {got['seconds']:6.1f} s {a.claims / got['seconds']:8,.0f} claims/s  "
                    f"largest {got['rss_mib']:4.0f} MiB, tree {got['tree_rss_mib']:4.0f} MiB  phases {got['phases']}  "
                    f"cpu {got['cpu_s']:.1f} s + server {got['server_cpu_s']:.1f} s = {got['cores']:.2f} cores (machine busy {got['machine_busy_s'] / got['seconds']:.2f})",
                    flush=True,
                )
                shutil.rmtree(Path(tmp) / f"{leg}-{rnd}")
    best = {leg: min(runs, key=lambda g: g["seconds"]) for leg, runs in times.items() if runs}
    first = next(iter(seen.values()))
    same = all(d == first for d in seen.values())
    expected = json.loads(Path(a.expect).read_text())["outputs"] if a.expect else None
    print(f"  best of {a.repeat}, load average during the legs {min(loads):.1f}-{max(loads):.1f}:")
    for leg, g in best.items():
        print(
            f"    {leg:<13} {g['seconds']:6.2f} s {a.claims / g['seconds']:8,.0f} claims/s  largest process {g['rss_mib']:4.0f} MiB ({g['rss_mib'] * MIB / 1e6:.0f} MB)"
        )
    ratios = {}
    for db in ("sqlite", "postgresql"):
        if f"{db}-1" in best and f"{db}-2" in best:
            ratios[f"{db} 2 workers / 1 (claims/s)"] = best[f"{db}-1"]["seconds"] / best[f"{db}-2"]["seconds"]
    for w in counts:
        if f"sqlite-{w}" in best and f"postgresql-{w}" in best:
            ratios[f"postgresql / sqlite, {w} workers (time)"] = best[f"postgresql-{w}"]["seconds"] / best[f"sqlite-{w}"]["seconds"]
    for db, w, code in runs:
        if code is not None and _leg(db, w, None) in best and _leg(db, w, code) in best:
            ratios[f"{db}-{w}: before / after (time)"] = best[_leg(db, w, code)]["seconds"] / best[_leg(db, w, None)]["seconds"]
    for name, value in ratios.items():
        print(f"    {name:<38} {value:.2f}")
    bounds = cpu_bounds(best, a.claims, os.cpu_count() or 1)
    print(f"  bounds from the CPU each leg spent (its processes and the database server's), were every one of {os.cpu_count()} cores busy throughout:")
    for name, value in bounds.items():
        print(f"    {name:<38} {value:,.2f}")
    for leg, v in verdicts.items():
        print(
            f"    {leg:<13} planted duplicates {v['duplicates']}/{len(planted['duplicates'])}, overpayments {v['overpayments']}/{len(planted['overpayments'])}, invented {v['invented']}, refunds {v['refunds']}"
        )
    print(f"    outputs identical across legs and rounds: {same}" + ("" if expected is None else f"; as {a.expect}: {first == expected}"))
    if peer is not None:
        shutil.rmtree(peer)
    main_leg = best.get("sqlite-2")
    targets = {
        "planted refunds found, none invented": all(
            v["duplicates"] == len(planted["duplicates"]) and v["overpayments"] == len(planted["overpayments"]) and not v["invented"] for v in verdicts.values()
        ),
        "outputs identical": same and (expected is None or first == expected),
    }
    if main_leg is not None:
        targets[f"sqlite 2 workers >= {TARGET_CLAIMS_S:,} claims/s"] = a.claims / main_leg["seconds"] >= TARGET_CLAIMS_S
        targets[f"largest process <= {TARGET_RSS_MB} MB"] = main_leg["rss_mib"] * MIB / 1e6 <= TARGET_RSS_MB
    if "sqlite 2 workers / 1 (claims/s)" in ratios:
        targets["sqlite: 2 workers faster than 1"] = ratios["sqlite 2 workers / 1 (claims/s)"] > 1
    if "postgresql / sqlite, 2 workers (time)" in ratios:
        targets[f"postgresql within {TARGET_PG_RATIO}x of sqlite"] = ratios["postgresql / sqlite, 2 workers (time)"] <= TARGET_PG_RATIO
    if "postgresql 2 workers / 1 (claims/s)" in ratios:
        targets[f"postgresql 2 workers >= {TARGET_PG_SCALING}x 1"] = ratios["postgresql 2 workers / 1 (claims/s)"] >= TARGET_PG_SCALING
    for name, ok in targets.items():
        print(f"  {name:<40}{'PASS' if ok else 'FAIL'}")
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "python": platform.python_version(),
        "cores": os.cpu_count(),
        "load_average": [round(min(loads), 2), round(max(loads), 2)],
        "claims": a.claims,
        "input_mib": round(size, 1),
        "drop": planted["files"],
        "patient_payments": planted["patient_payments"],
        "repeat": a.repeat,
        "legs": {
            leg: {
                "best_seconds": round(g["seconds"], 2),
                "claims_per_s": round(a.claims / g["seconds"]),
                "seconds": [round(x["seconds"], 2) for x in times[leg]],
                "phases": g["phases"],
                "peak_rss_mib": round(g["rss_mib"]),
                "peak_tree_rss_mib": round(g["tree_rss_mib"]),
                "cpu_s": g["cpu_s"],
                "server_cpu_s": g["server_cpu_s"],
                "cores": g["cores"],
                "found": verdicts[leg],
            }
            for leg, g in best.items()
        },
        "ratios": {k: round(v, 3) for k, v in ratios.items()},
        "bounds": {k: round(v, 3) for k, v in bounds.items()},
        "planted": {"duplicates": len(planted["duplicates"]), "overpayments": len(planted["overpayments"])},
        "peer_commit": a.peer_commit,
        "outputs": first,
        "targets": targets,
    }
    path = Path(a.out or BENCH / "results" / f"mix-{a.claims}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    return 0 if targets["planted refunds found, none invented"] and targets["outputs identical"] else 1


def cpu_bounds(best: dict[str, dict], claims: int, cores: int) -> dict[str, float]:
    """What no scheduling of the same work could beat on ``cores`` cores: each leg's CPU (the run's
    processes and the database server's) spread over every core for its whole time, as claims/s at
    most; and for each database, its 2 workers / 1 at most (the 1-worker leg's time against that
    bound of the 2-worker leg).  A step that only overlaps work cannot pass these; only one that
    spends less CPU moves them."""
    floor = {leg: (g["cpu_s"] + g["server_cpu_s"]) / cores for leg, g in best.items() if not leg.startswith("before-")}
    out = {f"{leg}: claims/s at most": claims / seconds for leg, seconds in floor.items() if seconds > 0}
    for db in ("sqlite", "postgresql"):
        if f"{db}-1" in best and floor.get(f"{db}-2"):
            out[f"{db} 2 workers / 1 at most"] = best[f"{db}-1"]["seconds"] / floor[f"{db}-2"]
    return out


def _leg(db: str, workers: int, code: Path | None) -> str:
    return f"{'before-' if code is not None else ''}{db}-{workers}"


def _checkout(commit: str) -> Path:
    """The repository at ``commit`` (``git archive``) in a temporary folder, as the package
    ``edirecon`` (the folder returned holds it under that name)."""
    import subprocess

    home = Path(tempfile.mkdtemp(prefix="edirecon-peer-"))
    (home / "edirecon").mkdir()
    archive = subprocess.run(["git", "-C", str(BENCH.parent), "archive", commit], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(home / "edirecon")], input=archive, check=True)
    return home


def _drop_pg(url: str) -> None:
    import psycopg

    admin, name = url.rsplit("/", 1)
    with psycopg.connect(admin + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    sys.exit(main())
