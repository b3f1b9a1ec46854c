#!/usr/bin/env python3
"""End-to-end benchmark of ``edirecon run`` on SQLite, with planted duplicates and overpayments.

    python bench/bench_run.py [--claims 100000] [--duplicates 25] [--overpayments 25]
                              [--claims-per-transaction 1000] [--check]

Generates an 837P and the 835 that pays it (bench/generate.py, same seed), plants duplicate
payments and overpayments in the 835, then runs ``edirecon run`` in a fresh process on a fresh
SQLite store and reports wall time, claims per second (claims billed, i.e. 837 claims, per second
of the whole run: ingest both files, decide, write), peak RSS (``os.wait4`` of that process), and
how many planted cases were found and whether any refund was invented.  Figures go to
bench/results/run.json.  Targets: every planted case found, none invented, ≥ 5,000 claims/s,
peak RSS < 500 MB.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
MIB = 1 << 20


def generate(folder: Path, claims: int, duplicates: int, overpayments: int, per: int, seed: int) -> dict[str, list[str]]:
    sys.path.insert(0, str(BENCH))
    from generate import generate as gen

    gen("837p", str(folder / "claims.837"), claims, seed=seed, claims_per_transaction=per)
    planted = gen("835", str(folder / "remit.835"), claims, seed=seed, claims_per_transaction=per, duplicates=duplicates, overpayments=overpayments)
    for leftover in folder.glob("*.planted.json"):  # keep the input folder to the two X12 files
        leftover.unlink()
    return planted


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--claims", type=int, default=100_000)
    ap.add_argument("--duplicates", type=int, default=25)
    ap.add_argument("--overpayments", type=int, default=25)
    ap.add_argument("--claims-per-transaction", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=str(BENCH / "results" / "run.json"))
    ap.add_argument("--check", action="store_true", help="exit 1 when a target fails")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edirecon-bench-") as tmp:
        work = Path(tmp)
        inputs = work / "in"
        inputs.mkdir()
        t0 = time.perf_counter()
        planted = generate(inputs, a.claims, a.duplicates, a.overpayments, a.claims_per_transaction, a.seed)
        gen_s = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in inputs.iterdir()) / MIB
        cmd = [sys.executable, "-m", "cli", "run", str(inputs), "--db", f"sqlite:///{work}/store.db", "--out", str(work / "out"), "--as-of", "2026-11-27"]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = proc.communicate()
        _, status, usage = os.wait4(proc.pid, 0) if proc.returncode is None else (0, 0, None)
        seconds = time.perf_counter() - start
        if proc.returncode:
            print(err.decode(errors="replace")[-2000:], file=sys.stderr)
            return 1
        rss = (usage.ru_maxrss / 1024) if usage is not None else _child_rss()
        refunds = list(csv.DictReader(open(work / "out" / "refund_requests.csv", encoding="utf-8")))
    found = {reason: {r["patient_control_number"] for r in refunds if r["reason"] == reason} for reason in ("DUPLICATE_PAYMENT", "PAYER_OVERPAYMENT")}
    dup_found = len(set(planted["duplicates"]) & found["DUPLICATE_PAYMENT"])
    over_found = len(set(planted["overpayments"]) & found["PAYER_OVERPAYMENT"])
    invented = [r for r in refunds if r["patient_control_number"] not in set(planted["duplicates"]) | set(planted["overpayments"])]
    claims_per_s = a.claims / seconds
    targets = {
        "planted duplicates found": dup_found == len(planted["duplicates"]),
        "planted overpayments found": over_found == len(planted["overpayments"]),
        "no invented refund": not invented,
        "claims/s >= 5000": claims_per_s >= 5000,
        "peak RSS < 500 MiB": rss < 500,
    }
    print(f"edirecon run benchmark - Python {platform.python_version()}, {platform.machine()}, SQLite, seed {a.seed}")
    print(f"  input: {a.claims:,} claims (837P) + their 835 ({a.claims_per_transaction:,} claims per transaction set), {size:.1f} MiB, generated in {gen_s:.1f} s")
    print(f"  run:   {seconds:.1f} s end to end, {claims_per_s:,.0f} claims/s, peak RSS {rss:.0f} MiB")
    print(f"  planted duplicates found {dup_found}/{len(planted['duplicates'])}, overpayments found {over_found}/{len(planted['overpayments'])}, "
          f"refunds invented {len(invented)}")
    for name, ok in targets.items():
        print(f"  {name:<28}{'PASS' if ok else 'FAIL'}")
    result = {
        "python": platform.python_version(), "claims": a.claims, "claims_per_transaction": a.claims_per_transaction, "input_mib": round(size, 1),
        "seconds": round(seconds, 2), "claims_per_s": round(claims_per_s), "peak_rss_mib": round(rss), "planted": planted,
        "found": {"duplicates": dup_found, "overpayments": over_found}, "invented": [r["refund_id"] for r in invented], "targets": targets,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    return 1 if a.check and not all(targets.values()) else 0


def _child_rss() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


if __name__ == "__main__":
    sys.exit(main())
