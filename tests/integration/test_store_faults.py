"""Issue 13: a store, a database URL or an output folder that cannot be used ends in one line on
stderr and exit 2, never a Python traceback, never a password, and the store is left as it was.

Every command that takes ``--db`` is run (typer's CliRunner, in a fresh working folder) against
every fault it can meet (``watch --once`` with a remittance dropped in its inbound/).  The store the faults start from is made by ``edirecon run`` on
``sample_edi/duplicate-payment`` (Medicare paid RFM2602001 twice: one refund), so that the
workflow commands have a refund to sync.  A read-only SQLite store is opened with SQLite's own
``?mode=ro`` URI (the tests run as root, for whom a chmod-read-only file is still writable); an
unreachable PostgreSQL is a closed port on 127.0.0.1; no other host is ever contacted.
"""

from __future__ import annotations

import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, SAMPLE_EDI
from typer.testing import CliRunner

from edirecon.cli import app

DUPLICATE = SAMPLE_EDI / "duplicate-payment"
PASSWORD = "S3cr3t"
AS_OF = "2026-11-27"
NO_SUCH_REFUND = "RF-0000000000000000"

#: every command with --db, as run against a fault (``{db}`` and ``{out}`` filled in)
COMMANDS: dict[str, list[str]] = {
    "run": ["run", str(DUPLICATE), "--db", "{db}", "--out", "{out}", "--as-of", AS_OF, "--workers", "1"],
    "report": ["report", "--db", "{db}", "--out", "{out}", "--as-of", AS_OF],
    "refund list": ["refund", "list", "--db", "{db}", "--as-of", AS_OF],
    "refund show": ["refund", "show", NO_SUCH_REFUND, "--db", "{db}", "--as-of", AS_OF],
    "refund approve": ["refund", "approve", NO_SUCH_REFUND, "--db", "{db}", "--as-of", AS_OF, "--user", "alice"],
    "status": ["status", "--db", "{db}"],
    "retry": ["retry", "--db", "{db}"],
    "worker": ["worker", "--db", "{db}", "--stalled-after", "1"],
    "watch": ["watch", "drop", "--once", "--interval", "0.01", "--db", "{db}", "--as-of", AS_OF],
}
QUEUE_COMMANDS = ("status", "retry", "worker")
QUEUE_NEEDS_POSTGRESQL = "the job queue lives in PostgreSQL"


def free_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def made_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite store made by `edirecon run` on the duplicate-payment sample (one refund)."""
    folder = tmp_path_factory.mktemp("made")
    db = folder / "edirecon.db"
    done = CliRunner().invoke(app, [a.format(db=f"sqlite:///{db}", out=folder / "out") for a in COMMANDS["run"]])
    assert done.exit_code == 0, done.output
    assert not Path(f"{db}-wal").exists()  # closed and checkpointed: one file holds it all
    return db


@dataclass
class Fault:
    """A broken --db (and --out) in ``folder``; ``store`` is the file that must stay untouched."""

    db: str
    says: str
    store: Path | None = None
    out: str = "out"


def not_a_database(folder: Path, _made: Path) -> Fault:
    store = folder / "edirecon.db"
    store.write_text("patient_control_number,amount,paid_on\nRFM2602001,15.00,2026-07-21\n", encoding="utf-8")
    return Fault(f"sqlite:///{store}", "is not a database (file is not a database)", store)


def newer_revision(folder: Path, made: Path) -> Fault:
    store = folder / "edirecon.db"
    shutil.copyfile(made, store)
    conn = sqlite3.connect(store)
    with conn:
        conn.execute("UPDATE alembic_version SET version_num = 'f00dfeed9999'")
    conn.close()  # the last connection: the write-ahead log is folded in and removed
    return Fault(f"sqlite:///{store}", "was made by a newer edirecon (its schema revision 'f00dfeed9999' is unknown", store)


def out_is_a_file(folder: Path, made: Path) -> Fault:
    store = folder / "edirecon.db"
    shutil.copyfile(made, store)
    (folder / "outputs.txt").write_text("not a folder\n", encoding="utf-8")
    return Fault(f"sqlite:///{store}", "--out outputs.txt is a file, not a folder", store, out="outputs.txt")


def missing_store(folder: Path, _made: Path) -> Fault:
    return Fault("sqlite:///edirecon.db", "no store at edirecon.db: run `edirecon run`", folder / "edirecon.db")


def bad_port(_folder: Path, _made: Path) -> Fault:
    return Fault(
        f"postgresql://app:{PASSWORD}@127.0.0.1:abc/edirecon",
        "'postgresql://app:***@127.0.0.1:abc/edirecon' is not a usable database URL (its port is not a number)",
    )


def unknown_driver(_folder: Path, _made: Path) -> Fault:
    return Fault(f"mysql://app:{PASSWORD}@db.example/x", "'mysql://app:***@db.example/x'")


def unreachable(_folder: Path, _made: Path) -> Fault:
    port = free_port()
    return Fault(
        f"postgresql://app:{PASSWORD}@127.0.0.1:{port}/edirecon",
        f"the store at postgresql://app:***@127.0.0.1:{port}/edirecon cannot be opened: connection failed",
    )


def read_only(folder: Path, made: Path) -> Fault:
    store = folder / "edirecon.db"
    shutil.copyfile(made, store)
    return Fault(f"sqlite:///file:{store}?mode=ro&uri=true", "is read-only: edirecon writes to its store", store)


FAULTS: dict[str, Callable[[Path, Path], Fault]] = {
    f.__name__.replace("_", "-"): f for f in (not_a_database, newer_revision, out_is_a_file, missing_store, bad_port, unknown_driver, unreachable, read_only)
}
#: the commands a fault does not apply to: only run, report have --out; run and watch create their store
#: and on a read-only store, `refund list`, `refund show` and `report`: run has synced the workflow
#: and recorded the decisions, so they have nothing to write
#: (test_a_read_only_store_still_serves_commands_that_write_nothing)
NOT_APPLICABLE = {
    "out-is-a-file": {"refund list", "refund show", "refund approve", "status", "retry", "worker", "watch"},
    "missing-store": {"run", "watch"},
    "read-only": {"refund list", "refund show", "report"},
}
CASES = [(fault, command) for fault in FAULTS for command in COMMANDS if command not in NOT_APPLICABLE.get(fault, set())]


def invoke(command: str, fault: Fault) -> Any:
    return CliRunner().invoke(app, [a.format(db=fault.db, out=fault.out) for a in COMMANDS[command]])


@pytest.mark.parametrize(("fault_name", "command"), CASES, ids=[f"{f}:{c}" for f, c in CASES])
def test_every_command_says_a_store_fault_in_one_line(fault_name: str, command: str, made_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Exit 2, exactly one line on stderr saying what is wrong, no traceback, no password, the store untouched."""
    monkeypatch.chdir(tmp_path)
    fault = FAULTS[fault_name](tmp_path, made_store)
    if command == "watch":  # a file dropped for the watcher to ingest: it has something to write
        (tmp_path / "drop" / "inbound").mkdir(parents=True)
        shutil.copyfile(DUPLICATE / "remit-2.835", tmp_path / "drop" / "inbound" / "remit-2.835")
    before = fault.store.read_bytes() if fault.store is not None and fault.store.exists() else None
    result = invoke(command, fault)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    queue_refuses_url = command in QUEUE_COMMANDS and not fault.db.startswith("postgresql://")
    assert (QUEUE_NEEDS_POSTGRESQL if queue_refuses_url else fault.says) in lines[0]
    assert lines[0].startswith("edirecon: ")
    assert "Traceback" not in result.output and PASSWORD not in result.output
    assert "[SQL:" not in result.output and "parameters" not in result.output
    if fault.store is not None:
        after = fault.store.read_bytes() if fault.store.exists() else None
        assert after == before, "the store changed"
    assert not (tmp_path / "out").exists()


def test_read_commands_on_an_empty_postgresql_database_create_nothing(pg_url: str) -> None:
    """A database without a store: report, refund, status and retry say so (exit 2) and create no table."""
    from sqlalchemy import create_engine

    for command in ("report", "refund list", "refund approve", "status", "retry"):
        result = invoke(command, Fault(pg_url, "no store in the database"))
        assert (result.exit_code, result.stderr.count("\n")) == (2, 1), result.output
        assert "edirecon: no store in the database postgresql+psycopg://postgres@127.0.0.1:5432/" in result.stderr
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            tables = conn.exec_driver_sql("SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'").scalar_one()
    finally:
        engine.dispose()
    assert tables == 0


def test_a_user_in_the_wrong_folder_is_told_there_is_no_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: `refund list` in a folder without a store created ./edirecon.db and reported 0 refunds (exit 0)."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["refund", "list"], env={"EDIRECON_DB": None})
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == ("edirecon: no store at edirecon.db: run `edirecon run` (or watch) to create one, or give --db (or EDIRECON_DB) the store's URL\n")
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_store_still_serves_commands_that_write_nothing(made_store: Path, tmp_path: Path) -> None:
    """Once the workflow is synced (by run itself), `refund list` on a ?mode=ro store lists the refund (nothing to write)."""
    store = tmp_path / "edirecon.db"
    shutil.copyfile(made_store, store)
    ro = CliRunner().invoke(app, ["refund", "list", "--db", f"sqlite:///file:{store}?mode=ro&uri=true", "--as-of", AS_OF])
    assert ro.exit_code == 0 and ro.stdout.splitlines()[-1] == "1 refund(s)", ro.output
    assert CliRunner().invoke(app, ["refund", "list", "--db", f"sqlite:///{store}", "--as-of", AS_OF]).exit_code == 0
    listed = CliRunner().invoke(app, ["refund", "list", "--db", f"sqlite:///file:{store}?mode=ro&uri=true", "--as-of", AS_OF])
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines()[-1] == "1 refund(s)"
    refund_id = listed.stdout.split("RF-", 1)[1].split()[0]
    shown = CliRunner().invoke(app, ["refund", "show", "RF-" + refund_id, "--db", f"sqlite:///file:{store}?mode=ro&uri=true", "--as-of", AS_OF])
    assert shown.exit_code == 0 and "RF-" + refund_id in shown.stdout, shown.output
    # `report` reads the records run made (current): nothing to write, the store unchanged
    before = store.read_bytes()
    reported = CliRunner().invoke(app, ["report", "--db", f"sqlite:///file:{store}?mode=ro&uri=true", "--out", tmp_path / "out", "--as-of", AS_OF])
    assert reported.exit_code == 0 and "1 open refund(s)" in reported.stdout, reported.output
    assert store.read_bytes() == before
    # deciding the store again (as stale records would make it) writes the records: refused in one line
    decided = CliRunner().invoke(
        app,
        ["report", "--db", f"sqlite:///file:{store}?mode=ro&uri=true", "--out", tmp_path / "out2", "--as-of", AS_OF],
        env={"EDIRECON_WORKFLOW_FULL": "1"},
    )
    assert decided.exit_code == 2 and decided.stderr.count("\n") == 1 and "is read-only" in decided.stderr, decided.output


def test_a_user_sees_one_line_from_the_installed_command(tmp_path: Path) -> None:
    """Through a real process: a store that is not a database and an unknown driver give one line, exit 2."""
    (tmp_path / "edirecon.db").write_bytes(b"\x00" * 512)
    for db in ("sqlite:///edirecon.db", f"mysql://app:{PASSWORD}@db.example/x"):
        done = subprocess.run(
            [sys.executable, "-m", "edirecon", "refund", "list", "--db", db],
            cwd=tmp_path,
            capture_output=True,
            timeout=120,
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        )
        err = done.stderr.decode()
        assert (done.returncode, err.count("\n")) == (2, 1), err
        assert "Traceback" not in err and PASSWORD not in err


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://app:S3cr3t@db.example:5432/edirecon", "postgresql://app:***@db.example:5432/edirecon"),
        ("postgresql+psycopg://app:p%40ss@10.0.0.5/x?sslmode=require", "postgresql+psycopg://app:***@10.0.0.5/x?sslmode=require"),
        ("--db 'mysql://root:a@b@db/x' is not usable", "--db 'mysql://root:***@db/x' is not usable"),
        ("host=db user=app password=S3cr3t dbname=x", "host=db user=app password=*** dbname=x"),
        ("sqlite:///edirecon.db and postgresql://app@db/x", "sqlite:///edirecon.db and postgresql://app@db/x"),
    ],
)
def test_mask_credentials_hides_every_password(text: str, masked: str) -> None:
    """URLs with a password (encoded or with an @ in it), libpq's password=, and URLs without one."""
    from edirecon.engine.store.connection import mask_credentials

    assert mask_credentials(text) == masked


def test_a_database_error_is_named_by_kind_without_sql_parameters(made_store: Path, tmp_path: Path) -> None:
    """A failed write carrying a member id in its parameters is reported as 'read-only', not as SQL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    from edirecon.engine.store.connection import store_error

    store = tmp_path / "edirecon.db"
    shutil.copyfile(made_store, store)
    url = f"sqlite:///file:{store}?mode=ro&uri=true"
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE claims SET member_id = :member"), {"member": "1EG4TE5MK73"})
    except SQLAlchemyError as exc:
        assert "1EG4TE5MK73" in str(exc)  # what SQLAlchemy would have printed
        message = str(store_error(exc, url))
    finally:
        engine.dispose()
    assert message == f"the store at {url} is read-only: edirecon writes to its store (the refund workflow too); give a writable --db"
