"""The `refund` commands load only what they use (issue 15: `refund show` and one action under
0.5 s on 1,000,000 claims, where the work is a hundredth of a second and the rest is start-up).

Each command runs as `python -m edirecon` in a fresh process, as a user runs it; the process
writes the modules it loaded when it exits, and the test checks that the libraries the command
does not need are not among them: logging's structlog (and the rich, structlog.dev loads) when
nothing is logged, the parsers, the shards' processes, the reports (fpdf2), the web app, the
validator, alembic on a store at the newest revision, psycopg on SQLite.  Not a timing test: a
module loaded by mistake fails it on any machine.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from typer.testing import CliRunner

from edirecon.cli import app

AS_OF = "2026-11-27"

#: ``python -m edirecon ARGS`` that writes the names of its loaded modules to $MODULES_OUT at exit
_LOADED = (
    "import atexit, json, os, runpy, sys\n"
    "atexit.register(lambda: open(os.environ['MODULES_OUT'], 'w').write(json.dumps(sorted(sys.modules))))\n"
    "sys.argv[0] = 'edirecon'\n"
    "runpy.run_module('edirecon', run_name='__main__', alter_sys=True)\n"
)

#: what no `refund show` or action loads (a prefix names the package and its modules)
NOT_FOR_REFUND = (
    "structlog",  # nothing is logged without --verbose: its import (~60 ms) waits for an event
    "rich",  # structlog.dev's and typer's help only
    "edirecon.parsers.document",  # the parsers: parse, validate, run, watch
    "edirecon.parsers.x12",
    "edirecon.engine.scale.shards",  # report's and run's shards in processes
    "multiprocessing",
    "edirecon.engine.reports",
    "edirecon.engine.web",
    "edirecon.engine.ingest",
    "fpdf",
    "lxml",
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "alembic",  # the store is at the newest revision: one query, no migration scripts
    "procrastinate",
    "pyx12",
    "psycopg",  # SQLite
)


def loaded(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    out = tmp_path / "modules.json"
    out.unlink(missing_ok=True)
    env = {**os.environ, "MODULES_OUT": str(out)}
    env.pop("EDIRECON_DB", None)
    done = subprocess.run([sys.executable, "-c", _LOADED, *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    return done, set(json.loads(out.read_text(encoding="utf-8")))


def unwanted(modules: set[str], names: tuple[str, ...] = NOT_FOR_REFUND) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[str]]:
    """A store of the duplicate-payment and plb scenarios, and its refund ids."""
    root = tmp_path_factory.mktemp("lean")
    db = f"sqlite:///{root / 'store.db'}"
    with contextlib.chdir(REPO):
        result = CliRunner().invoke(
            app, ["run", "sample_edi/duplicate-payment", "sample_edi/patient-copay-overpaid", "--db", db, "--out", str(root / "out"), "--as-of", AS_OF]
        )
    assert result.exit_code == 0, result.output
    with open(root / "out" / "refund_requests.csv", newline="", encoding="utf-8") as fh:
        ids = [row["refund_id"] for row in csv.DictReader(fh)]
    assert len(ids) == 2
    return db, ids


def test_refund_show_loads_neither_logging_nor_parsers_nor_what_other_commands_use(store: tuple[str, list[str]], tmp_path: Path) -> None:
    db, ids = store
    done, modules = loaded(tmp_path, "refund", "show", ids[0], "--db", db, "--as-of", AS_OF)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"refund {ids[0]}\n")
    assert "sqlalchemy" in modules and "edirecon.engine.decide.rules" in modules  # it did read and decide
    assert unwanted(modules) == []


def test_an_action_loads_no_more_than_refund_show(store: tuple[str, list[str]], tmp_path: Path) -> None:
    """An action logs its event at info level, which a command without --verbose drops: without
    loading structlog."""
    db, ids = store
    done, modules = loaded(tmp_path, "refund", "hold", ids[1], "--db", db, "--as-of", AS_OF, "--user", "ana", "--note", "checking")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{ids[1]}: hold by ana; now held\n"
    assert done.stderr == ""
    assert unwanted(modules) == []


def test_help_loads_no_store_and_no_engine(tmp_path: Path) -> None:
    done, modules = loaded(tmp_path, "refund", "show", "--help")
    assert done.returncode == 0, done.stderr
    assert "Show one refund" in done.stdout
    assert unwanted(modules, ("sqlalchemy", "structlog", "edirecon.engine.workflow", "edirecon.engine.decide", "edirecon.parsers.document")) == []


def test_the_check_sees_a_module_loaded_by_mistake(tmp_path: Path) -> None:
    """The check itself fails when a command loads what it should not (a test that cannot fail
    proves nothing): `parse` loads the parsers."""
    sample = REPO / "sample_edi" / "duplicate-payment"
    done, modules = loaded(tmp_path, "parse", "--summary", str(sample))
    assert done.returncode == 0, done.stderr
    assert unwanted(modules) == ["edirecon.parsers.document", "edirecon.parsers.x12"]


def test_events_are_the_same_json_lines_when_structlog_loads_on_the_first_event(tmp_path: Path) -> None:
    """In a fresh process structlog is loaded, and configured as `configure_logging` was asked,
    when the first event passes: the events of `run --verbose` are the JSON lines on stderr they
    always were (event, level, timestamp), and nothing is written to stdout but the summary."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    done, modules = loaded(
        tmp_path, "run", str(REPO / "sample_edi" / "duplicate-payment"), "--db", db, "--out", str(tmp_path / "out"), "--as-of", AS_OF, "--verbose"
    )
    assert done.returncode == 0, done.stderr
    assert "structlog" in modules
    events = [json.loads(line) for line in done.stderr.splitlines()]
    assert events, "run --verbose logs its steps"
    assert all(set(e) >= {"event", "level", "timestamp"} for e in events)
    assert {e["level"] for e in events} <= {"info", "warning", "error"}
    assert "info" in {e["level"] for e in events}
    assert not any(line.startswith("{") for line in done.stdout.splitlines())


def test_a_command_leaves_the_collector_as_it_found_it_when_not_run_as_the_program(store: tuple[str, list[str]]) -> None:
    """Only the edirecon program (``app()``) runs without the cyclic garbage collector; a test
    runner or a program that invokes the commands finds it as it was after each."""
    db, ids = store
    before = gc.get_threshold()
    for args in (
        ["refund", "show", ids[0], "--db", db, "--as-of", AS_OF],
        ["user", "list", "--db", db],
        ["parse", "--summary", str(REPO / "sample_edi" / "duplicate-payment")],
    ):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        assert gc.isenabled(), args
        assert gc.get_threshold() == before, args


def test_the_program_runs_a_one_shot_command_without_the_collector_and_others_with_it(store: tuple[str, list[str]], tmp_path: Path) -> None:
    """As the program: `refund show` finds the collector off; `parse` (which may read large files)
    finds it on, collecting the young generation every 100,000 objects; and the process exits
    without it (its last pass over every object is of no use)."""
    db, ids = store
    probe = (
        "import gc, sys\n"
        "from edirecon import cli\n"
        "from edirecon.engine.workflow import views\n"
        "from edirecon.parsers import document\n"
        "seen = []\n"
        "shown, found = views.refund_detail, document.find_files\n"
        "views.refund_detail = lambda *a, **k: (seen.append((gc.isenabled(), gc.get_threshold()[0])), shown(*a, **k))[1]\n"
        "document.find_files = lambda *a, **k: (seen.append((gc.isenabled(), gc.get_threshold()[0])), found(*a, **k))[1]\n"
        "import edirecon.parsers\n"
        "edirecon.parsers.find_files = document.find_files\n"
        "try:\n"
        "    cli.app(sys.argv[1:], prog_name='edirecon')\n"
        "except SystemExit:\n"
        "    seen.append(('at exit', gc.isenabled()))\n"
        "print(seen)\n"
    )
    show = subprocess.run([sys.executable, "-c", probe, "refund", "show", ids[0], "--db", db, "--as-of", AS_OF], capture_output=True, text=True, timeout=120)
    assert show.stdout.splitlines()[-1] == "[(False, 100000), ('at exit', False)]", show.stderr
    parse = subprocess.run(
        [sys.executable, "-c", probe, "parse", "--summary", str(REPO / "sample_edi" / "duplicate-payment")], capture_output=True, text=True, timeout=120
    )
    assert parse.stdout.splitlines()[-1] == "[(True, 100000), ('at exit', False)]", parse.stderr


def test_run_as_the_program_ends_with_its_output_and_exit_handlers(tmp_path: Path) -> None:
    """`run`, as the program, ends without tearing down what it built (``cli._exit_now``): its
    summary on stdout (a pipe here, so buffered) and its events on stderr are all there, the
    exit handlers ran (the one that writes the modules loaded), and the exit code is 0."""
    db = f"sqlite:///{tmp_path / 'store.db'}"
    done, modules = loaded(
        tmp_path, "run", str(REPO / "sample_edi" / "duplicate-payment"), "--db", db, "--out", str(tmp_path / "out"), "--as-of", AS_OF, "--verbose"
    )
    assert done.returncode == 0, done.stderr
    assert "edirecon.engine.run" in modules
    assert done.stdout.rstrip().endswith(f"outputs written to {tmp_path / 'out'}/")
    assert "edirecon run — as of 2026-11-27" in done.stdout
    assert json.loads(done.stderr.splitlines()[-1])["event"] == "run_finished"
    assert (tmp_path / "out" / "manifest.json").is_file()


def test_run_under_a_profiler_ends_as_any_program(tmp_path: Path) -> None:
    """Under `python -m cProfile` the program returns normally, so the profiler writes its file."""
    profile = tmp_path / "run.prof"
    args = [
        "run",
        str(REPO / "sample_edi" / "duplicate-payment"),
        "--db",
        f"sqlite:///{tmp_path / 'store.db'}",
        "--out",
        str(tmp_path / "out"),
        "--as-of",
        AS_OF,
    ]
    env = {k: v for k, v in os.environ.items() if k != "EDIRECON_DB"}
    done = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "edirecon", *args], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert profile.stat().st_size > 0
