"""The ``edirecon`` command line: a thin layer over the library.

Each command parses its options and calls the library; what the library raises is caught in one
place, the root group (``_failures``): an ``edirecon.errors.EdireconError`` is one line on stderr
and its own exit code, anything else one line too, never a traceback.  The options several
commands share (``--db``, ``--as-of``, ``--config``, ``--verbose``) are declared once, below, and
every command logs through ``edirecon.engine.logging.configure_logging``.

Exit codes (every command): 0 clean, 1 the input had error findings, 2 usage or unreadable input.
Findings go to stderr as ``file:segment:offset: CODE message``.
"""

# No ``from __future__ import annotations`` here: typer reads every command's parameters from its
# annotations when a command runs, and as strings it evaluates them all again each time (some 800
# evaluations, ~20 ms of every command); as objects they are built once, when this module loads.

import csv
import gc
import io
import json
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from edirecon.engine.config import Config
from edirecon.engine.logging import configure_logging
from edirecon.errors import EdireconError, UsageError

if TYPE_CHECKING:
    from edirecon import parsers

#: the environment variables giving every command its default --db and --config (the option wins)
DB_ENV, CONFIG_ENV = "EDIRECON_DB", "EDIRECON_CONFIG"
#: the store of every command that has a default one
DEFAULT_DB = "sqlite:///edirecon.db"
#: where the --db of the running command is kept for ``_failures`` (click's ctx.meta, shared by all contexts)
_DB_META = "edirecon.db"

#: the collector's thresholds while a command runs (``run`` sets its own for its batches; see ``_program``)
START_UP_GC = (100_000, 50, 100)

#: files met while recursing a folder that are documentation, golden outputs or patient payments
NOT_X12_SUFFIXES = (".md", ".json", ".jsonl", ".csv")


# -- the one place errors are caught -------------------------------------------------------------


@contextmanager
def _failures(meta: dict[str, Any]) -> Iterator[None]:
    """Whatever the store, the database URL, the file system or the validator raises, as one line
    on stderr and exit 2 (an ``EdireconError``: its own exit code).  No traceback reaches a user;
    no password (masked) and no SQL parameters (a database error is named by its kind, and its
    store by the command's --db, which ``meta`` holds once the command's options are read).
    SQLAlchemy and the store's module are loaded here only when something failed: a command that
    opens no store (``--help``, ``parse``) does not load them."""
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise
    except Exception as exc:
        # deferred: SQLAlchemy (~0.1 s to import) only for a failure; a store error means it is loaded already
        from edirecon.engine.store.connection import is_migration_error, mask_credentials, store_error

        if isinstance(exc, EdireconError):
            typer.echo(f"edirecon: {mask_credentials(exc)}", err=True)
            raise typer.Exit(exc.exit_code) from None
        if _store_error(exc) or is_migration_error(exc):  # alembic's CommandError (alembic is loaded only to migrate)
            typer.echo(f"edirecon: {store_error(exc, meta.get(_DB_META) or '')}", err=True)
            raise typer.Exit(2) from None
        if isinstance(exc, OSError):
            where = f"{exc.filename}: " if exc.filename else ""
            typer.echo(f"edirecon: {mask_credentials(where)}{exc.strerror or type(exc).__name__}", err=True)
            raise typer.Exit(2) from None
        # a bug: its kind only (its text could quote patient data)
        typer.echo(f"edirecon: internal error ({type(exc).__name__}); please report it with the command that failed", err=True)
        raise typer.Exit(2) from None


# -- the cyclic garbage collector ---------------------------------------------------------------
# A command's start-up (typer building its commands, SQLAlchemy, the driver, the engine's modules)
# allocates some 10^5 objects and no garbage cycles, and a `refund` command does one bounded piece
# of work and exits: the collector's passes (and its last one, at exit) were ~7% of `refund show`.
# So the edirecon program (``app()``: the console script, ``python -m edirecon``) starts without
# the collector; a command runs with it (young generation every 100,000 objects, ``_Commands``),
# but for the one-shot groups ``refund``, ``user`` and ``token`` (``_OneShot``); and the process
# exits without it (``app()`` ends in ``SystemExit``; when it returns instead, it switches the
# collector back on).  Under a test runner, which invokes the commands without ``app()``, each
# command leaves the collector as it found it.

#: whether this process is the edirecon program (``app()`` was called)
_program = False


class _Program(typer.Typer):
    """The ``edirecon`` program: the collector off from here (see above)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        global _program
        _program = True
        gc.disable()
        result = super().__call__(*args, **kwargs)
        # returned instead of exiting (``standalone_mode=False``): the calling program goes on, with the collector
        _program = False
        gc.enable()
        return result


class _OneShot(TyperGroup):
    """The groups whose commands each do one bounded piece of work and exit (``refund``, ``user``,
    ``token``): they run without the cyclic garbage collector (see above)."""

    def invoke(self, ctx: Any) -> Any:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return super().invoke(ctx)
        finally:
            if was_enabled and not _program:
                gc.enable()


def _store_error(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLAlchemy's (which only a process that loaded SQLAlchemy can raise)."""
    loaded = sys.modules.get("sqlalchemy.exc")
    return loaded is not None and isinstance(exc, loaded.SQLAlchemyError)


class _Commands(TyperGroup):
    """The root group: every command (the ``refund`` ones too) runs inside ``_failures``, with
    the --db it was given (a store error names its store)."""

    def invoke(self, ctx: Any) -> Any:
        # the collector while the command runs (see above); as it was, after it
        was_enabled, before = gc.isenabled(), gc.get_threshold()
        gc.set_threshold(*START_UP_GC)
        gc.enable()
        try:
            with _failures(ctx.meta):
                return super().invoke(ctx)
        finally:
            gc.set_threshold(*before)
            if not was_enabled:
                gc.disable()


app = _Program(
    name="edirecon",
    help="Health-care EDI credit-balance engine: read X12 837 claims and 835 remittances exactly.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_Commands,
)


def _version() -> str:
    # deferred: importlib.metadata (a tenth of a command's start) only for --version
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("edirecon")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0+unknown"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"edirecon {_version()}")
        raise typer.Exit(0)


@app.callback()
def main(
    show_version: Annotated[
        bool | None,
        typer.Option("--version", help="Print the version and exit.", callback=_show_version, is_eager=True),
    ] = None,
) -> None:
    """Health-care EDI credit-balance engine: read X12 837 claims and 835 remittances exactly."""


# -- the options several commands share, declared once ------------------------------------------


def _remember_db(ctx: typer.Context, value: str | None) -> str | None:
    ctx.meta[_DB_META] = value
    return value


def db_option(help: str) -> Any:
    """--db: the store's SQLAlchemy URL, EDIRECON_DB by default."""
    return typer.Option("--db", envvar=DB_ENV, help=help, callback=_remember_db)


def as_of_option(help: str) -> Any:
    """--as-of YYYY-MM-DD: the day a command takes as today (read by ``_day``); its default differs by command."""
    return typer.Option("--as-of", help=help)


def config_option(help: str) -> Any:
    """--config FILE: the TOML configuration (docs/rules.md), EDIRECON_CONFIG by default."""
    return typer.Option("--config", envvar=CONFIG_ENV, help=help)


def verbose_option(help: str) -> Any:
    """--verbose: info log events on stderr (``configure_logging``)."""
    return typer.Option("--verbose", help=help)


#: --db of the commands that create (run, watch) or read (report, refund ...) a store, default DEFAULT_DB
DbOpt = Annotated[str, db_option("SQLAlchemy URL of the store (SQLite or PostgreSQL).")]
#: --db of the job-queue commands (worker, status, retry): PostgreSQL, required
QueueDbOpt = Annotated[str, db_option("postgresql:// URL of the store, whose database is also the job queue.")]
#: --config of the commands that decide (run, watch, worker)
EngineConfigOpt = Annotated[Path | None, config_option("TOML file: refund deadlines and federal payers.")]
#: --config of the refund workflow and the reports
WorkflowConfigOpt = Annotated[Path | None, config_option("TOML file: deadlines, auto-approval rules, hold threshold, escheatment period.")]
#: --as-of of the refund workflow and the reports
AsOfOpt = Annotated[str | None, as_of_option("The day taken as today (YYYY-MM-DD); default today.")]


def _day(value: str | None, name: str) -> date | None:
    """The day of a --as-of or --date option (None when not given)."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{name} {value!r} is not a date (YYYY-MM-DD)") from None


def _exit_now(code: int) -> None:
    """The last step of a batch command whose results are written and printed: the program
    (``app()`` called) ends here without freeing, one by one, the millions of objects the run
    built (a store's facts and decisions: 0.5 s at 20,000 claims; the operating system takes the
    memory back at once).  The store is closed, the worker processes joined and the outputs
    fsynced by then; the exit handlers run and the streams are flushed, as at any exit.  Under a
    test runner, under a profiler or a tracer (``python -m cProfile``, coverage: they write what
    they measured after the program returns), or when ``app()`` returns instead of exiting, the
    command ends as any other."""
    if not _program or sys.getprofile() is not None or sys.gettrace() is not None:
        return
    # deferred: only the program's last step needs it
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _today(as_of: str | None) -> date:
    """--as-of, default today."""
    return _day(as_of, "--as-of") or date.today()


def _amount(value: str | None) -> Decimal | None:
    """The amount of an --amount option: at most two decimals."""
    if value is None:
        return None
    try:
        amount = Decimal(value)
        if not amount.is_finite() or amount.as_tuple().exponent < -2:  # type: ignore[operator]
            raise InvalidOperation
    except InvalidOperation:
        raise UsageError(f"--amount {value!r} is not an amount with at most two decimals") from None
    return amount


def _out_folder(out: Path) -> None:
    """--out must be a folder, or a path where one can be made: said before the store is touched."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder: give a folder (it is created when missing)")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"--out {out}: {parent} is a file, not a folder")
            break


# -- parse, validate -----------------------------------------------------------------------------


def expand_inputs(paths: list[Path]) -> list[Path]:
    """The X12 files to read: see ``parsers.find_files``."""
    # deferred: the parsers (~30 ms to import) only for the commands that read X12 files, not `refund`
    from edirecon.parsers import find_files

    return find_files(paths, NOT_X12_SUFFIXES)


def ack_names(paths: list[Path]) -> dict[Path, str]:
    """Acknowledgments are named after their file; files of the same name get their path in the name."""
    counts: dict[str, int] = {}
    for p in paths:
        counts[p.name] = counts.get(p.name, 0) + 1
    return {p: p.name if counts[p.name] == 1 else "__".join(p.parts[-3:]).replace("..", "") for p in paths}


def _report(findings: list["parsers.Finding"]) -> None:
    for f in findings:
        typer.echo(str(f), err=True)


FilesArg = Annotated[list[Path], typer.Argument(help="X12 files, or folders to read recursively.", show_default=False)]


@app.command()
def parse(
    files: FilesArg,
    summary: Annotated[bool, typer.Option("--summary", help="One line per file with counts instead of records.")] = False,
    format_version: Annotated[
        int,
        typer.Option(
            "--format-version",
            min=1,
            max=2,
            help="JSON Lines format: 2 (compact, the default) or 1 (one self-contained object per record; kept for one release).",
        ),
    ] = 2,
) -> None:
    """Parse 837 and 835 files into JSON Lines: one record per claim, claim payment and PLB adjustment.

    Format version 2 (the default; docs/commands.md): a "format" line with the columns of every
    kind, then per transaction set a "transaction_set" line (file, envelope ids, "trusted", and the
    835's "remittance" or the 837's header, written once), then its records as
    {"record", "ts", "values"}, "ts" naming that line; nested objects are arrays in their columns,
    sources are segment, offset and loop, empty values null.  --format-version 1 (kept for one
    release): one self-contained object per record with "record", "transaction_type", every
    field, "trusted" and a full "source".  Findings go to stderr.
    """
    # deferred: the parsers (~30 ms to import) only for the commands that read X12 files, not `refund`
    from edirecon import parsers
    from edirecon.parsers.serialize import CompactWriter, record_dict, write_lines
    from edirecon.parsers.summary import summarize

    had_errors = False
    out = sys.stdout
    writer = CompactWriter()
    for path in expand_inputs(files):
        file_summary = parsers.FileSummary(str(path))
        if summary:
            summarize(path, file_summary, str(path))
            out.write(_summary_line(file_summary) + "\n")
        elif format_version == 1:
            for record in parsers.iter_records(path, file_summary, str(path)):
                out.write(json.dumps(record_dict(record), separators=(",", ":")) + "\n")
        else:
            for parsed in parsers.iter_transactions(path, file_summary, str(path)):
                for text in write_lines(writer.lines(parsed)):
                    out.write(text)
        out.flush()
        _report(file_summary.findings)
        had_errors |= file_summary.has_errors
    raise typer.Exit(1 if had_errors else 0)


def _summary_line(s: "parsers.FileSummary") -> str:
    sev = s.severities()
    return (
        f"{s.file}: interchanges={s.interchanges} transaction_sets={s.transaction_sets} claims={s.claims} "
        f"claim_payments={s.claim_payments} service_lines={s.service_lines} "
        f"provider_adjustments={s.provider_adjustments} errors={sev['error']} warnings={sev['warning']}"
    )


@app.command()
def validate(
    files: FilesArg,
    ack_dir: Annotated[
        Path | None,
        typer.Option("--ack-dir", help="Write a 999 (and a TA1 when the interchange envelope is broken) for each 837 here."),
    ] = None,
) -> None:
    """Validate files against their implementation guides with pyx12, and write acknowledgments.

    pyx12's errors are reported as findings with positions; a pyx12 failure is a finding too.
    """
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    from edirecon.parsers import Severity
    from edirecon.parsers.validate import validate_file

    had_errors = False
    paths = expand_inputs(files)
    if ack_dir is not None:
        ack_dir.mkdir(parents=True, exist_ok=True)
    names = ack_names(paths)
    for path in paths:
        result = validate_file(path, ack_dir, names[path])
        for ack in result.acknowledgments:
            typer.echo(f"{path}: wrote {ack}")
        typer.echo(f"{path}: {result.verdict} ({len(result.findings)} findings)")
        _report(result.findings)
        had_errors |= any(f.severity is Severity.ERROR for f in result.findings)
    raise typer.Exit(1 if had_errors else 0)


# -- run, watch ----------------------------------------------------------------------------------


@app.command()
def run(
    inputs: Annotated[list[Path], typer.Argument(help="837/835 files, patient-payment CSVs, or folders to read recursively.", show_default=False)],
    db: DbOpt = DEFAULT_DB,
    out: Annotated[Path, typer.Option("--out", help="Folder for the outputs (rewritten in full each run).")] = Path("out"),
    as_of: Annotated[str | None, as_of_option("The day the run is taken to happen (YYYY-MM-DD); default today.")] = None,
    config: EngineConfigOpt = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Processes ingesting files side by side; default: one per core.")] = None,
    queue: Annotated[bool, typer.Option("--queue", help="PostgreSQL: defer ingestion as jobs to `edirecon worker` processes and wait for them.")] = False,
    verbose: Annotated[bool, verbose_option("Log every file as a structured event on stderr.")] = False,
) -> None:
    """Find credit balances: ingest claims, remittances and patient payments, then write refund
    requests, recoupments, credit balances, exceptions and a summary to --out, the team's work on
    each refund as the store holds it (workflow.csv, workflow.jsonl: status, assignee, last action,
    by whom and when, what was sent), and last manifest.json (every file with its SHA-256).

    Running the same inputs again changes nothing.
    """
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate; rich)
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from edirecon.engine.run import input_files
    from edirecon.engine.run import run as run_engine

    configure_logging(verbose)
    # a batch job allocating millions of short-lived objects: collect the young generation less
    # often (the default 700 makes the collector rescan surviving batches again and again)
    gc.set_threshold(200_000, 50, 100)
    console = Console(stderr=True)
    day = _today(as_of)
    _out_folder(out)
    cfg = Config.load(config)
    total = len(input_files(inputs))
    with Progress(console=console, transient=True, disable=total < 20) as bar:
        task = bar.add_task("ingesting", total=total)
        result = run_engine(inputs, db, out, day, cfg, progress=lambda _name: bar.advance(task), workers=workers, queue=queue)
    s = result.summary
    table = Table(title=f"edirecon run — as of {s['as_of']}", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("amount", justify="right")
    r = result.report
    table.add_row("files (given / ingested now / known)", f"{r.files_seen} / {r.files_ingested} / {s['files']}", "")
    table.add_row("claims / claim payments / patient payments", f"{s['claims']} / {s['claim_payments']} / {s['patient_payments']}", "")
    table.add_row("payments matched to encounters", str(s["matched_payments"]), "")
    for reason, slot in s["refunds"].items():
        table.add_row(f"refunds {reason}", str(slot["count"]), slot["amount"])
    table.add_row("recoupments", str(s["recoupments"]["count"]), s["recoupments"]["amount"])
    table.add_row("encounters in credit", str(s["credit_balances"]), "")
    for kind, n in s["exceptions"].items():
        table.add_row(f"exceptions {kind}", str(n), "")
    Console().print(table)
    typer.echo(f"outputs written to {out}/")
    _exit_now(0)
    raise typer.Exit(0)


@app.command()
def watch(
    root: Annotated[
        Path,
        typer.Argument(
            help="The drop-folder root, which must exist (inbound/, work/, archive/, error/, ack/, outbound/ are created under it).", show_default=False
        ),
    ],
    db: DbOpt = DEFAULT_DB,
    once: Annotated[bool, typer.Option("--once", help="Poll twice, process what is ready, publish, and exit (for cron and tests).")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between polls.", min=0.01)] = 2.0,
    as_of: Annotated[str | None, as_of_option("The day the outputs are taken to be made (YYYY-MM-DD); default the day of each batch.")] = None,
    config: EngineConfigOpt = None,
    duplicate_window: Annotated[
        int, typer.Option("--duplicate-window", help="Days within which the same sender (ISA06) and ISA13 is a duplicate.", min=0)
    ] = 365,
    queue: Annotated[bool, typer.Option("--queue", help="PostgreSQL: defer each file's parse-and-ingest to `edirecon worker` jobs.")] = False,
    verbose: Annotated[bool, verbose_option("Also log the engine's own per-file events.")] = False,
    create: Annotated[bool, typer.Option("--create", help="Create ROOT when it does not exist (without it, a missing ROOT is a usage error).")] = False,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Processes deciding the store at each publish, as run's; default: one per core.")
    ] = None,
) -> None:
    """Watch clearinghouse drop folders: ingest what partners drop in ROOT/inbound/, acknowledge
    837s in ack/, quarantine bad files in error/, archive the rest, and publish the outputs of
    run (with a manifest) in outbound/.

    Exit codes: 0 done (or stopped by SIGTERM/SIGINT); 1 with --once when a file was quarantined
    or an entry rejected; 2 usage or store error (a ROOT that does not exist, without --create).
    """
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    from edirecon.engine.dropfolder.watch import Options
    from edirecon.engine.dropfolder.watch import watch as watch_root

    configure_logging(verbose, only="watch")
    day = _day(as_of, "--as-of")
    if queue:
        # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
        from edirecon.engine.scale.queue import conninfo

        conninfo(db)  # the queue lives in PostgreSQL: a SQLite URL is a usage error
    options = Options(
        interval=interval,
        once=once,
        as_of=day,
        config=Config.load(config),
        duplicate_window=timedelta(days=duplicate_window),
        queue=queue,
        create=create,
        workers=workers,
    )
    raise typer.Exit(watch_root(root, db, options))


# -- the job queue (docs/scale-out.md) ----------------------------------------------------------


@app.command()
def worker(
    db: QueueDbOpt,
    config: EngineConfigOpt = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="Jobs at once in this process (parsing is CPU-bound: run one worker per core instead).")
    ] = 1,
    stalled_after: Annotated[
        float, typer.Option("--stalled-after", min=1, help="Seconds without a heartbeat after which a worker's job is put back in the queue.")
    ] = 30.0,
    as_of: Annotated[
        str | None,
        as_of_option(
            "The day (YYYY-MM-DD) detections are taken to happen for jobs that carry no day of their own (the jobs of run and watch carry their --as-of); default today."
        ),
    ] = None,
) -> None:
    """Work the job queue (procrastinate on PostgreSQL): ingest files and parts of files, and
    detect refunds by claim number, until SIGTERM/SIGINT (the job in hand is finished first).

    Any number of workers on any number of machines may share one database.
    """
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    from edirecon.engine.scale.queue import run_worker

    configure_logging(True)
    day = _day(as_of, "--as-of")
    run_worker(db, Config.load(config), concurrency=concurrency, stalled_after=stalled_after, as_of=day)


@app.command()
def status(
    db: QueueDbOpt,
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Show the job queue: depth, jobs running, failed (parked) and done, workers, files by state,
    and the last errors."""
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate; rich)
    from rich.console import Console
    from rich.table import Table

    from edirecon.engine.scale.queue import status as queue_status

    configure_logging(False)
    s = queue_status(db)
    if as_json:
        typer.echo(json.dumps(s, indent=1, default=str))
        raise typer.Exit(0)
    table = Table(title="edirecon status", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, key in (
        ("jobs waiting (queue depth)", "queue_depth"),
        ("jobs running", "running"),
        ("jobs failed (parked)", "failed"),
        ("jobs done", "succeeded"),
        ("workers", "workers"),
    ):
        table.add_row(label, str(s[key]))
    for state, n in sorted(s["files"].items()):
        table.add_row(f"files {state}", str(n))
    Console().print(table)
    for job in s["failed_jobs"]:
        typer.echo(f"failed job {job['id']} {job['task_name']} after {job['attempts']} attempts (edirecon retry --db … {job['id']})")
    for error in s["last_errors"]:
        typer.echo(f"{error['failed_at']:%Y-%m-%d %H:%M:%S} {error['task']}: {error['error']}")
    raise typer.Exit(0)


@app.command()
def retry(
    db: QueueDbOpt,
    job_ids: Annotated[list[int] | None, typer.Argument(help="Failed job ids to run again; none: every failed job.", show_default=False)] = None,
) -> None:
    """Put parked (failed) jobs back in the queue."""
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    from edirecon.engine.scale.queue import retry as retry_jobs

    configure_logging(False)
    chosen = retry_jobs(db, job_ids or None)
    typer.echo(f"{len(chosen)} job(s) back in the queue" + (f": {', '.join(map(str, chosen))}" if chosen else ""))
    raise typer.Exit(0)


# -- the refund workflow and the reports (docs/workflow-and-reports.md) ------------------------

refund_app = typer.Typer(
    name="refund",
    cls=_OneShot,
    help="The refund workflow: list, show, approve, hold, mark-sent, void, mark-cashed, mark-recovered, acknowledge, assign, note (with an audit trail).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(refund_app, name="refund")

UserOpt = Annotated[str | None, typer.Option("--user", help="Who takes the action, for the audit trail; default the OS user.")]
NoteOpt = Annotated[str, typer.Option("--note", help="A note for the audit trail.")]
RefundIdArg = Annotated[str, typer.Argument(help="The refund_id (RF-…) of refund_requests.csv.", show_default=False)]
RefundIdsArg = Annotated[list[str] | None, typer.Argument(help="refund_ids (RF-…) of refund_requests.csv, each acted on its own.", show_default=False)]
FromOpt = Annotated[Path | None, typer.Option("--from", help="A file of refund ids: one per line, or a CSV with a refund_id column (a filtered worklist.csv).")]


@refund_app.command("list")
def refund_list(
    db: DbOpt = DEFAULT_DB,
    as_of: AsOfOpt = None,
    config: WorkflowConfigOpt = None,
    status: Annotated[list[str] | None, typer.Option("--status", help="Only refunds in this workflow status (repeatable).")] = None,
    payer: Annotated[str | None, typer.Option("--payer", help="Only refunds to this payer id.")] = None,
    escheatment: Annotated[bool, typer.Option("--escheatment", help="Only patient refunds sent and not cashed for the escheatment period.")] = False,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only refunds still to be worked (pending, held, approved) past their due day.")] = False,
    due_before: Annotated[str | None, typer.Option("--due-before", help="Only refunds due before this day (YYYY-MM-DD).")] = None,
    reason: Annotated[list[str] | None, typer.Option("--reason", help="Only refunds for this reason, e.g. DUPLICATE_PAYMENT (repeatable).")] = None,
    payee_type: Annotated[str | None, typer.Option("--payee-type", help="Only refunds to a payer or to a patient: payer or patient.")] = None,
    assigned_to: Annotated[
        str | None, typer.Option("--assigned-to", help='Only refunds assigned to this user (`refund assign`); "" for those assigned to nobody.')
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table (for people, 120 columns), csv (spreadsheet-safe) or json (one document).")] = "table",
) -> None:
    """List refunds by due date: the work queue, with patient, account, payer, workflow status and
    flags (overdue, double refund, escheatment candidate), after syncing the workflow with the
    engine's current decisions."""
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    from edirecon.engine.workflow import views

    configure_logging(False)
    if fmt not in views.LIST_FORMATS:
        raise UsageError(f"--format {fmt!r} is not one of {', '.join(views.LIST_FORMATS)}")
    before = _day(due_before, "--due-before")
    rows = views.refund_list(
        db,
        _today(as_of),
        Config.load(config),
        status or (),
        payer,
        escheatment,
        overdue=overdue,
        due_before=before,
        reasons=reason or (),
        payee_type=payee_type,
        assigned_to=assigned_to,
    )
    render = {"table": views.list_table, "csv": views.list_csv, "json": views.list_json}[fmt]
    typer.echo(render(rows), nl=False)


@refund_app.command("show")
def refund_show(
    refund_id: RefundIdArg,
    db: DbOpt = DEFAULT_DB,
    as_of: AsOfOpt = None,
    config: WorkflowConfigOpt = None,
) -> None:
    """Show one refund: what the engine found, its workflow state, and its audit trail."""
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    from edirecon.engine.workflow.views import refund_detail

    configure_logging(False)
    d = refund_detail(db, refund_id, _today(as_of), Config.load(config))
    lines = [f"refund {d.refund_id}", *(f"  {label:<18}{text}" for label, text in d.fields), "history"]
    for h in d.history:
        arrow = f"{h.from_status or '(new)'} -> {h.to_status}"
        lines.append(f"  {h.at:%Y-%m-%dT%H:%M:%SZ}  {h.user:<10}  {h.action:<15}  {arrow}" + (f"  {h.note}" if h.note else ""))
    typer.echo("\n".join(lines))


def read_refund_ids(path: Path) -> list[str]:
    """The refund ids of a --from file: one per line, or the ``refund_id`` column of a CSV with a
    header row (such as a filtered worklist.csv); blank lines and cells are skipped."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--from {path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from exc
    lines = [line for line in text.splitlines() if line.strip()]
    header = [h.strip() for h in next(csv.reader(lines[:1]), [])]
    if "refund_id" in header:
        ids = [(row.get("refund_id") or "").strip() for row in csv.DictReader(io.StringIO(text), fieldnames=header)][1:]
    elif len(header) > 1:
        raise UsageError(f"--from {path}: a CSV needs a refund_id column (its header is {', '.join(header[:8])})")
    else:
        ids = [line.strip() for line in lines]
    ids = [i for i in ids if i]
    if not ids:
        raise UsageError(f"--from {path}: holds no refund id")
    return ids


def _act(
    refund_ids: Sequence[str] | None,
    from_file: Path | None,
    action: str,
    db: str,
    as_of: str | None,
    config: Path | None,
    user: str | None,
    note: str,
    **details: Any,
) -> None:
    """Take the action on each refund given (arguments, then --from), each on its own; exit 1 when any was refused."""
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    from edirecon.engine.workflow.views import take_action

    configure_logging(False)
    ids = [*(refund_ids or []), *(read_refund_ids(from_file) if from_file is not None else [])]
    if not ids:
        raise UsageError("no refund id: give refund ids (RF-…) or --from FILE")
    who, outcomes = take_action(db, ids, action, user, _today(as_of), Config.load(config), note, **details)
    for o in outcomes:
        if o.refused is None:
            assigned = (f", assigned to {o.assigned_to}" if o.assigned_to else ", assigned to nobody") if action == "assign" else ""
            typer.echo(f"{o.refund_id}: {action} by {who}; now {o.status}{assigned}")
        else:
            typer.echo(f"edirecon: {o.refused}", err=True)
    refused = sum(1 for o in outcomes if o.refused is not None)
    if len(outcomes) > 1:
        typer.echo(f"{action}: {len(outcomes) - refused} done, {refused} refused")
    raise typer.Exit(1 if refused else 0)


@refund_app.command("approve")
def refund_approve(
    refund_ids: RefundIdsArg = None,
    from_file: FromOpt = None,
    db: DbOpt = DEFAULT_DB,
    as_of: AsOfOpt = None,
    config: WorkflowConfigOpt = None,
    user: UserOpt = None,
    note: NoteOpt = "",
) -> None:
    """Approve pending or held refunds for sending (not one the payer already took back)."""
    _act(refund_ids, from_file, "approve", db, as_of, config, user, note)


@refund_app.command("hold")
def refund_hold(
    refund_ids: RefundIdsArg = None,
    from_file: FromOpt = None,
    db: DbOpt = DEFAULT_DB,
    as_of: AsOfOpt = None,
    config: WorkflowConfigOpt = None,
    user: UserOpt = None,
    note: NoteOpt = "",
) -> None:
    """Hold pending or approved refunds (e.g. while a payer is asked, or a patient credit kept on account)."""
    _act(refund_ids, from_file, "hold", db, as_of, config, user, note)


@refund_app.command("mark-sent")
def refund_mark_sent(
    refund_ids: RefundIdsArg = None,
    from_file: FromOpt = None,
    method: Annotated[str, typer.Option("--method", help="check, eft or adjustment (an adjustment bill).")] = "check",
    reference: Annotated[str, typer.Option("--reference", help="The check or EFT number.")] = "",
    sent_on: Annotated[str | None, typer.Option("--date", help="The day it was sent (YYYY-MM-DD); default --as-of.")] = None,
    amount: Annotated[str | None, typer.Option("--amount", help="The amount sent (one refund only); default, and at most, what is outstanding.")] = None,
    db: DbOpt = DEFAULT_DB,
    as_of: AsOfOpt = None,
    config: WorkflowConfigOpt = None,
    user: UserOpt = None,
    note: NoteOpt = "",
) -> None:
    """Record that approved refunds were sent: method, check or EFT number, date and amount."""
    day, sent = _day(sent_on, "--date"), _amount(amount)
    _act(refund_ids, from_file, "mark-sent", db, as_of, config, user, note, method=method, reference=reference, day=day, amount=sent)


@refund_app.command("void")
def refund_void(
    refund_ids: RefundIdsArg = None,
    from_file: FromOpt = None,
    db: DbOpt = DEFAULT_DB,
    as_of: AsOfOpt = None,
    config: WorkflowConfigOpt = None,
    user: UserOpt = None,
    note: Annotated[str, typer.Option("--note", help="Why it is voided (required).")] = "",
) -> None:
    """Void refunds not owed after review, or sent refunds whose payment was stopped."""
    _act(refund_ids, from_file, "void", db, as_of, config, user, note)


@refund_app.command("mark-cashed")
def refund_mark_cashed(
    refund_ids: RefundIdsArg = None,
    from_file: FromOpt = None,
    cashed_on: Annotated[str | None, typer.Option("--date", help="The day the check was cashed; default --as-of.")] = None,
    db: DbOpt = DEFAULT_DB,
    as_of: AsOfOpt = None,
    config: WorkflowConfigOpt = None,
    user: UserOpt = None,
    note: NoteOpt = "",
) -> None:
    """Record that patients cashed refund checks (they are then no escheatment candidates)."""
    _act(refund_ids, from_file, "mark-cashed", db, as_of, config, user, note, day=_day(cashed_on, "--date"))


@refund_app.command("mark-recovered")
def refund_mark_recovered(
    refund_ids: RefundIdsArg = None,
    from_file: FromOpt = None,
    recovered_on: Annotated[str | None, typer.Option("--date", help="The day the money came back; default --as-of.")] = None,
    amount: Annotated[str | None, typer.Option("--amount", help="The amount recovered (one refund only); default, and at most, the double refund.")] = None,
    reference: Annotated[str, typer.Option("--reference", help="The payer's check or EFT number.")] = "",
    db: DbOpt = DEFAULT_DB,
    as_of: AsOfOpt = None,
    config: WorkflowConfigOpt = None,
    user: UserOpt = None,
    note: NoteOpt = "",
) -> None:
    """Record that double refunds were recovered from the payer."""
    day, got = _day(recovered_on, "--date"), _amount(amount)
    _act(refund_ids, from_file, "mark-recovered", db, as_of, config, user, note, day=day, amount=got, reference=reference)


@refund_app.command("acknowledge")
def refund_acknowledge(
    refund_ids: RefundIdsArg = None,
    from_file: FromOpt = None,
    reference: Annotated[str, typer.Option("--reference", help="The reference of the payer's letter or portal confirmation (required).")] = "",
    confirmed_on: Annotated[str | None, typer.Option("--date", help="The day of the payer's confirmation, YYYY-MM-DD (required).")] = None,
    db: DbOpt = DEFAULT_DB,
    as_of: AsOfOpt = None,
    config: WorkflowConfigOpt = None,
    user: UserOpt = None,
    note: NoteOpt = "",
) -> None:
    """Record that payers confirmed receipt of sent refunds by letter or portal (as a PLB 72 would): now acknowledged."""
    _act(refund_ids, from_file, "acknowledge", db, as_of, config, user, note, reference=reference, day=_day(confirmed_on, "--date"))


@refund_app.command("assign")
def refund_assign(
    refund_ids: RefundIdsArg = None,
    from_file: FromOpt = None,
    to: Annotated[str | None, typer.Option("--to", help='The user to assign them to (required); --to "" unassigns.')] = None,
    db: DbOpt = DEFAULT_DB,
    as_of: AsOfOpt = None,
    config: WorkflowConfigOpt = None,
    user: UserOpt = None,
    note: NoteOpt = "",
) -> None:
    """Assign refunds to a user (or unassign them), in any status; the status does not change."""
    _act(refund_ids, from_file, "assign", db, as_of, config, user, note, assignee=to)


@refund_app.command("note")
def refund_note(
    refund_ids: RefundIdsArg = None,
    from_file: FromOpt = None,
    db: DbOpt = DEFAULT_DB,
    as_of: AsOfOpt = None,
    config: WorkflowConfigOpt = None,
    user: UserOpt = None,
    note: Annotated[str, typer.Option("--note", help="The text to record (required).")] = "",
) -> None:
    """Add a note to the audit trail of refunds, in any status; nothing else changes."""
    _act(refund_ids, from_file, "note", db, as_of, config, user, note)


# -- users, roles and API tokens (docs/users.md) -------------------------------------------------

user_app = typer.Typer(
    name="user",
    cls=_OneShot,
    help="The users of `edirecon serve`: add (with a role and a password), list, disable.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(user_app, name="user")
token_app = typer.Typer(
    name="token",
    cls=_OneShot,
    help="API tokens of `edirecon serve`: create one for a user (shown once), revoke one.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(token_app, name="token")

UserNameArg = Annotated[str, typer.Argument(help="The user's name (letters, digits, '.', '_', '@', '-'; at most 64).", show_default=False)]


def _new_password(from_stdin: bool) -> str:
    """The password of `user add`: stdin's first line (--password-stdin), or typed twice, hidden."""
    if from_stdin:
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    return password


@user_app.command("add")
def user_add(
    name: UserNameArg,
    role: Annotated[str, typer.Option("--role", help="viewer, analyst, approver or admin (docs/users.md).", show_default=False)],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of stdin instead of asking for it twice.")
    ] = False,
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Add a user with a role and a password of at least 12 characters (the store is created when missing)."""
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, argon2)
    from edirecon.engine.store.connection import open_store
    from edirecon.engine.workflow.users import add_user, check_name, check_role

    configure_logging(False)
    check_name(name)
    check_role(role)
    password = _new_password(password_stdin)
    store = open_store(db, create=True)
    try:
        user = add_user(store, name, role, password)
    finally:
        store.dispose()
    typer.echo(f"user {user.name} added ({user.role})")


@user_app.command("list")
def user_list(db: DbOpt = DEFAULT_DB) -> None:
    """List the users: role, state (active, locked, disabled), API tokens not revoked, when added."""
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, argon2)
    from edirecon.engine.store.connection import open_store
    from edirecon.engine.workflow.users import now, users

    configure_logging(False)
    store = open_store(db)
    try:
        found, at = users(store), now()
    finally:
        store.dispose()
    typer.echo(f"{'user':<20}  {'role':<8}  {'tokens':>6}  {'added':<16}  state")
    for u in found:
        typer.echo(f"{u.name:<20}  {u.role:<8}  {u.active_tokens:>6}  {u.created_at:%Y-%m-%d %H:%M}  {u.state(at)}")
    typer.echo(f"{len(found)} user(s)")


@user_app.command("disable")
def user_disable(name: UserNameArg, db: DbOpt = DEFAULT_DB) -> None:
    """Disable a user: its logins and API tokens are refused from now on (it stays listed)."""
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, argon2)
    from edirecon.engine.store.connection import open_store
    from edirecon.engine.workflow.users import disable_user

    configure_logging(False)
    store = open_store(db)
    try:
        user, changed = disable_user(store, name)
    finally:
        store.dispose()
    typer.echo(f"user {user.name} {'disabled' if changed else 'was already disabled'}")


@token_app.command("create")
def token_create(name: UserNameArg, db: DbOpt = DEFAULT_DB) -> None:
    """Make an API token for a user and print it alone on the last line: it is shown once, and
    only its SHA-256 is stored."""
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, argon2)
    from edirecon.engine.store.connection import open_store
    from edirecon.engine.workflow.users import create_token, get_user

    configure_logging(False)
    store = open_store(db)
    try:
        token = create_token(store, name)
        role = get_user(store, name).role
    finally:
        store.dispose()
    typer.echo(f"API token {token.token_id} for {token.user} ({role}); it is shown once, keep it now:")
    typer.echo(token.text)


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (the 8 characters after edr_), or the whole token.", show_default=False)],
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Revoke an API token: it is refused from now on."""
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, argon2)
    from edirecon.engine.store.connection import open_store
    from edirecon.engine.workflow.users import revoke_token

    configure_logging(False)
    store = open_store(db)
    try:
        known, user, changed = revoke_token(store, token_id)
    finally:
        store.dispose()
    typer.echo(f"API token {known} of {user} {'revoked' if changed else 'was already revoked'}")


class LateProgress:
    """A progress bar on stderr that appears only when the work takes more than ``delay`` seconds,
    and only on a terminal (never in a pipe, a log or a test's captured output); it is gone when
    the work ends."""

    def __init__(self, console: Any, total: int, delay: float = 1.0) -> None:
        # deferred: rich only where a command shows progress
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=console, transient=True
        )
        self.task = self.bar.add_task("starting", total=total)
        self.timer = threading.Timer(delay, self.bar.start) if console.is_terminal else None
        self.steps = 0

    def step(self, name: str) -> None:
        """A step begins: the bar shows its name and the steps done."""
        self.bar.update(self.task, description=name, completed=self.steps)
        self.steps += 1

    def __enter__(self) -> "LateProgress":
        if self.timer is not None:
            self.timer.daemon = True
            self.timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer.join()
        if self.bar.live.is_started:  # stopping a bar never started would still write a line
            self.bar.stop()


@app.command()
def report(
    db: DbOpt = DEFAULT_DB,
    out: Annotated[Path, typer.Option("--out", help="Folder for the reports (rewritten in full).")] = Path("report"),
    as_of: AsOfOpt = None,
    quarter: Annotated[str | None, typer.Option("--quarter", help="The CMS-838 quarter, e.g. 2026Q4; default the last quarter ended by --as-of.")] = None,
    config: WorkflowConfigOpt = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Processes deciding the store shard by shard (as run does: from 2,000 claims with more than one); 1: in one process; default: one per core.",
        ),
    ] = None,
    verbose: Annotated[bool, verbose_option("Log the report as a structured event on stderr.")] = False,
) -> None:
    """Write the credit-balance reports from the store: the refund worklist with aging and totals
    per payer, follow-ups (double refunds, escheatment candidates), the reconciliation audit,
    root-cause analytics, the CMS-838, refund packets (PDF), a self-contained HTML dashboard, and
    the team's work on each refund (workflow.csv, workflow.jsonl).
    """
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate; rich)
    from rich.console import Console

    from edirecon.engine.record.writers import money
    from edirecon.engine.reports.cms838 import Quarter
    from edirecon.engine.reports.report import STEPS
    from edirecon.engine.reports.report import report as write_report

    configure_logging(verbose)
    _out_folder(out)
    day, cfg = _today(as_of), Config.load(config)
    q = Quarter.parse(quarter) if quarter else Quarter.last_ended(day)
    with LateProgress(Console(stderr=True), len(STEPS)) as progress:
        rep = write_report(db, out, day, cfg, q, progress=progress.step, workers=workers)
    total = rep.totals[-1]
    typer.echo(f"worklist: {total['count']} open refund(s), {money(total['outstanding'])} outstanding, {total['overdue_count']} overdue")
    typer.echo(f"follow-ups: {len(rep.followups)}; audit discrepancies: {len(rep.discrepancies)}; CMS-838 {q}: {len(rep.cms838)} row(s)")
    typer.echo(f"reports written to {out}/")
    for warning in rep.warnings:
        typer.echo(f"edirecon: warning: {warning}", err=True)
    if rep.not_mailable:
        typer.echo(f"edirecon: {len(rep.not_mailable)} letter(s) have no address and cannot be mailed: see letters.not_mailable in {out}/report.json", err=True)
    for pdf, count in sorted(rep.unprintable.items()):
        typer.echo(
            f"edirecon: {pdf}: {count} character(s) have no glyph in any installed font and print as '?' "
            "(install a font that has them, e.g. Noto Sans CJK for Chinese)",
            err=True,
        )


SECRET_ENV = "EDIRECON_SECRET"


@app.command()
def serve(
    db: DbOpt = DEFAULT_DB,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; localhost by default (put a TLS-terminating reverse proxy in front).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 8000,
    config: WorkflowConfigOpt = None,
    verbose: Annotated[bool, verbose_option("Log each request as a structured event on stderr.")] = False,
) -> None:
    """Serve the web work queue (/login, /worklist) and the JSON API (/api/v1) over the store.

    Sessions are signed with $EDIRECON_SECRET; without it, with a random secret, and every
    session ends when the server stops."""
    # deferred: each command loads only the libraries it uses (FastAPI and uvicorn only here)
    import os
    import secrets

    import uvicorn

    from edirecon.engine.web.app import create_app

    configure_logging(verbose)
    secret = os.environ.get(SECRET_ENV) or secrets.token_urlsafe(32)
    uvicorn.run(create_app(db, Config.load(config), secret), host=host, port=port, log_config=None, access_log=False)


if __name__ == "__main__":  # pragma: no cover
    app()
