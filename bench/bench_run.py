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
# how often the whole process tree's memory is summed: walking /proc for every child every 10 ms
# took 0.1 (a fast host) to 0.3 (a slow one) of a core from the run being measured, every 100 ms
# about 0.05; the largest process's peak comes from wait4, exact at any rate
TREE_SAMPLE_S = 0.1


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
    ap.add_argument("--no-peer", dest="peer", action="store_false", help="skip the one-process peer run")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="edirecon-bench-") as tmp:
        work = Path(tmp)
        inputs = work / "in"
        inputs.mkdir()
        t0 = time.perf_counter()
        planted = generate(inputs, a.claims, a.duplicates, a.overpayments, a.claims_per_transaction, a.seed)
        gen_s = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in inputs.iterdir()) / MIB
        runs = {}
        for label, extra in (("parallel", []), ("one process", ["--workers", "1"])):
            runs[label] = _run(work, inputs, label.replace(" ", "-"), extra)
            if runs[label] is None:
                return 1
            if not a.peer:
                break
        refunds = list(csv.DictReader(open(work / "parallel" / "out" / "refund_requests.csv", encoding="utf-8")))
    main_run = runs["parallel"]
    seconds, rss, tree = main_run["seconds"], main_run["rss_mib"], main_run["tree_rss_mib"]
    found = {reason: {r["patient_control_number"] for r in refunds if r["reason"] == reason} for reason in ("DUPLICATE_PAYMENT", "PAYER_OVERPAYMENT")}
    dup_found = len(set(planted["duplicates"]) & found["DUPLICATE_PAYMENT"])
    over_found = len(set(planted["overpayments"]) & found["PAYER_OVERPAYMENT"])
    invented = [r for r in refunds if r["patient_control_number"] not in set(planted["duplicates"]) | set(planted["overpayments"])]
    claims_per_s = a.claims / seconds
    peak_mb = max(rss, tree) * MIB / 1e6
    targets = {
        "planted duplicates found": dup_found == len(planted["duplicates"]),
        "planted overpayments found": over_found == len(planted["overpayments"]),
        "no invented refund": not invented,
        "claims/s >= 5000": claims_per_s >= 5000,
        "peak RSS < 500 MB": peak_mb < 500,
    }
    print(f"edirecon run benchmark - Python {platform.python_version()}, {platform.machine()}, SQLite, seed {a.seed}")
    print(
        f"  input: {a.claims:,} claims (837P) + their 835 ({a.claims_per_transaction:,} claims per transaction set), {size:.1f} MiB, generated in {gen_s:.1f} s"
    )
    print(f"  run:   {seconds:.1f} s end to end, {claims_per_s:,.0f} claims/s on {os.cpu_count()} cores; phases (s): {main_run['phases']}")
    print(f"  peak RSS: largest process {rss:.0f} MiB, all processes together {tree:.0f} MiB ({peak_mb:.0f} MB); per phase (MiB): {main_run['phase_rss']}")
    if "one process" in runs:
        peer = runs["one process"]
        print(
            f"  peer, same run: --workers 1 {peer['seconds']:.1f} s ({a.claims / peer['seconds']:,.0f} claims/s), phases {peer['phases']}; "
            f"parallel/one-process time ratio {seconds / peer['seconds']:.2f}"
        )
    print(
        f"  planted duplicates found {dup_found}/{len(planted['duplicates'])}, overpayments found {over_found}/{len(planted['overpayments'])}, "
        f"refunds invented {len(invented)}"
    )
    for name, ok in targets.items():
        print(f"  {name:<28}{'PASS' if ok else 'FAIL'}")
    result = {
        "python": platform.python_version(),
        "claims": a.claims,
        "claims_per_transaction": a.claims_per_transaction,
        "input_mib": round(size, 1),
        "seconds": round(seconds, 2),
        "claims_per_s": round(claims_per_s),
        "cores": os.cpu_count(),
        "phases": main_run["phases"],
        "peak_rss_mib": round(rss),
        "peak_tree_rss_mib": round(tree),
        "peak_mb": round(peak_mb),
        "one_process_seconds": round(runs["one process"]["seconds"], 2) if "one process" in runs else None,
        "planted": planted,
        "found": {"duplicates": dup_found, "overpayments": over_found},
        "invented": [r["refund_id"] for r in invented],
        "targets": targets,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
    return 1 if a.check and not all(targets.values()) else 0


def _run(work: Path, inputs: Path, label: str, extra: list[str], db: str | None = None, code: Path | None = None) -> dict | None:
    """``edirecon run`` in a fresh process on a fresh store (``db``, or a new SQLite file in the
    run's folder ``work/label``): wall time, the peak RSS of the largest process (wait4) and of the
    whole process tree (sampled every ``TREE_SAMPLE_S``), the phase times it logs.  ``code``: a folder holding
    another checkout as ``edirecon`` to run instead of this one (a peer: the code before a change)."""
    import threading

    import psutil

    folder = work / label
    folder.mkdir()
    cmd = [
        sys.executable,
        "-m",
        "cli",
        "run",
        str(inputs),
        "--db",
        db or f"sqlite:///{folder}/store.db",
        "--out",
        str(folder / "out"),
        "--as-of",
        "2026-11-27",
        "--verbose",
        *extra,
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT) if code is None else f"{code}{os.pathsep}{code / 'edirecon'}")
    server = _postmaster() if db else None
    server_before = _server_cpu(server)
    busy_before = _machine_busy()
    start = time.perf_counter()
    with open(folder / "stdout.txt", "wb") as out, open(folder / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(cmd, cwd=folder, env=env, stdout=out, stderr=err)
    tree_peak = [0]
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                total = root.memory_info().rss + sum(c.memory_info().rss for c in root.children(recursive=True))
            except psutil.Error:
                break
            tree_peak[0] = max(tree_peak[0], total)
            time.sleep(TREE_SAMPLE_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)  # the rusage of this process (and its waited-for children)
    seconds = time.perf_counter() - start
    busy = _machine_busy() - busy_before
    if server is not None:
        time.sleep(0.3)  # the server's backends end as the run's connections close: let it reap them
    server_cpu = _server_cpu(server) - server_before
    done.set()
    sampler.join(1)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err_text = (folder / "stderr.txt").read_text(errors="replace")
    if proc.returncode:
        print(err_text[-2000:], file=sys.stderr)
        return None
    rss = usage.ru_maxrss / 1024
    finished = next((json.loads(line) for line in err_text.splitlines() if '"run_finished"' in line), {})
    return {
        "seconds": seconds,
        "rss_mib": rss,
        "tree_rss_mib": tree_peak[0] / MIB,
        "phases": finished.get("seconds", {}),
        "phase_rss": finished.get("peak_rss_mib", {}),
        # CPU seconds: the run's own process tree (rusage of it and its waited-for children), the
        # database server's backends that ended during the run (PostgreSQL), and every core of the
        # machine (/proc/stat, anything else running included); "cores" = (run + server) / wall
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "server_cpu_s": round(server_cpu, 2),
        "machine_busy_s": round(busy, 2),
        "cores": round((usage.ru_utime + usage.ru_stime + server_cpu) / seconds, 2),
    }


def _machine_busy() -> float:
    """CPU seconds every core of the machine has spent busy since boot (/proc/stat: all but idle
    and iowait); 0 where there is no /proc."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    ticks = [int(f) for f in fields]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _postmaster() -> int | None:
    """The local PostgreSQL server's main process: the ``postgres`` process whose parent is not one."""
    import psutil

    for proc in psutil.process_iter(["name", "ppid"]):
        if proc.info["name"] == "postgres":
            try:
                if psutil.Process(proc.info["ppid"]).name() != "postgres":
                    return proc.pid
            except psutil.Error:
                continue
    return None


def _server_cpu(pid: int | None) -> float:
    """CPU seconds of the server's ended backends (the postmaster's reaped children: cutime and
    cstime of /proc/<pid>/stat) plus its own; 0 without a server or /proc."""
    if pid is None:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    sys.exit(main())
