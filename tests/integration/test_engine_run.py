"""`edirecon run` as a whole: idempotent, order-independent, safe to kill, and its CLI."""

from __future__ import annotations

import importlib.util
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, SAMPLE_EDI
from goldens import normalise_outputs
from typer.testing import CliRunner

from edirecon.cli import app
from edirecon.engine.config import Config
from edirecon.engine.run import input_files, run

AS_OF = date(2026, 11, 27)


def _outputs(out: Path) -> dict[str, bytes]:
    """Every output of a run, the clock taken out (the manifest's time and batch, the time of each
    refund's last action: ``goldens.normalise_outputs``)."""
    return normalise_outputs({p.name: p.read_bytes() for p in sorted(out.iterdir()) if not p.name.startswith(".")})


def test_running_again_changes_nothing(tmp_path: Path, in_repo: Path) -> None:
    """A second run over the same inputs and store writes byte-identical outputs."""
    db = f"sqlite:///{tmp_path}/store.db"
    run([Path("sample_edi")], db, tmp_path / "first", AS_OF, Config())
    second = run([Path("sample_edi")], db, tmp_path / "second", AS_OF, Config())
    assert second.report.files_ingested == 0 and second.report.files_skipped == second.report.files_seen > 20
    assert _outputs(tmp_path / "first") == _outputs(tmp_path / "second")


def test_reordered_inputs_give_identical_outputs(tmp_path: Path, in_repo: Path) -> None:
    """Ingesting the same files in reverse order into a fresh store gives the same ids, rows and bytes."""
    files = [p for p, _ in input_files([Path("sample_edi")])]
    run(files, f"sqlite:///{tmp_path}/a.db", tmp_path / "a", AS_OF, Config())
    run(list(reversed(files)), f"sqlite:///{tmp_path}/b.db", tmp_path / "b", AS_OF, Config())
    assert _outputs(tmp_path / "a") == _outputs(tmp_path / "b")


def test_parallel_ingestion_gives_the_outputs_of_one_process(tmp_path: Path, in_repo: Path) -> None:
    """Files ingested by several processes side by side (queueing for SQLite's write lock) give
    byte-identical outputs to one process ingesting them in turn.  (Left out: the fixture where one
    remittance comes in two files, whose kept copy is the first ingested, as docs/commands.md says.)"""
    inputs = [
        Path("sample_edi"),
        *sorted(p for p in (REPO / "tests" / "fixtures" / "engine").iterdir() if p.is_dir() and p.name != "duplicate-file-and-remittance"),
    ]
    one = run(inputs, f"sqlite:///{tmp_path}/one.db", tmp_path / "one", AS_OF, Config(), workers=1)
    many = run(inputs, f"sqlite:///{tmp_path}/many.db", tmp_path / "many", AS_OF, Config(), workers=3)
    assert many.report == one.report and one.report.files_ingested > 40
    assert _outputs(tmp_path / "one") == _outputs(tmp_path / "many")
    tables = ("claims", "claim_lines", "claim_payments", "payment_lines", "adjustments", "provider_adjustments", "remittances")
    for table in tables:
        count = f"SELECT COUNT(*) FROM {table}"
        assert sqlite3.connect(tmp_path / "one.db").execute(count).fetchone() == sqlite3.connect(tmp_path / "many.db").execute(count).fetchone()


def test_a_file_shared_out_in_parts_gives_the_outputs_of_one_process(tmp_path: Path, monkeypatch: Any) -> None:
    """Large X12 files are ingested by several processes, every n-th transaction set each: the
    store and the outputs are those of one process reading the files whole."""
    import edirecon.engine.run as run_module

    data = tmp_path / "in"
    data.mkdir()
    _generate(data)  # 30 transaction sets in each file
    one = run([data], f"sqlite:///{tmp_path}/one.db", tmp_path / "one", AS_OF, Config(), workers=1)
    monkeypatch.setattr(run_module, "SPLIT_BYTES", 0)
    parts = run([data], f"sqlite:///{tmp_path}/parts.db", tmp_path / "parts", AS_OF, Config(), workers=3)
    assert parts.report == one.report and one.report.claims == 3000 and one.report.files_ingested == 2
    assert _outputs(tmp_path / "one") == _outputs(tmp_path / "parts")
    with sqlite3.connect(tmp_path / "parts.db") as db:
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT ordinal) FROM transactions").fetchone() == (60, 30)
        assert db.execute("SELECT COUNT(*) FROM files WHERE complete").fetchone() == (2,)
    again = run([data], f"sqlite:///{tmp_path}/parts.db", tmp_path / "again", AS_OF, Config(), workers=3)
    assert again.report.files_skipped == 2 and _outputs(tmp_path / "again") == _outputs(tmp_path / "one")


def test_the_processes_parse_while_the_files_are_still_being_recorded(tmp_path: Path, in_repo: Path, monkeypatch: Any) -> None:
    """The ingest processes take the largest file as soon as it is recorded, not once every file
    is: recording the last file here waits until a process has started on the first (before,
    the processes started only after all were recorded, and the wait ran out)."""
    from edirecon.engine.ingest.ingestor import Ingestor

    started = tmp_path / "started"
    recorded: list[str] = []
    begin, ingest_part = Ingestor.begin, Ingestor.ingest_part

    def recording(self: Ingestor, path: Path, name: str | None = None) -> Any:
        if recorded:  # every file after the first: a process has started on the first
            deadline = time.monotonic() + 20
            while not started.exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            assert started.exists(), f"no process had started on {recorded[0]} while {name} was recorded"
        recorded.append(str(name))
        return begin(self, path, name)

    def ingesting(self: Ingestor, task: Any) -> None:
        started.touch()  # in the pool's process (forked with these patches)
        ingest_part(self, task)

    monkeypatch.setattr(Ingestor, "begin", recording)
    monkeypatch.setattr(Ingestor, "ingest_part", ingesting)
    files = [p for p, _ in input_files([Path("sample_edi")])]
    result = run(files, f"sqlite:///{tmp_path}/s.db", tmp_path / "out", AS_OF, Config(), workers=2)
    largest = max(files, key=lambda p: p.stat().st_size)
    assert recorded[0] == str(largest) and len(recorded) == len(files) > 20
    assert result.report.files_ingested == len(files)
    one = run(files, f"sqlite:///{tmp_path}/one.db", tmp_path / "one", AS_OF, Config(), workers=1)
    assert one.report == result.report
    assert _outputs(tmp_path / "out") == _outputs(tmp_path / "one")


def test_identified_on_is_kept_on_later_runs(tmp_path: Path, in_repo: Path) -> None:
    """A refund first identified on one day keeps that day (and its due date) when found again later."""
    db = f"sqlite:///{tmp_path}/store.db"
    first = run([Path("sample_edi/duplicate-payment")], db, tmp_path / "1", date(2026, 11, 1), Config())
    later = run([Path("sample_edi")], db, tmp_path / "2", date(2026, 11, 27), Config())
    (refund,) = first.outputs["refund_requests"]
    again = next(r for r in later.outputs["refund_requests"] if r["refund_id"] == refund["refund_id"])
    assert again["identified_on"] == date(2026, 11, 1) and again["due_by"] == date(2026, 12, 31)
    new = [r for r in later.outputs["refund_requests"] if r["refund_id"] != refund["refund_id"]]
    assert new and all(r["identified_on"] == date(2026, 11, 27) for r in new)


def test_same_outputs_on_postgresql_and_sqlite(tmp_path: Path, in_repo: Path, pg_url: str) -> None:
    """The whole sample set gives byte-identical outputs on PostgreSQL and on SQLite."""
    run([Path("sample_edi")], f"sqlite:///{tmp_path}/s.db", tmp_path / "sqlite", AS_OF, Config())
    run([Path("sample_edi")], pg_url, tmp_path / "pg", AS_OF, Config())
    assert _outputs(tmp_path / "sqlite") == _outputs(tmp_path / "pg")


def _generate(folder: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_generate", REPO / "bench" / "generate.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    sys.modules["bench_generate"] = gen
    spec.loader.exec_module(gen)
    gen.generate("837p", str(folder / "claims.837"), claims=3000, seed=5, claims_per_transaction=100)
    gen.generate("835", str(folder / "remit.835"), claims=3000, seed=5, claims_per_transaction=100, duplicates=3, overpayments=3)


@pytest.mark.slow
def test_killed_run_then_new_run_equals_uninterrupted_run(tmp_path: Path) -> None:
    """SIGKILL in the middle of ingesting, then a new run: exactly the outputs of an uninterrupted run."""
    data = tmp_path / "in"
    data.mkdir()
    _generate(data)
    cmd = [sys.executable, "-m", "edirecon", "run", str(data), "--as-of", "2026-11-27"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    clean = subprocess.run([*cmd, "--db", f"sqlite:///{tmp_path}/clean.db", "--out", str(tmp_path / "clean")], env=env, capture_output=True, timeout=600)
    assert clean.returncode == 0, clean.stderr
    killed_db = tmp_path / "killed.db"
    proc = subprocess.Popen(
        [*cmd, "--db", f"sqlite:///{killed_db}", "--out", str(tmp_path / "killed")], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    ingested = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(killed_db, timeout=0.1) as conn:
                ingested = conn.execute("select count(*) from transactions").fetchone()[0]
        except sqlite3.Error:
            pass
        if ingested >= 5:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    with sqlite3.connect(killed_db) as conn:
        partial = conn.execute("select count(*) from transactions").fetchone()[0]
    time.sleep(1)  # the pool processes died with the run: nothing more arrives
    with sqlite3.connect(killed_db) as conn:
        assert conn.execute("select count(*) from transactions").fetchone()[0] == partial
    assert 5 <= partial < 60  # killed in the middle: some transaction sets in, not all
    resumed = subprocess.run([*cmd, "--db", f"sqlite:///{killed_db}", "--out", str(tmp_path / "killed")], env=env, capture_output=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert _outputs(tmp_path / "killed") == _outputs(tmp_path / "clean")


def test_run_cli_prints_the_summary_and_writes_outputs(tmp_path: Path, in_repo: Path) -> None:
    """`edirecon run sample_edi/` exits 0, prints the summary table and writes every output file."""
    result = CliRunner().invoke(app, ["run", "sample_edi", "--db", f"sqlite:///{tmp_path}/s.db", "--out", str(tmp_path / "out"), "--as-of", "2026-11-27"])
    assert result.exit_code == 0, result.output
    assert "refunds DUPLICATE_PAYMENT" in result.stdout and "outputs written to" in result.stdout
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == sorted(
        [
            *(f"{n}.{ext}" for n in ("refund_requests", "recoupments", "credit_balances", "exceptions", "workflow") for ext in ("csv", "jsonl")),
            "summary.json",
            "manifest.json",
        ]
    )
    header = (tmp_path / "out" / "refund_requests.csv").read_text().splitlines()[0]
    assert (
        header
        == "refund_id,reason,payee_type,payer_id,payer_name,patient_control_number,payer_claim_control_number,billing_provider_npi,patient_name,member_id,service_date,amount,identified_on,due_by,status,evidence"
    )


def test_run_cli_usage_errors(tmp_path: Path) -> None:
    """A bad --as-of, a missing input or a broken config file exit 2 with a clear message."""
    runner = CliRunner()
    bad_day = runner.invoke(app, ["run", str(SAMPLE_EDI), "--as-of", "27/11/2026", "--db", f"sqlite:///{tmp_path}/s.db"])
    assert bad_day.exit_code == 2 and "--as-of '27/11/2026' is not a date" in bad_day.stderr
    missing = runner.invoke(app, ["run", str(tmp_path / "nope"), "--db", f"sqlite:///{tmp_path}/s.db"])
    assert missing.exit_code == 2 and "no such file or folder" in missing.stderr
    cfg = tmp_path / "c.toml"
    cfg.write_text("payer_refund_days = 'soon'\nunknown = 1\n")
    broken = runner.invoke(app, ["run", str(SAMPLE_EDI), "--config", str(cfg), "--db", f"sqlite:///{tmp_path}/s.db"])
    assert broken.exit_code == 2 and "unknown setting(s) unknown" in broken.stderr


def test_unreachable_or_malformed_store_is_a_clear_message(tmp_path: Path) -> None:
    """A --db that cannot be opened or parsed exits 2 with one clear line, never a traceback."""
    runner = CliRunner()
    down = runner.invoke(app, ["run", str(SAMPLE_EDI / "clean-payment"), "--db", "postgresql://postgres@127.0.0.1:1/none", "--out", str(tmp_path / "o")])
    assert down.exit_code == 2 and down.stderr.startswith("edirecon: the store at postgresql://postgres@127.0.0.1:1/none cannot be opened: ")
    assert down.stderr.count("\n") == 1
    assert "Traceback" not in down.stderr + down.stdout
    bad = runner.invoke(app, ["run", str(SAMPLE_EDI / "clean-payment"), "--db", "nosuchdb://x", "--out", str(tmp_path / "o")])
    assert bad.exit_code == 2 and "is not a usable database URL" in bad.stderr
