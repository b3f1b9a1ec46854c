#!/usr/bin/env python3
"""Parse-speed and memory benchmark: edirecon's typed parse against a bare split and pyx12.

    python bench/bench_parse.py [--claims 20000] [--pyx12-claims 2000] [--repeat 3]
                                [--memory-claims 100000] [--no-pyx12] [--check]

For the generated 835 and 837P (bench/generate.py, written to bench/data/ when
missing) it times four legs:

  edirecon typed    ``parsers.iter_records(path)`` consumed to the end
  bare split        bytes -> latin-1 -> split on the terminator -> strip -> split elements,
   -> document      every segment kept as a list of elements: the document a split-based
                    reader hands out (the peer of the target "typed within 2x the bare split")
  bare split,       the same split, each segment dropped at once: the floor no parser can beat,
   streamed         and the peer of the ``parse`` legs below (issue 17: ratios against it)
  parse --summary   ``edirecon parse --summary`` (the command's function, stdout to a scratch file)
  parse JSONL v1    ``edirecon parse --format-version 1``: its time and its output bytes
  parse JSONL v2    ``edirecon parse`` (format version 2, orjson): its time and its output bytes
  v2, stdlib json   the same version-2 objects written with the standard library's json
  pyx12 reader      ``pyx12.x12file.X12Reader(path)`` iterated to the end
  pyx12 validator   ``pyx12.x12n_document.x12n_document`` (slow: run on a smaller file
                    of --pyx12-claims claims; compare it per MiB)

Every run of every leg is a fresh child process (``python bench_parse.py --leg ...``),
so its peak RSS (``os.wait4`` rusage of that very child) belongs to that leg alone;
the wall time is measured inside the child around the parse only (imports excluded)
and the best of --repeat runs is kept.  Figures are printed with the targets and
written to bench/results/parse.json.  Unix only (os.wait4).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
MIB = 1 << 20
LEGS = {
    "typed": "edirecon typed",
    "summary": "parse --summary",
    "jsonl1": "parse JSONL v1",
    "jsonl2": "parse JSONL v2",
    "jsonl2std": "v2, stdlib json",
    "document": "split->document",
    "bare": "split, streamed",
    "reader": "pyx12 reader",
    "validator": "pyx12 validator",
}
TARGETS = {  # name: (comparison, bound)
    "typed/bare split->document": ("<=", 2.0),
    "summary/bare split, streamed": ("<=", 1.2),
    "jsonl v2/bare split, streamed": ("<=", 2.5),
    "jsonl v2 bytes/input bytes": ("<=", 2.0),
    "validator/typed per MiB": (">=", 10.0),
    "memory peak RSS MiB": ("<", 150.0),
}


# ---------------------------------------------------------------- the legs (run in the child)
def leg_typed(path: str) -> dict:
    from edirecon.parsers import iter_records  # imported before the clock starts

    counts: dict[str, int] = {}
    t = time.perf_counter()
    for rec in iter_records(path):
        counts[rec.record] = counts.get(rec.record, 0) + 1
    return {"seconds": time.perf_counter() - t, "count": sum(counts.values()), "records": counts}


def _cli_parse(path: str, *args: str) -> dict:
    """``edirecon parse [args] PATH`` as the command runs it, stdout to a scratch file (its bytes counted)."""
    import tempfile

    import typer

    from edirecon.cli import parse  # imported before the clock starts

    with tempfile.TemporaryFile("w+", encoding="utf-8") as out:
        saved, sys.stdout = sys.stdout, out
        t = time.perf_counter()
        try:
            parse([Path(path)], summary="--summary" in args, format_version=int(args[-1]) if args and args[-1].isdigit() else 2)
        except typer.Exit:
            pass
        finally:
            seconds = time.perf_counter() - t
            sys.stdout = saved
        size = out.tell()
    return {"seconds": seconds, "out_bytes": size}


def leg_summary(path: str) -> dict:
    return _cli_parse(path, "--summary")


def leg_jsonl1(path: str) -> dict:
    return _cli_parse(path, "1")


def leg_jsonl2(path: str) -> dict:
    return _cli_parse(path, "2")


def leg_jsonl2std(path: str) -> dict:
    """Format version 2 written with the standard library's json instead of orjson (same objects)."""
    import json as stdjson
    import tempfile

    from edirecon import parsers
    from edirecon.parsers.serialize import CompactWriter

    dumps = stdjson.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out:
        t = time.perf_counter()
        writer = CompactWriter()
        for parsed in parsers.iter_transactions(path):
            for o in writer.lines(parsed):
                out.write(dumps(o) + "\n")
        seconds = time.perf_counter() - t
        size = out.tell()
    return {"seconds": seconds, "out_bytes": size}


def leg_bare(path: str) -> dict:
    t = time.perf_counter()
    with open(path, "rb") as fh:
        text = fh.read().decode("latin-1")
    element, terminator = text[3], text[105]
    n = 0
    for seg in text.split(terminator):
        seg = seg.strip()
        if seg:
            seg.split(element)
            n += 1
    return {"seconds": time.perf_counter() - t, "count": n}


def leg_document(path: str) -> dict:
    t = time.perf_counter()
    with open(path, "rb") as fh:
        text = fh.read().decode("latin-1")
    element, terminator = text[3], text[105]
    document = [seg.split(element) for seg in (s.strip() for s in text.split(terminator)) if seg]
    return {"seconds": time.perf_counter() - t, "count": len(document)}


def leg_reader(path: str) -> dict:
    import pyx12.x12file

    t = time.perf_counter()
    n = sum(1 for _ in pyx12.x12file.X12Reader(path))
    return {"seconds": time.perf_counter() - t, "count": n}


def leg_validator(path: str) -> dict:
    import io
    import logging

    import pyx12.params
    import pyx12.x12n_document

    logging.getLogger("pyx12").setLevel(logging.CRITICAL)  # pyx12 logs its 835 999 quirk
    t = time.perf_counter()
    valid = pyx12.x12n_document.x12n_document(pyx12.params.params(), path, fd_997=io.StringIO(), fd_html=None)
    return {"seconds": time.perf_counter() - t, "valid": bool(valid)}


def leg_baseline(path: str) -> dict:  # the interpreter alone: the RSS floor of every leg
    return {"seconds": 0.0}


# ---------------------------------------------------------------- the parent
def run_child(leg: str, path: Path) -> dict:
    """Run one leg in a fresh interpreter; return its JSON result plus its peak RSS."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--leg", leg, str(path)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)  # rusage of this child only
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close(), proc.stderr.close()
    rss = usage.ru_maxrss / (MIB if sys.platform == "darwin" else 1024)  # bytes on macOS, KiB on Linux
    if proc.returncode:
        lines = err.decode(errors="replace").strip().splitlines() or [f"exit {proc.returncode}"]
        return {"error": lines[-1], "rss_mib": rss}
    return dict(json.loads(out), rss_mib=rss)


def measure(leg: str, path: Path, claims: int, repeat: int) -> dict:
    """Best-of-*repeat* wall time and the highest peak RSS of *leg* on *path*."""
    runs = [run_child(leg, path) for _ in range(repeat)]
    return summarise(leg, path, claims, runs)


def measure_round_robin(legs: tuple[str, ...], path: Path, claims: int, repeat: int) -> dict[str, dict]:
    """Every leg of *legs* on *path*, one run of each leg per round, *repeat* rounds: on a machine
    shared with other work each leg sees the same load, so the ratios hold (best of *repeat* each)."""
    runs: dict[str, list[dict]] = {leg: [] for leg in legs}
    for _ in range(repeat):
        for leg in legs:
            runs[leg].append(run_child(leg, path))
    return {leg: summarise(leg, path, claims, runs[leg]) for leg in legs}


def summarise(leg: str, path: Path, claims: int, runs: list[dict]) -> dict:
    failed = [r for r in runs if "error" in r]
    if failed:
        return {"leg": leg, "claims": claims, "error": failed[0]["error"]}
    best = min(runs, key=lambda r: r["seconds"])
    mib = path.stat().st_size / MIB
    return dict(
        best,
        leg=leg,
        file=str(path.relative_to(ROOT)),
        claims=claims,
        mib=round(mib, 3),
        seconds=round(best["seconds"], 6),
        seconds_all=[round(r["seconds"], 4) for r in runs],
        rss_mib=round(max(r["rss_mib"] for r in runs), 1),
        mib_per_s=round(mib / best["seconds"], 3),
        claims_per_s=round(claims / best["seconds"], 1),
    )


def data_file(kind: str, claims: int, seed: int) -> Path:
    """The generated file for (kind, claims, seed), generated into bench/data/ when missing."""
    path = BENCH / "data" / f"{kind}_{claims}_s{seed}.x12"
    if not path.exists():
        sys.path.insert(0, str(BENCH))
        from generate import generate

        path.parent.mkdir(exist_ok=True)
        print(f"generating {path.relative_to(ROOT)} ...", file=sys.stderr, flush=True)
        tmp = path.with_suffix(".tmp")
        generate(kind, str(tmp), claims, seed=seed)
        tmp.rename(path)
    return path


def verdict(name: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    op, bound = TARGETS[name]
    ok = {"<=": value <= bound, ">=": value >= bound, "<": value < bound}[op]
    return "PASS" if ok else "FAIL"


def fmt(v, width: int) -> str:
    return ("-" if v is None else f"{v:.2f}").rjust(width)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--claims", type=int, default=20_000, help="claims per file (default 20000)")
    ap.add_argument("--pyx12-claims", type=int, default=None, help="claims in the pyx12-validator file (default min(N, 2000))")
    ap.add_argument("--repeat", type=int, default=3, help="runs per leg, best time kept")
    ap.add_argument("--memory-claims", type=int, default=100_000, help="claims in the single-ST 835 of the memory leg (0 to skip)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kinds", default="835,837p")
    ap.add_argument("--no-pyx12", action="store_true", help="skip the pyx12 legs (reader, validator)")
    ap.add_argument("--out", default=str(BENCH / "results" / "parse.json"))
    ap.add_argument("--check", action="store_true", help="exit 1 when a target FAILs")
    ap.add_argument("--leg", nargs=2, metavar=("LEG", "PATH"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.leg:  # child mode
        print(json.dumps(globals()["leg_" + a.leg[0]](a.leg[1])))
        return 0

    n, m = a.claims, a.pyx12_claims or min(a.claims, 2000)
    baseline = run_child("baseline", Path(__file__))["rss_mib"]
    print(
        f"edirecon parse benchmark - Python {platform.python_version()}, {platform.machine()}, "
        f"best of {a.repeat}, seed {a.seed}; interpreter alone: {baseline:.1f} MiB RSS"
    )
    results: dict = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "repeat": a.repeat,
        "seed": a.seed,
        "claims": n,
        "pyx12_claims": m,
        "baseline_rss_mib": round(baseline, 1),
        "kinds": {},
        "targets": {},
    }
    failed = False
    for kind in a.kinds.split(","):
        big = data_file(kind, n, a.seed)
        small = big if a.no_pyx12 else data_file(kind, m, a.seed)
        names = ("typed", "summary", "jsonl1", "jsonl2", "jsonl2std", "document", "bare") + (() if a.no_pyx12 else ("reader",))
        legs = measure_round_robin(names, big, n, a.repeat)
        if not a.no_pyx12:
            legs["validator"] = measure("validator", small, m, a.repeat)
        ok = {k: v for k, v in legs.items() if "error" not in v}
        s_per_mib = {k: v["seconds"] / v["mib"] for k, v in ok.items()}
        ratios = {
            "typed/bare split->document": ok["typed"]["seconds"] / ok["document"]["seconds"] if {"typed", "document"} <= ok.keys() else None,
            "typed/bare split, streamed": ok["typed"]["seconds"] / ok["bare"]["seconds"] if {"typed", "bare"} <= ok.keys() else None,
            "validator/typed per MiB": s_per_mib["validator"] / s_per_mib["typed"] if {"typed", "validator"} <= ok.keys() else None,
            "reader/typed": ok["reader"]["seconds"] / ok["typed"]["seconds"] if {"typed", "reader"} <= ok.keys() else None,
        }
        size = big.stat().st_size
        for leg, name in (("summary", "summary"), ("jsonl1", "jsonl v1"), ("jsonl2", "jsonl v2"), ("jsonl2std", "jsonl v2 stdlib")):
            ratios[f"{name}/bare split, streamed"] = ok[leg]["seconds"] / ok["bare"]["seconds"] if {leg, "bare"} <= ok.keys() else None
        for leg, name in (("jsonl1", "jsonl v1"), ("jsonl2", "jsonl v2")):
            ratios[f"{name} bytes/input bytes"] = ok[leg]["out_bytes"] / size if leg in ok else None
        for leg, name in (("summary", "summary"), ("jsonl2", "jsonl v2")):
            ratios[f"{name}/bare split->document"] = ok[leg]["seconds"] / ok["document"]["seconds"] if {leg, "document"} <= ok.keys() else None
        ratios["stdlib json/orjson (v2)"] = ok["jsonl2std"]["seconds"] / ok["jsonl2"]["seconds"] if {"jsonl2", "jsonl2std"} <= ok.keys() else None
        print(
            f"\n{kind.upper()}: {big.name} ({n:,} claims, {big.stat().st_size / MIB:.2f} MiB); "
            f"validator on {small.name} ({m:,} claims, {small.stat().st_size / MIB:.2f} MiB)"
        )
        print(f"  {'leg':<17}{'N claims':>9}{'seconds':>10}{'MiB/s':>9}{'claims/s':>11}{'peak RSS MiB':>14}")
        for leg, r in legs.items():
            if "error" in r:
                print(f"  {LEGS[leg]:<17}{r['claims']:>9,}  unavailable: {r['error']}")
                continue
            extra = f"   records {r['records']}" if "records" in r else (f"   valid={r['valid']}" if "valid" in r else "")
            extra += f"   out {r['out_bytes'] / MIB:.2f} MiB" if "out_bytes" in r else ""
            print(f"  {LEGS[leg]:<17}{r['claims']:>9,}{r['seconds']:>10.3f}{r['mib_per_s']:>9.2f}{r['claims_per_s']:>11,.0f}{r['rss_mib']:>14.1f}{extra}")
        for name, value in ratios.items():
            target = TARGETS.get(name)
            v = verdict(name, value) if target else "(info)"
            failed |= v == "FAIL"
            print(f"  {name:<30}{fmt(value, 8)}   {'target ' + target[0] + ' ' + format(target[1], 'g') if target else '':<16}{v}")
        results["kinds"][kind] = {"legs": legs, "ratios": {k: None if v is None else round(v, 3) for k, v in ratios.items()}}

    if a.memory_claims:
        path = data_file("835", a.memory_claims, a.seed)
        r = measure("typed", path, a.memory_claims, 1)
        rss = r.get("rss_mib") if "error" not in r else None
        v = verdict("memory peak RSS MiB", rss)
        failed |= v == "FAIL"
        print(
            f"\nMEMORY: edirecon typed on {path.name} ({a.memory_claims:,} claims in one ST, "
            f"{path.stat().st_size / MIB:.1f} MiB): "
            + (f"peak RSS {rss:.1f} MiB in {r['seconds']:.2f} s   target < 150   {v}" if rss is not None else f"unavailable: {r['error']}   {v}")
        )
        results["memory"] = r

    results["targets"] = {k: {"op": op, "bound": b} for k, (op, b) in TARGETS.items()}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwritten {out}")
    return 1 if a.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
