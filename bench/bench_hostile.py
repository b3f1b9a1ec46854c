#!/usr/bin/env python3
"""Time and memory of `edirecon parse --summary` and `edirecon run` on hostile transaction sets.

    python bench/bench_hostile.py [--out bench/results/hostile.json]

Generates (``bench/hostile.py``, into ``bench/data/hostile/``, kept between runs) one transaction
set per case, each with right envelopes and balanced money, and runs each command on it in a fresh
process (``run`` on a fresh SQLite store, ``--workers 1``).  It prints the wall time and the peak
RSS of the whole process tree (psutil, sampled every 10 ms, and the largest process's own peak from
``wait4``) against the documented bound: 100 MB + 10 x the bytes of the transaction set.

The cases: one claim payment of 1,000,000 CAS (refused: ``TRANSACTION_TOO_LARGE``) and one of
49,990 (the largest read); an 837 of 100,000 LX and no claim (refused) and one of 49,990 (read,
one ``ORPHAN_SEGMENT`` each); one segment of 10 MiB between two claim payments
(``SEGMENT_TOO_LONG``, the two read); a claim of 16,000 service lines paid line by line; one claim
number paid 10,000 times, each later payment reversed; a claim of 16,000 lines paid line by line and
16,000 reversed payments of it by a second payer without lines; 10,000 PLB take-backs of one claim
(half offset by 72s) and 10,000 give-backs; one claim number paid 10,000 times, each duplicate taken
back by its own PLB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
DATA = BENCH / "data" / "hostile"
MB = 1_000_000
MIB = 1 << 20

sys.path.insert(0, str(BENCH))
import hostile  # noqa: E402  (bench/hostile.py, the generators)

#: name -> (what it is, the hostile file, how to write the case's files into a folder)
CASES: dict[str, tuple[str, str, Callable[[Path], None]]] = {
    "cas-1m": (
        "1,000,000 CAS in one claim payment (835)",
        "cas-1m.835",
        lambda d: (hostile.many_cas_835(d / "cas-1m.835", 1_000_000), hostile.one_claim_837(d / "claim.837", 1_000_000)),
    ),
    "cas-49990": (
        "49,990 CAS in one claim payment (835), under the limit",
        "cas-49990.835",
        lambda d: (hostile.many_cas_835(d / "cas-49990.835", 49_990), hostile.one_claim_837(d / "claim.837", 49_990)),
    ),
    "lx-100k": ("100,000 LX without claims (837P)", "lx-100k.837", lambda d: hostile.many_lx_837(d / "lx-100k.837", 100_000)),
    "lx-49990": ("49,990 LX without claims (837P), under the limit", "lx-49990.837", lambda d: hostile.many_lx_837(d / "lx-49990.837", 49_990)),
    "segment-10m": (
        "one 10 MiB segment between two claim payments (835)",
        "segment-10m.835",
        lambda d: hostile.long_segment_835(d / "segment-10m.835", 10 * MIB),
    ),
    "lines-16000": (
        "a claim of 16,000 lines and its payment (837P + 835)",
        "lines-16000.835",
        lambda d: hostile.many_lines(d / "lines-16000-claim.837", d / "lines-16000.835", 16_000),
    ),
    "reversals-10000": (
        "one CLP01 paid 10,000 times, each duplicate reversed (835)",
        "reversals-10000.835",
        lambda d: hostile.many_payments(d / "claim.837", d / "reversals-10000.835", 10_000, reversed_from=2),
    ),
    "no-lines-16000": (
        "16,000 lines paid, then 16,000 reversed payments without lines (835)",
        "no-lines-16000.835",
        lambda d: (
            hostile.many_lines(d / "claim.837", d / "lines.835", 16_000),
            hostile.many_payments(None, d / "no-lines-16000.835", 16_000, reversed_from=1, payer=("BETA HEALTH PLAN", "77001")),
        ),
    ),
    "plb-10000": (
        "10,000 PLB take-backs of one claim, 72 offsets, 10,000 give-backs (835)",
        "plb-10000.835",
        lambda d: hostile.many_plbs(d / "claim.837", d / "plb-10000.835", 10_000),
    ),
    "takebacks-10000": (
        "one CLP01 paid 10,000 times, each duplicate taken back by a PLB (835)",
        "takebacks-10000.835",
        lambda d: (hostile.many_payments(d / "claim.837", d / "payments.835", 10_000), hostile.takebacks_835(d / "takebacks-10000.835", 10_000)),
    ),
}


def prepare(name: str) -> tuple[Path, Path]:
    """The case's folder (generated once, kept in bench/data/hostile/) and its hostile file."""
    folder = DATA / name
    target = folder / CASES[name][1]
    if not target.is_file():
        tmp = DATA / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        CASES[name][2](tmp)
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    return folder, target


def measure(cmd: list[str], cwd: Path) -> dict[str, Any]:
    """Run ``cmd``: exit code, wall seconds, peak RSS of the whole tree (sampled) and of the
    largest process (wait4), stderr's last line."""
    import psutil

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    with open(cwd / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                total = root.memory_info().rss + sum(c.memory_info().rss for c in root.children(recursive=True))
            except psutil.Error:
                break
            peak[0] = max(peak[0], total)
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    done.set()
    sampler.join(1)
    lines = (cwd / "stderr.txt").read_text(errors="replace").splitlines()
    return {
        "exit": os.waitstatus_to_exitcode(status),
        "seconds": seconds,
        "tree_mb": max(peak[0], usage.ru_maxrss * 1024) / MB,
        "largest_mb": usage.ru_maxrss * 1024 / MB,
        "traceback": any(line.startswith("Traceback") for line in lines),
        "first_finding": next((line for line in lines if ": " in line and line.split(": ", 1)[1][:1].isupper()), ""),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(BENCH / "results" / "hostile.json"))
    ap.add_argument("--case", action="append", choices=list(CASES), help="only these cases (default: all)")
    a = ap.parse_args(argv)
    results: dict[str, Any] = {"python": platform.python_version(), "cores": os.cpu_count(), "cases": {}}
    print(f"hostile transaction sets - Python {platform.python_version()}, {os.cpu_count()} cores; bound: 100 MB + 10 x the set's bytes")
    print(f"{'case':<58}{'command':<16}{'exit':>5}{'seconds':>9}{'peak MB':>9}{'bound MB':>10}  within")
    ok = True
    for name in a.case or CASES:
        what = CASES[name][0]
        t0 = time.perf_counter()
        folder, target = prepare(name)
        generated = time.perf_counter() - t0
        size = max(f.stat().st_size for f in folder.iterdir())  # each file is one transaction set
        bound = 100 + 10 * size / MB
        case: dict[str, Any] = {"what": what, "file": target.name, "bytes": size, "bound_mb": round(bound, 1), "generate_s": round(generated, 2)}
        with tempfile.TemporaryDirectory(prefix="edirecon-hostile-") as tmp:
            work = Path(tmp)
            legs = {
                "parse --summary": [sys.executable, "-m", "cli", "parse", "--summary", str(target)],
                "run": [
                    sys.executable,
                    "-m",
                    "cli",
                    "run",
                    str(folder),
                    "--db",
                    f"sqlite:///{work}/store.db",
                    "--out",
                    str(work / "out"),
                    "--as-of",
                    "2026-11-27",
                    "--workers",
                    "1",
                ],
            }
            for leg, cmd in legs.items():
                m = measure(cmd, work)
                within = m["tree_mb"] <= bound and not m["traceback"]
                ok &= within
                case[leg] = {k: round(v, 2) if isinstance(v, float) else v for k, v in m.items()}
                print(f"{what[:57]:<58}{leg:<16}{m['exit']:>5}{m['seconds']:>9.2f}{m['tree_mb']:>9.0f}{bound:>10.0f}  {'yes' if within else 'NO'}")
            case["first_finding"] = case["parse --summary"]["first_finding"]
        print(f"{'':<58}{size / MB:.1f} MB; {case['first_finding'][:150]}")
        results["cases"][name] = case
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(results, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
