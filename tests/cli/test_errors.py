"""One error tree (``edirecon.errors``), caught in one place (the CLI's root group), and the one
logging setup (``edirecon.engine.logging``).

- every error edirecon raises on purpose is a class of ``edirecon.errors``, with its exit code
  and a docstring, and survives pickling (the processes of a run and the shards pass them back);
- whatever a command's library call raises becomes one line ``edirecon: …`` and that class's
  exit code, a database error names the store of the command's --db (given or from EDIRECON_DB),
  and anything else is an internal error by its kind only;
- the options the commands share are read the same way by every command.
"""

from __future__ import annotations

import ast
import json
import pickle
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import structlog
import typer.main
from conftest import REPO
from typer.testing import CliRunner

from edirecon import errors
from edirecon.cli import app
from edirecon.engine import logging as logging_setup
from edirecon.engine.config import Config
from edirecon.engine.logging import configure_logging, get_logger
from edirecon.engine.workflow import views

#: the exit code of every error class (a user sees these: docs/commands.md, tests/test_cli.py)
EXIT_CODES = {
    "EdireconError": 1,
    "UsageError": 2,
    "InputError": 2,
    "StoreUnavailable": 2,
    "WatchError": 2,
    "QueueError": 2,
    "NotAllowed": 1,
    "Unauthorized": 1,
    "Forbidden": 1,
    "ShardError": 1,
}
CLASSES = [getattr(errors, name) for name in errors.__all__]
URL = "postgresql://app:s3cret@db.example/claims"


def test_the_tree_is_every_class_of_the_module_with_its_exit_code() -> None:
    assert sorted(errors.__all__) == sorted(EXIT_CODES)
    for cls in CLASSES:
        assert issubclass(cls, errors.EdireconError), cls
        assert cls.exit_code == EXIT_CODES[cls.__name__], cls
        assert (cls.__doc__ or "").strip(), f"{cls.__name__} has no docstring"


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_an_error_survives_pickling(cls: type[errors.EdireconError]) -> None:
    """A process of a run or a shard raises it; its parent gets the same class, message and exit code."""
    back = pickle.loads(pickle.dumps(cls("RF-1: cannot send 500.00: 99.96 is outstanding")))
    assert type(back) is cls
    assert (str(back), back.exit_code) == ("RF-1: cannot send 500.00: 99.96 is outstanding", EXIT_CODES[cls.__name__])


def _package_sources() -> Iterator[Path]:
    yield REPO / "cli.py"
    yield REPO / "__init__.py"
    for top in ("engine", "parsers", "mappings"):
        yield from (p for p in (REPO / top).rglob("*.py") if "migrations" not in p.parts)


def test_no_exception_class_is_defined_outside_errors_py() -> None:
    """One tree: no module but errors.py defines an exception class."""
    bases = {"Exception", "EdireconError", *EXIT_CODES, "RuntimeError", "ValueError", "OSError"}
    found = []
    for path in _package_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef) and any(getattr(b, "id", getattr(b, "attr", None)) in bases for b in node.bases):
                found.append(f"{path.relative_to(REPO)}:{node.name}")
    assert found == []
    assert not (REPO / "parsers" / "errors.py").exists()


def test_errors_py_imports_nothing() -> None:
    """Every stage may raise these (engine/decide/ included): the module pulls in no other."""
    tree = ast.parse((REPO / "errors.py").read_text(encoding="utf-8"))
    imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert [getattr(node, "module", None) for node in imports] == ["__future__"]


# ------------------------------------------------------------------------------ caught in one place
def _raising(exc: BaseException) -> Any:
    def library(*_: Any, **__: Any) -> Any:
        raise exc

    return library


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_an_error_from_the_library_is_one_line_and_its_exit_code(cls: type[errors.EdireconError], monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the library raises on purpose: `edirecon: <message>`, the password masked, the class's exit code."""
    monkeypatch.setattr(views, "refund_list", _raising(cls(f"the store at {URL} is locked")))
    result = CliRunner().invoke(app, ["refund", "list", "--db", "sqlite:///unused.db"])
    assert (result.exit_code, result.stdout) == (EXIT_CODES[cls.__name__], "")
    assert result.stderr == "edirecon: the store at postgresql://app:***@db.example/claims is locked\n"


@pytest.mark.parametrize("env", [False, True], ids=["--db", "EDIRECON_DB"])
def test_a_database_error_names_the_store_of_the_command(env: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A database error met anywhere in a command names that command's --db (given or from the
    environment), masked, and never its SQL or parameters."""
    from sqlalchemy.exc import OperationalError

    url = f"sqlite:///{tmp_path}/store.db?password=s3cret"
    monkeypatch.setattr(views, "refund_detail", _raising(OperationalError("SELECT * FROM claims WHERE pcn = ?", ("RFM2601001",), Exception("disk I/O error"))))
    if env:
        result = CliRunner(env={"EDIRECON_DB": url}).invoke(app, ["refund", "show", "RF-1"])
    else:
        result = CliRunner(env={"EDIRECON_DB": None}).invoke(app, ["refund", "show", "RF-1", "--db", url])
    assert result.exit_code == 2
    assert result.stderr == f"edirecon: the store at sqlite:///{tmp_path}/store.db?password=*** cannot be written: disk i/o error\n"


def test_a_bug_is_named_by_its_kind_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(views, "take_action", _raising(KeyError("RFM2601001 SMITH JOHN")))
    result = CliRunner().invoke(app, ["refund", "approve", "RF-1", "--db", "sqlite:///unused.db"])
    assert result.exit_code == 2
    assert result.stderr == "edirecon: internal error (KeyError); please report it with the command that failed\n"


def test_click_usage_errors_are_left_to_click() -> None:
    """An unknown option is click's own usage message (exit 2), not ours."""
    result = CliRunner().invoke(app, ["refund", "list", "--bogus"])
    assert result.exit_code == 2 and "No such option: --bogus" in result.stderr and not result.stderr.startswith("edirecon: ")


# ------------------------------------------------------------------------------ the shared options
def _commands_with(option: str) -> list[tuple[str, ...]]:
    found = []

    def walk(command: Any, path: tuple[str, ...]) -> None:
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            if hasattr(sub, "commands"):
                walk(sub, (*path, name))
            elif any(option in p.opts for p in sub.params):
                found.append((*path, name))

    walk(typer.main.get_command(app), ())
    return found


def _args(path: tuple[str, ...], tmp_path: Path) -> list[str]:
    """The command with what it needs besides its options (a refund id, a folder)."""
    needs = {"refund show": ["RF-1"], "refund approve": ["RF-1"], "refund hold": ["RF-1"], "refund mark-sent": ["RF-1"], "refund void": ["RF-1"]}
    needs |= {"refund mark-cashed": ["RF-1"], "refund mark-recovered": ["RF-1"], "run": [str(tmp_path)], "watch": [str(tmp_path)]}
    needs |= {"refund acknowledge": ["RF-1"], "refund assign": ["RF-1"], "refund note": ["RF-1"]}
    return [*path, *needs.get(" ".join(path), [])]


def test_every_as_of_is_read_the_same_way(tmp_path: Path) -> None:
    """A --as-of that is not a date: the same line and exit 2 from every command that has it, before the store is touched."""
    paths = _commands_with("--as-of")
    assert {"run", "watch", "worker", "report", "refund list", "refund show", "refund approve"} <= {" ".join(p) for p in paths}
    for path in paths:
        db = "postgresql://nobody@127.0.0.1:1/none" if path[0] == "worker" else f"sqlite:///{tmp_path}/none.db"
        result = CliRunner().invoke(app, [*_args(path, tmp_path), "--db", db, "--as-of", "27/11/2026"])
        assert (result.exit_code, result.stderr) == (2, "edirecon: --as-of '27/11/2026' is not a date (YYYY-MM-DD)\n"), path
    assert not (tmp_path / "none.db").exists()


def test_every_config_is_read_the_same_way(tmp_path: Path) -> None:
    """A --config that cannot be read: the same line and exit 2 from every command that has it."""
    paths = _commands_with("--config")
    assert {"run", "watch", "worker", "report", "refund list", "refund show", "refund approve"} <= {" ".join(p) for p in paths}
    missing = tmp_path / "missing.toml"
    for path in paths:
        db = "postgresql://nobody@127.0.0.1:1/none" if path[0] == "worker" else f"sqlite:///{tmp_path}/none.db"
        result = CliRunner().invoke(app, [*_args(path, tmp_path), "--db", db, "--config", str(missing)])
        assert (result.exit_code, result.stderr) == (2, f"edirecon: {missing}: cannot be read (No such file or directory)\n"), path


def test_the_views_refuse_an_unknown_status_before_opening_the_store(tmp_path: Path) -> None:
    with pytest.raises(errors.UsageError, match=r"^--status 'lost' is not one of pending, "):
        views.refund_list(f"sqlite:///{tmp_path}/none.db", date(2026, 11, 27), Config(), statuses=["lost"])
    assert not (tmp_path / "none.db").exists()


# ------------------------------------------------------------------------------ one logging setup
@pytest.fixture
def restored_logging() -> Iterator[None]:
    before = structlog.get_config()
    yield
    structlog.configure(**before)


def _logged(capsys: pytest.CaptureFixture[str], verbose: bool, only: str | None) -> list[tuple[str, str]]:
    configure_logging(verbose, only)
    structlog.get_logger("edirecon.test").info("file_received", file="a.835")
    structlog.get_logger("edirecon.test", component="watch").info("ingested", file="a.835")
    structlog.get_logger("edirecon.test").warning("store_slow")
    return [(e["event"], e["level"]) for e in map(json.loads, capsys.readouterr().err.splitlines())]


def test_logging_quiet_verbose_and_one_component(capsys: pytest.CaptureFixture[str], restored_logging: None) -> None:
    """JSON lines on stderr: warnings always; info with --verbose; a component's info always when
    it is the one logged (watch), the others' only with --verbose."""
    assert _logged(capsys, False, None) == [("store_slow", "warning")]
    assert _logged(capsys, True, None) == [("file_received", "info"), ("ingested", "info"), ("store_slow", "warning")]
    assert _logged(capsys, False, "watch") == [("ingested", "info"), ("store_slow", "warning")]
    assert _logged(capsys, True, "watch") == [("file_received", "info"), ("ingested", "info"), ("store_slow", "warning")]


def _logged_waiting(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, verbose: bool, only: str | None) -> list[tuple[str, str]]:
    # as `configure_logging` leaves it in a process that has not loaded structlog yet (a command)
    monkeypatch.setattr(logging_setup, "_pending", (verbose, only))
    get_logger("edirecon.test").info("file_received", file="a.835")
    get_logger("edirecon.test", component="watch").info("ingested", file="a.835")
    get_logger("edirecon.test").warning("store_slow")
    assert logging_setup._pending is None  # applied when the first event passed
    return [(e["event"], e["level"]) for e in map(json.loads, capsys.readouterr().err.splitlines())]


def test_a_setup_waiting_for_structlog_logs_the_same(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, restored_logging: None) -> None:
    """The package's loggers under a setup that waits for structlog (a command loads it only
    when an event passes): the events dropped without it, and the lines written once it is
    loaded, are those of the setup applied at once."""
    assert _logged_waiting(capsys, monkeypatch, False, None) == [("store_slow", "warning")]
    assert _logged_waiting(capsys, monkeypatch, True, None) == [("file_received", "info"), ("ingested", "info"), ("store_slow", "warning")]
    assert _logged_waiting(capsys, monkeypatch, False, "watch") == [("ingested", "info"), ("store_slow", "warning")]
    assert _logged_waiting(capsys, monkeypatch, True, "watch") == [("file_received", "info"), ("ingested", "info"), ("store_slow", "warning")]
