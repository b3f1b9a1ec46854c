"""`edirecon watch`: clearinghouse drop folders, driven as a partner and a downstream system would
drive them — real folder trees, `python -m edirecon watch` subprocesses, signals, and pyx12 reading the
acknowledgments back."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, date
from pathlib import Path
from typing import Any

import pytest
import pyx12.params
import pyx12.x12file
import pyx12.x12n_document
from conftest import FIXTURES, REPO, SAMPLE_EDI
from typer.testing import CliRunner

from edirecon import parsers
from edirecon.cli import app

AS_OF = "2026-11-27"
ENV = dict(os.environ, PYTHONPATH=str(REPO))
RUN_OUTPUTS = sorted(f"{n}.{ext}" for n in ("refund_requests", "recoupments", "credit_balances", "exceptions") for ext in ("csv", "jsonl")) + ["summary.json"]
#: patient names, member ids and dates of birth of the sample files dropped below: never in a log
PRIVATE = ("SMITH", "JOHN", "EMMA", "BRH123456701", "BRH987654301", "19780312", "1978-03-12", "20150704", "ADAMS", "BAKER", "BRH440055601")

GOOD = {
    "acme/claims.837": SAMPLE_EDI / "clean-payment" / "claims.837",
    "acme/claims-duplicate-payment.837": SAMPLE_EDI / "duplicate-payment" / "claims.837",
    "acme/claims-institutional.837": SAMPLE_EDI / "institutional-and-dental" / "claims-institutional.837",
    "acme/claims-dental.837": SAMPLE_EDI / "institutional-and-dental" / "claims-dental.837",
    "blueriver/remit.835": SAMPLE_EDI / "clean-payment" / "remit.835",
    "blueriver/remit-1.835": SAMPLE_EDI / "duplicate-payment" / "remit-1.835",
    "blueriver/remit-2.835": SAMPLE_EDI / "duplicate-payment" / "remit-2.835",
    "blueriver/remit-institutional.835": SAMPLE_EDI / "institutional-and-dental" / "remit.835",
}
BROKEN = {
    "acme/claims-bad-counts.837": SAMPLE_EDI / "broken-file" / "claims-bad-counts.837",
    "blueriver/remit-truncated.835": SAMPLE_EDI / "broken-file" / "remit-truncated.835",
    "scan.pdf": FIXTURES / "bad" / "binary-garbage.835",
}
#: never candidates: uploads in progress and dotfiles
IGNORED = ("acme/upload.837.part", "acme/upload.837.tmp", ".hidden.837", "acme/.later.835")


# ------------------------------------------------------------------------------------ helpers
def watch_cmd(root: Path, db: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "edirecon", "watch", str(root), "--db", db, "--as-of", AS_OF, *args]


def watch(root: Path, db: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """One `edirecon watch` process to its end."""
    return subprocess.run(watch_cmd(root, db, *args), env=ENV, capture_output=True, text=True, timeout=timeout)


def start(root: Path, db: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(watch_cmd(root, db, *args), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def events(stderr: str) -> list[dict[str, Any]]:
    """Every stderr line is one JSON log event."""
    return [json.loads(line) for line in stderr.splitlines()]


def drop(root: Path, rel: str, data: bytes) -> None:
    """What a partner does: upload under a .part name, then rename."""
    target = root / "inbound" / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    part.write_bytes(data)
    os.rename(part, target)


def files_under(folder: Path) -> list[str]:
    """Data files (no dotfiles) under a folder, as sorted relative paths."""
    if not folder.is_dir():
        return []
    return sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.relative_to(folder).parts)
    )


def counts(db_file: Path, *tables: str) -> dict[str, int]:
    with sqlite3.connect(db_file) as conn:
        return {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def segments(data: bytes) -> list[list[str]]:
    """The segments of a `*`/`~` file, split without edirecon."""
    return [s.strip().split("*") for s in data.decode("latin-1").split("~") if s.strip()]


def pyx12_valid(path: Path) -> tuple[bool, list[Any], list[list[str]]]:
    """pyx12 itself on an acknowledgment: full validation against its map, and its reader's errors."""
    ok = bool(pyx12.x12n_document.x12n_document(pyx12.params.params(), str(path), io.StringIO(), None, None))
    with open(path, encoding="latin-1") as fh:
        reader = pyx12.x12file.X12Reader(fh)
        segs = [[seg.get_seg_id()] + [seg.get_value(f"{i:02d}") or "" for i in range(1, len(seg) + 1)] for seg in reader]
        errors = list(reader.err_list)
        reader.cleanup()
    return ok, errors, segs


def payer_and_payee(payment: parsers.ClaimPayment) -> tuple[str, str]:
    """The key a re-emitted 835 is grouped by: payer id (N104 or REF*2U, else the N1*PR id) and payee NPI."""
    rem = payment.remittance
    return (rem.payer_id or (rem.payer.id if rem.payer else ""), rem.payee_npi)


def day_folder() -> str:
    from datetime import datetime

    return datetime.now(UTC).strftime("%Y/%m/%d")


def generate(path: Path, claims: int) -> None:
    spec = importlib.util.spec_from_file_location("bench_generate", REPO / "bench" / "generate.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    gen.generate("835", str(path), claims=claims, seed=5, claims_per_transaction=100)


@pytest.fixture(scope="module")
def big_835(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A generated 835: 4,000 claim payments in 40 transaction sets of 100."""
    path = tmp_path_factory.mktemp("big") / "remit-big.835"
    generate(path, 4000)
    return path.read_bytes()


# --------------------------------------------------------------- one batch: good and broken files
@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Good and broken files from three partners, and uploads in progress, through one `watch --once`."""
    base = tmp_path_factory.mktemp("batch")
    root = base / "root"
    for rel, source in {**GOOD, **BROKEN}.items():
        drop(root, rel, source.read_bytes())
    for rel in IGNORED:
        (root / "inbound" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "inbound" / rel).write_bytes(GOOD["blueriver/remit.835"].read_bytes())
    result = watch(root, f"sqlite:///{base}/store.db", "--once", "--interval", "0.3")
    return {"root": root, "db": base / "store.db", "result": result, "events": events(result.stderr), "base": base}


def test_batch_archives_good_files_and_quarantines_broken_ones(batch: dict[str, Any]) -> None:
    """Good files land once in archive/YYYY/MM/DD/<partner>/, broken ones in error/ with an error.json; exit 1 for the quarantine."""
    root, result = batch["root"], batch["result"]
    assert result.returncode == 1, result.stderr
    assert files_under(root / "archive") == sorted(f"{day_folder()}/{rel}" for rel in GOOD)
    assert files_under(root / "error") == sorted([*BROKEN, *(f"{rel}.error.json" for rel in BROKEN)])
    for rel, source in {**GOOD, **BROKEN}.items():
        where = root / "archive" / day_folder() / rel if rel in GOOD else root / "error" / rel
        assert where.read_bytes() == source.read_bytes()
    assert files_under(root / "work") == []
    assert files_under(root / "inbound") == sorted(r for r in IGNORED if not any(p.startswith(".") for p in r.split("/")))
    for rel in IGNORED:  # uploads in progress and dotfiles are never touched
        assert (root / "inbound" / rel).exists()
    assert sorted(p.name for p in root.iterdir()) == ["ack", "archive", "error", "inbound", "outbound", "work"]


def test_error_json_names_each_finding_with_its_position(batch: dict[str, Any]) -> None:
    """error.json lists the findings with code, message, segment and byte offset (checked against the bytes), and what was ingested."""
    root = batch["root"]
    bad = json.loads((root / "error" / "acme" / "claims-bad-counts.837.error.json").read_text())
    data = BROKEN["acme/claims-bad-counts.837"].read_bytes()
    by_code = {e["code"]: e for e in bad["errors"]}
    assert {"SE_COUNT_MISMATCH", "TRANSACTION_NOT_POSTABLE", "GE_CONTROL_MISMATCH"} <= set(by_code)
    se = by_code["SE_COUNT_MISMATCH"]
    assert (se["segment"], se["offset"], se["st02"]) == (27, data.find(b"SE*26*0801"), "0801")
    assert data[by_code["GE_CONTROL_MISMATCH"]["offset"] :].startswith(b"GE*2*1810")
    assert [(s["st02"], s["ingested"]) for s in bad["transaction_sets"]] == [("0801", False), ("0802", True)]
    assert bad["ingested"] == {"transaction_sets_ingested": 1, "claims": 1, "claim_payments": 0, "patient_payments": 0}
    assert bad["file"] == "acme/claims-bad-counts.837" and bad["sha256"] == sha(BROKEN["acme/claims-bad-counts.837"])
    assert bad["acknowledgments"] == ["ack/acme/claims-bad-counts.837.999"]
    truncated = json.loads((root / "error" / "blueriver" / "remit-truncated.835.error.json").read_text())
    cut = next(e for e in truncated["errors"] if e["code"] == "TRUNCATED_SEGMENT")
    raw = BROKEN["blueriver/remit-truncated.835"].read_bytes()
    assert raw[cut["offset"] :].startswith(b"CAS*CO*4") and cut["segment"] > 0
    assert truncated["ingested"]["claim_payments"] == 1  # ST 36140 is whole and was ingested; 36141 was not
    garbage = json.loads((root / "error" / "scan.pdf.error.json").read_text())
    assert [e["code"] for e in garbage["errors"]] == ["NOT_X12", "UNSUPPORTED_FILE"]
    assert garbage["errors"][0]["offset"] == 0 and garbage["ingested"]["transaction_sets_ingested"] == 0


def test_every_inbound_837_gets_a_999_that_pyx12_reads_back_as_valid(batch: dict[str, Any]) -> None:
    """ack/<partner>/<name>.999 for every 837 (pyx12's, or edirecon's for the 837D pyx12 has no map for), each valid for pyx12."""
    root = batch["root"]
    claims = sorted(rel for rel in [*GOOD, *BROKEN] if rel.endswith(".837"))
    assert files_under(root / "ack") == [f"{rel}.999" for rel in claims]
    for rel in claims:
        source = segments((GOOD.get(rel) or BROKEN[rel]).read_bytes())
        ok, errors, ack = pyx12_valid(root / "ack" / f"{rel}.999")
        assert ok and errors == [], rel
        gs = next(s for s in source if s[0] == "GS")
        assert next(s for s in ack if s[0] == "AK1")[1:3] == ["HC", gs[6]]
        verdicts = dict(zip([s[2] for s in ack if s[0] == "AK2"], [s[1] for s in ack if s[0] == "IK5"], strict=True))
        if rel in GOOD:
            assert verdicts == {s[2]: "A" for s in source if s[0] == "ST"}, rel
        else:
            assert verdicts == {"0801": "R", "0802": "A"}


def test_an_837_with_two_functional_groups_gets_one_999_per_group_and_a_ta1_when_asked(tmp_path: Path) -> None:
    """pyx12 answers a file with one 999 interchange holding one ST 999 per GS; ISA14 = 1 adds <name>.ta1 (accepted)."""
    text = GOOD["acme/claims.837"].read_text(encoding="latin-1")
    head, body = text.split("ST*837*0101", 1)
    body, _trailer = ("ST*837*0101" + body).split("GE*1*1101~", 1)
    second = body.replace("ST*837*0101", "ST*837*0201").replace("SE*47*0101", "SE*47*0201")
    gs2 = next(line for line in head.splitlines() if line.startswith("GS*")).replace("*1101*", "*1102*")
    two = head + body + "GE*1*1101~\n" + gs2 + "\n" + second + "GE*1*1102~\nIEA*2*000001101~\n"
    two = two.replace("*000001101*0*P*", "*000001101*1*P*")  # ISA14 = 1: a TA1 is requested
    root = tmp_path / "root"
    drop(root, "acme/two-groups.837", two.encode("latin-1"))
    done = watch(root, f"sqlite:///{tmp_path}/store.db", "--once", "--interval", "0.1")
    assert done.returncode == 0, done.stderr
    assert files_under(root / "ack") == ["acme/two-groups.837.999", "acme/two-groups.837.ta1"]
    ok, errors, ack = pyx12_valid(root / "ack" / "acme" / "two-groups.837.999")
    assert ok and errors == []
    assert [s[2] for s in ack if s[0] == "AK1"] == ["1101", "1102"] and [s[1] for s in ack if s[0] == "ST"] == ["999", "999"]
    assert [s[1] for s in ack if s[0] == "IK5"] == ["A", "A"]
    with open(root / "ack" / "acme" / "two-groups.837.ta1", encoding="latin-1") as fh:
        reader = pyx12.x12file.X12Reader(fh)
        ta1 = next(seg for seg in reader if seg.get_seg_id() == "TA1")
        assert (ta1.get_value("TA101"), ta1.get_value("TA104"), ta1.get_value("TA105")) == ("000001101", "A", "000")
        assert list(reader.err_list) == []


def test_outbound_manifest_lists_every_output_with_its_sha256(batch: dict[str, Any]) -> None:
    """outbound/manifest.json is written last and lists the run outputs and re-emitted 835s with matching SHA-256 and row counts."""
    out = batch["root"] / "outbound"
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["format_version"], manifest["as_of"]) == (1, AS_OF)
    listed = {f["path"]: f for f in manifest["files"]}
    assert sorted([*listed, "manifest.json"]) == files_under(out)
    assert set(RUN_OUTPUTS) <= set(listed)
    for path, entry in listed.items():
        assert entry["sha256"] == sha(out / path) and entry["bytes"] == (out / path).stat().st_size
        if path.endswith(".csv"):
            assert entry["rows"] == len((out / path).read_text().splitlines()) - 1
        if path.endswith(".jsonl"):
            assert entry["rows"] == len((out / path).read_text().splitlines())
    newest = max((out / p).stat().st_mtime_ns for p in listed)
    assert (out / "manifest.json").stat().st_mtime_ns >= newest


def test_outbound_equals_edirecon_run_on_the_same_files(batch: dict[str, Any]) -> None:
    """The outputs in outbound/ are byte for byte those of `edirecon run` over the same files (same names)."""
    base = batch["base"]
    tree = base / "as-run"
    for rel, source in {**GOOD, **BROKEN}.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, tree / rel)
    done = subprocess.run(
        [sys.executable, "-m", "edirecon", "run", ".", "--db", f"sqlite:///{base}/run.db", "--out", str(base / "run-out"), "--as-of", AS_OF],
        env=ENV,
        capture_output=True,
        cwd=tree,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    for name in RUN_OUTPUTS:
        assert (batch["root"] / "outbound" / name).read_bytes() == (base / "run-out" / name).read_bytes(), name


def test_reemitted_835s_parse_cleanly_with_the_clean_claim_payments(batch: dict[str, Any]) -> None:
    """One 835 per payer and payee in outbound/835/: edirecon reads it without error findings, pyx12 without envelope errors,
    and it holds exactly the claim payments of the clean, ingested transaction sets."""
    folder = batch["root"] / "outbound" / "835"
    expected: Counter[tuple[str, str]] = Counter()
    for rel, source in [*GOOD.items(), *BROKEN.items()]:
        if rel.endswith(".835"):  # remit-truncated.835: only its whole first set is trusted (and ingested)
            expected.update(payer_and_payee(r) for r in parsers.parse_file(source)[0] if isinstance(r, parsers.ClaimPayment) and r.trusted)
    found: Counter[tuple[str, str]] = Counter()
    emitted = sorted(folder.glob("*.835"))
    assert len(emitted) == len(expected)
    for path in emitted:
        records, summary = parsers.parse_file(path)
        assert not summary.has_errors, [str(f) for f in summary.findings]
        keys = {payer_and_payee(r) for r in records if isinstance(r, parsers.ClaimPayment)}
        assert len(keys) == 1
        found[keys.pop()] += sum(isinstance(r, parsers.ClaimPayment) for r in records)
        with open(path, encoding="latin-1") as fh:
            reader = pyx12.x12file.X12Reader(fh)
            list(reader)
            assert list(reader.err_list) == []
    assert found == expected


def test_one_log_event_per_file_and_step_without_patient_data(batch: dict[str, Any]) -> None:
    """received, claimed, ingested, acknowledged (837s), then archived or quarantined — with name, partner and SHA-256, no patient data."""
    evs = batch["events"]
    assert all(e["component"] == "watch" for e in evs)
    for rel, source in {**GOOD, **BROKEN}.items():
        steps = [e["event"] for e in evs if e.get("file") == rel]
        final = "archived" if rel in GOOD else "quarantined"
        assert steps == ["received", "claimed", "ingested", *(["acknowledged"] if rel.endswith(".837") else []), final], rel
        claimed = next(e for e in evs if e.get("file") == rel and e["event"] == "claimed")
        assert claimed["sha256"] == sha(source) and claimed["partner"] == (rel.split("/")[0] if "/" in rel else "")
    ingested = next(e for e in evs if e.get("file") == "blueriver/remit-1.835" and e["event"] == "ingested")
    assert (ingested["claim_payments"], ingested["transaction_sets_ingested"]) == (len(parsers.parse_file(GOOD["blueriver/remit-1.835"])[0]), 1)
    assert [e["event"] for e in evs][-1] == "published"
    for private in PRIVATE:
        assert private not in batch["result"].stderr


def test_store_records_each_claimed_file(batch: dict[str, Any]) -> None:
    """inbound_files holds one row per file with its hash, interchange ids and final state."""
    with sqlite3.connect(batch["db"]) as conn:
        rows = {r[0]: r[1:] for r in conn.execute("select original_name, partner, sha256, isa06, isa13, state, disposition from inbound_files")}
    assert sorted(rows) == sorted([*GOOD, *BROKEN])
    assert rows["acme/claims.837"] == ("acme", sha(GOOD["acme/claims.837"]), "RFM00123", "000001101", "archived", "ingest")
    assert rows["scan.pdf"][4:] == ("quarantined", "ingest")


# ------------------------------------------------------------------------------------- arrival
def test_a_file_written_slowly_is_not_read_before_it_is_complete(tmp_path: Path, big_835: bytes) -> None:
    """A partner writing in small chunks (no .part, no marker): the watcher waits until size and mtime stand still."""
    root = tmp_path / "root"
    proc = start(root, f"sqlite:///{tmp_path}/store.db", "--interval", "0.6", "--create")  # a write every 0.05 s
    target = root / "inbound" / "slow" / "remit-big.835"
    cut = big_835.find(b"~\nST*", 300_000) + 2  # whole transaction sets, then the trailers
    isa, gs = segments(big_835[:300])[:2]
    body = big_835[:cut]
    sets = body.count(b"~\nST*")
    whole = body + f"GE*{sets}*{gs[6]}~\nIEA*1*{isa[13]}~\n".encode()
    time.sleep(1.0)  # the watcher is up and polling
    target.parent.mkdir(parents=True)
    with open(target, "wb") as fh:
        for i in range(0, len(whole), 10_000):
            fh.write(whole[i : i + 10_000])
            fh.flush()
            time.sleep(0.05)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not files_under(root / "archive") and not files_under(root / "error"):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert files_under(root / "error") == [] and files_under(root / "archive") == [f"{day_folder()}/slow/remit-big.835"]
    received = next(e for e in events(err) if e["event"] == "received")
    assert received["size"] == len(whole) and received["released_by"] == "stable"
    assert counts(tmp_path / "store.db", "remittances", "claim_payments") == {"remittances": sets, "claim_payments": whole.count(b"~\nCLP*")}


def test_a_done_marker_releases_a_file_at_once(tmp_path: Path) -> None:
    """With a 30 s interval, the file with <name>.done is taken at the first poll; the one without waits; the marker is removed."""
    root = tmp_path / "root"
    drop(root, "acme/claims.837", GOOD["acme/claims.837"].read_bytes())
    (root / "inbound" / "acme" / "claims.837.done").write_bytes(b"")
    drop(root, "acme/claims-duplicate-payment.837", GOOD["acme/claims-duplicate-payment.837"].read_bytes())
    began = time.monotonic()
    proc = start(root, f"sqlite:///{tmp_path}/store.db", "--interval", "30")
    while time.monotonic() - began < 20 and not files_under(root / "archive"):
        time.sleep(0.1)
    taken = time.monotonic() - began
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert files_under(root / "archive") == [f"{day_folder()}/acme/claims.837"] and taken < 15
    assert files_under(root / "inbound") == ["acme/claims-duplicate-payment.837"]
    assert next(e for e in events(err) if e["event"] == "received")["released_by"] == "marker"
    assert (root / "ack" / "acme" / "claims.837.999").exists()


# --------------------------------------------------------------------------------- exactly once
def test_two_watchers_on_one_root_ingest_each_file_exactly_once(tmp_path: Path) -> None:
    """Two `watch --once` started together on one ROOT and store: every file claimed, ingested and archived once."""
    root = tmp_path / "root"
    samples = sorted(p for p in SAMPLE_EDI.rglob("*") if p.suffix in (".837", ".835", ".csv") and p.parent.name != "broken-file")
    dropped = {f"{p.parent.name}/{p.name}": p for p in samples}
    for rel, source in dropped.items():
        drop(root, rel, source.read_bytes())
    db = f"sqlite:///{tmp_path}/store.db"
    procs = [start(root, db, "--once", "--interval", "0.5") for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _out, err in results]
    claimed = [[e["file"] for e in events(err) if e["event"] == "claimed"] for _out, err in results]
    assert sorted(claimed[0] + claimed[1]) == sorted(dropped)  # no file claimed by both
    assert claimed[0] and claimed[1]  # both really competed for the same files
    assert files_under(root / "archive") == sorted(f"{day_folder()}/{rel}" for rel in dropped)
    assert files_under(root / "inbound") == [] and files_under(root / "work") == []
    # the same store as one `edirecon run` over the same files
    tree = tmp_path / "tree"
    for rel, source in dropped.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, tree / rel)
    done = subprocess.run(
        [sys.executable, "-m", "edirecon", "run", ".", "--db", f"sqlite:///{tmp_path}/run.db", "--out", str(tmp_path / "run-out"), "--as-of", AS_OF],
        env=ENV,
        capture_output=True,
        cwd=tree,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    tables = ("files", "transactions", "claims", "claim_lines", "remittances", "claim_payments", "payment_lines", "patient_payments", "provider_adjustments")
    assert counts(tmp_path / "store.db", *tables) == counts(tmp_path / "run.db", *tables)
    with sqlite3.connect(tmp_path / "store.db") as conn:
        assert conn.execute("select state, count(*) from inbound_files group by state").fetchall() == [("archived", len(dropped))]
    assert (root / "outbound" / "refund_requests.csv").read_bytes() == (tmp_path / "run-out" / "refund_requests.csv").read_bytes()


def _claim_all(root: str, names: list[str], k: int, barrier: Any, out: Any) -> None:
    from edirecon.engine.dropfolder.layout import Layout, claim, utcnow

    layout = Layout(Path(root))
    barrier.wait()
    # first a file of its own (none other tries it), then all four meet again: every process is
    # running before the race, however loaded the machine (one process alone had claimed all 300
    # files before the others were scheduled, even yielding the core after each claim)
    won = [c.original for c in [claim(layout, Path(names[k]), "stable", utcnow())] if c is not None]
    barrier.wait()
    for name in names:
        if (c := claim(layout, Path(name), "stable", utcnow())) is not None:
            won.append(c.original)
        time.sleep(0.001)  # give up the core after each claim, so that the others take turns
    out.put(won)


def test_claiming_is_atomic_when_four_processes_race_for_the_same_files(tmp_path: Path) -> None:
    """Four processes, each having claimed one file of its own, are released together to claim the
    same 300 files in the same order: each file is claimed exactly once."""
    import multiprocessing

    from edirecon.engine.dropfolder.layout import Layout

    layout = Layout(tmp_path / "root")
    layout.create()
    names = [f"p{i % 3}/f{i:03d}.837" for i in range(300)]
    for name in names:
        (layout.inbound / name).parent.mkdir(exist_ok=True)
        (layout.inbound / name).write_bytes(name.encode())
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_claim_all, args=(str(layout.root), names, k, barrier, out)) for k in range(4)]
    for proc in procs:
        proc.start()
    won = [out.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    assert sorted(name for names_won in won for name in names_won) == sorted(names)
    assert files_under(layout.inbound) == []
    # each file once in work/, under its name (plus ~N when a lost race had reserved the name)
    work = files_under(layout.work)
    assert sorted(re.sub(r"~\d+$", "", w) for w in work) == sorted(n.replace("/", "__") for n in names)
    assert sorted((layout.work / w).read_bytes().decode() for w in work) == sorted(names)


def test_sigkill_mid_file_then_restart_completes_it_without_duplicates(tmp_path: Path, big_835: bytes) -> None:
    """SIGKILL while a 40-set 835 is being ingested: whole transaction sets only; the next start resumes it from work/ and
    ends with the store and outputs of an uninterrupted watcher."""
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    for root in (clean, killed):
        drop(root, "payer/remit-big.835", big_835)
    done = watch(clean, f"sqlite:///{tmp_path}/clean.db", "--once", "--interval", "0.2")
    assert done.returncode == 0, done.stderr
    db = tmp_path / "killed.db"
    proc = start(killed, f"sqlite:///{db}", "--once", "--interval", "0.2")
    ingested = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(db, timeout=0.1) as conn:
                ingested = conn.execute("select count(*) from remittances").fetchone()[0]
        except sqlite3.Error:
            pass
        if ingested >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the watcher finished before it could be killed"
    partial = counts(db, "remittances", "claim_payments")
    assert 3 <= partial["remittances"] < 40 and partial["claim_payments"] == 100 * partial["remittances"]  # no half set
    assert files_under(killed / "work") == ["payer__remit-big.835"] and files_under(killed / "archive") == []
    resumed = watch(killed, f"sqlite:///{db}", "--once", "--interval", "0.2")
    assert resumed.returncode == 0, resumed.stderr
    assert [e["event"] for e in events(resumed.stderr) if e.get("file") == "payer/remit-big.835"][0] == "resumed"
    assert files_under(killed / "work") == [] and files_under(killed / "archive") == [f"{day_folder()}/payer/remit-big.835"]
    tables = ("files", "transactions", "remittances", "claim_payments", "payment_lines", "adjustments", "provider_adjustments", "inbound_files")
    assert counts(db, *tables) == counts(tmp_path / "clean.db", *tables)
    for name in RUN_OUTPUTS:
        assert (killed / "outbound" / name).read_bytes() == (clean / "outbound" / name).read_bytes(), name

    def body(root: Path) -> list[list[str]]:  # the transaction sets, without the fresh envelope
        (path,) = (root / "outbound" / "835").glob("*.835")
        return [s for s in segments(path.read_bytes()) if s[0] not in ("ISA", "GS", "GE", "IEA")]

    assert body(killed) == body(clean) and sum(s[0] == "CLP" for s in body(killed)) == 4000


def test_sigterm_finishes_the_file_in_hand_then_exits(tmp_path: Path, big_835: bytes) -> None:
    """SIGTERM during a file: that file is finished and archived, outputs published, nothing else claimed, exit 0."""
    root = tmp_path / "root"
    drop(root, "payer/a-remit-big.835", big_835)
    drop(root, "payer/z-later.835", GOOD["blueriver/remit.835"].read_bytes())
    db = tmp_path / "store.db"
    proc = start(root, f"sqlite:///{db}", "--interval", "0.2")
    deadline = time.monotonic() + 60
    signalled = False
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(db, timeout=0.1) as conn:
                if conn.execute("select count(*) from remittances").fetchone()[0] >= 2:
                    proc.send_signal(signal.SIGTERM)
                    signalled = True
                    break
        except sqlite3.Error:
            pass
        time.sleep(0.01)
    _out, err = proc.communicate(timeout=60)
    assert signalled and proc.returncode == 0, err
    assert files_under(root / "archive") == [f"{day_folder()}/payer/a-remit-big.835"]
    assert files_under(root / "inbound") == ["payer/z-later.835"] and files_under(root / "work") == []
    assert counts(db, "remittances", "claim_payments") == {"remittances": 40, "claim_payments": 4000}
    assert json.loads((root / "outbound" / "manifest.json").read_text())["files"]
    assert [e["event"] for e in events(err)][-1] == "published"


# ----------------------------------------------------------------------------------- duplicates
def test_the_same_file_dropped_twice_is_ingested_once(tmp_path: Path) -> None:
    """Same bytes again (same name or another) and the same sender + ISA13 with other bytes: archived, reported, not ingested."""
    root, db = tmp_path / "root", f"sqlite:///{tmp_path}/store.db"
    remit = GOOD["blueriver/remit.835"].read_bytes()
    claims = GOOD["acme/claims.837"].read_bytes()
    drop(root, "blueriver/remit.835", remit)
    drop(root, "acme/claims.837", claims)
    first = watch(root, db, "--once", "--interval", "0.2")
    assert first.returncode == 0, first.stderr
    before = counts(tmp_path / "store.db", "files", "claims", "claim_payments")
    drop(root, "blueriver/remit.835", remit)
    drop(root, "blueriver/remit-copy.835", remit)
    resent = claims.replace(b"N3*42 OAK STREET~", b"N3*42 OAK STREET APT 1~")  # other bytes, same ISA06 + ISA13
    assert resent != claims
    drop(root, "acme/claims-resent.837", resent)
    second = watch(root, db, "--once", "--interval", "0.2")
    assert second.returncode == 0, second.stderr
    assert counts(tmp_path / "store.db", "files", "claims", "claim_payments") == before == {"files": 2, "claims": 2, "claim_payments": 2}
    assert files_under(root / "archive") == sorted(
        f"{day_folder()}/{r}" for r in ("blueriver/remit.835", "blueriver/remit.835~2", "blueriver/remit-copy.835", "acme/claims.837", "acme/claims-resent.837")
    )
    claimed = {e["file"]: e for e in events(second.stderr) if e["event"] == "claimed"}
    assert {f: e["disposition"] for f, e in claimed.items()} == dict.fromkeys(
        ["blueriver/remit.835", "blueriver/remit-copy.835", "acme/claims-resent.837"], "duplicate"
    )
    assert "ISA13=000001101" in claimed["acme/claims-resent.837"]["duplicate"]
    exceptions = (root / "outbound" / "exceptions.csv").read_text()
    for rel in claimed:
        assert f"DUPLICATE_FILE,warning,{rel}," in exceptions
    assert len(list((root / "outbound" / "835").glob("*.835"))) == 1  # nothing re-emitted twice


def test_the_duplicate_window_is_in_days(tmp_path: Path) -> None:
    """Sender + ISA13 seen more than --duplicate-window days ago is no longer a duplicate; within it, it is."""
    root, db = tmp_path / "root", f"sqlite:///{tmp_path}/store.db"
    claims = GOOD["acme/claims.837"].read_bytes()
    drop(root, "acme/claims.837", claims)
    assert watch(root, db, "--once", "--interval", "0.2").returncode == 0
    with sqlite3.connect(tmp_path / "store.db") as conn:
        conn.execute("update inbound_files set received_at = datetime(received_at, '-40 days')")
    drop(root, "acme/claims-resent-a.837", claims.replace(b"N3*42 OAK STREET~", b"N3*42 OAK STREET APT 1~"))
    drop(root, "acme/claims-resent-b.837", claims.replace(b"N3*42 OAK STREET~", b"N3*42 OAK STREET APT 2~"))
    second = watch(root, db, "--once", "--interval", "0.2", "--duplicate-window", "30")
    assert second.returncode == 0, second.stderr
    claimed = {e["file"]: e["disposition"] for e in events(second.stderr) if e["event"] == "claimed"}
    # 40 days after the first, beyond the window: ingested; the second resend is within the window of the first resend
    assert claimed == {"acme/claims-resent-a.837": "ingest", "acme/claims-resent-b.837": "duplicate"}
    assert counts(tmp_path / "store.db", "files")["files"] == 2


# ------------------------------------------------------------------------------ locks and errors
def test_a_work_file_locked_by_a_live_watcher_is_left_alone(tmp_path: Path) -> None:
    """At start-up only work/ files whose lock is free are resumed; one held by a live process is not touched."""
    root, db = tmp_path / "root", f"sqlite:///{tmp_path}/store.db"
    (root / "work").mkdir(parents=True)
    shutil.copy(GOOD["blueriver/remit.835"], root / "work" / "blueriver__remit.835")
    lock = os.open(root / "work" / ".blueriver__remit.835.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    held = watch(root, db, "--once", "--interval", "0.1")
    assert held.returncode == 0 and held.stderr == ""
    assert files_under(root / "work") == ["blueriver__remit.835"]
    os.close(lock)
    free = watch(root, db, "--once", "--interval", "0.1")
    assert free.returncode == 0, free.stderr
    assert files_under(root / "work") == [] and files_under(root / "archive") == [f"{day_folder()}/blueriver/remit.835"]
    assert [e["event"] for e in events(free.stderr) if e.get("file") == "blueriver/remit.835"][0] == "received"


def test_usage_and_store_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    """A bad --as-of, a ROOT that is a file or does not exist, an unusable or unreachable --db: exit 2 with one line, no traceback."""
    a_file = tmp_path / "plain"
    a_file.write_text("x")
    (tmp_path / "r").mkdir()
    cases = [
        (
            ["watch", str(tmp_path / "inbond"), "--once", "--db", f"sqlite:///{tmp_path}/s.db"],
            f"edirecon: {tmp_path / 'inbond'}: no such folder (give --create to create the drop folders there)",
        ),
        (["watch", str(tmp_path / "r"), "--as-of", "27/11/2026", "--once"], "edirecon: --as-of '27/11/2026' is not a date (YYYY-MM-DD)"),
        (["watch", str(a_file), "--once", "--db", f"sqlite:///{tmp_path}/s.db"], f"edirecon: {a_file}: is not a folder"),
        (["watch", str(tmp_path / "r"), "--once", "--db", "nosuchdb://x"], "edirecon: --db 'nosuchdb://x' is not a usable database URL"),
        (
            ["watch", str(tmp_path / "r"), "--once", "--db", "postgresql://postgres@127.0.0.1:1/none"],
            "edirecon: the store at postgresql://postgres@127.0.0.1:1/none cannot be opened",
        ),
    ]
    for args, message in cases:
        done = CliRunner().invoke(app, args)
        assert done.exit_code == 2 and isinstance(done.exception, SystemExit), (args, done.output)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(message), done.stderr
        assert "Traceback" not in done.output


def test_a_mistyped_root_creates_nothing_unless_create_is_given(tmp_path: Path) -> None:
    """Regression: a ROOT that does not exist was created silently (exit 0); now exit 2 and nothing made, and --create makes the layout."""
    db = f"sqlite:///{tmp_path}/store.db"
    typo = watch(tmp_path / "srv" / "inbond", db, "--once", "--interval", "0.1")
    assert typo.returncode == 2 and typo.stderr == f"edirecon: {tmp_path / 'srv' / 'inbond'}: no such folder (give --create to create the drop folders there)\n"
    assert os.listdir(tmp_path) == []  # neither the tree nor the store
    made = watch(tmp_path / "srv" / "edi", db, "--once", "--interval", "0.1", "--create")
    assert made.returncode == 0, made.stderr
    assert sorted(p.name for p in (tmp_path / "srv" / "edi").iterdir()) == ["ack", "archive", "error", "inbound", "outbound", "work"]


@pytest.mark.slow
@pytest.mark.postgres
def test_watch_on_postgresql_publishes_what_sqlite_publishes(tmp_path: Path, pg_url: str) -> None:
    """The same drops give byte-identical run outputs with a PostgreSQL store and with SQLite."""
    outputs = {}
    for name, db in (("sqlite", f"sqlite:///{tmp_path}/s.db"), ("pg", pg_url)):
        root = tmp_path / name
        for rel in ("acme/claims-duplicate-payment.837", "blueriver/remit-1.835", "blueriver/remit-2.835"):
            drop(root, rel, GOOD[rel].read_bytes())
        done = watch(root, db, "--once", "--interval", "0.2")
        assert done.returncode == 0, done.stderr
        outputs[name] = {n: (root / "outbound" / n).read_bytes() for n in RUN_OUTPUTS}
        assert b"DUPLICATE_PAYMENT" in outputs[name]["refund_requests.csv"]
    assert outputs["sqlite"] == outputs["pg"]


def test_as_of_default_is_today(tmp_path: Path) -> None:
    """Without --as-of, the outputs are made as of the day of the batch."""
    root = tmp_path / "root"
    drop(root, "blueriver/remit.835", GOOD["blueriver/remit.835"].read_bytes())
    cmd = [sys.executable, "-m", "edirecon", "watch", str(root), "--db", f"sqlite:///{tmp_path}/s.db", "--once", "--interval", "0.1"]
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads((root / "outbound" / "manifest.json").read_text())["as_of"] == date.today().isoformat()
