"""The ``edirecon`` command line: a thin layer over the library.

Exit codes (every command): 0 clean, 1 the input had error findings, 2 usage or unreadable input.
Findings go to stderr as ``file:segment:offset: CODE message``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal, InvalidOperation
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any

import typer

from edirecon import parsers
from edirecon.parsers.serialize import record_dict

app = typer.Typer(
    name="edirecon",
    help="Health-care EDI credit-balance engine: read X12 837 claims and 835 remittances exactly.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version() -> str:
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


#: the environment variables giving every command its default --db and --config (the option wins)
DB_ENV, CONFIG_ENV = "EDIRECON_DB", "EDIRECON_CONFIG"

#: files met while recursing a folder that are documentation, golden outputs or patient payments
NOT_X12_SUFFIXES = (".md", ".json", ".jsonl", ".csv")


def expand_inputs(paths: list[Path]) -> list[Path]:
    """The X12 files to read: see ``parsers.find_files``."""
    return parsers.find_files(paths, NOT_X12_SUFFIXES)


def ack_names(paths: list[Path]) -> dict[Path, str]:
    """Acknowledgments are named after their file; files of the same name get their path in the name."""
    counts: dict[str, int] = {}
    for p in paths:
        counts[p.name] = counts.get(p.name, 0) + 1
    return {p: p.name if counts[p.name] == 1 else "__".join(p.parts[-3:]).replace("..", "") for p in paths}


@contextmanager
def _failures(db: str | None = None) -> Iterator[None]:
    """Whatever the store, the database URL, the file system or the validator raises, as one line
    on stderr and exit 2 (an ``EdireconError``: its own exit code).  No traceback reaches a user;
    no password (masked) and no SQL parameters (a database error is named by its kind)."""
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from edirecon.engine.store.connection import mask_credentials, store_error

    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise
    except parsers.EdireconError as exc:
        typer.echo(f"edirecon: {mask_credentials(exc)}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except (SQLAlchemyError, CommandError) as exc:
        typer.echo(f"edirecon: {store_error(exc, db or '')}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        typer.echo(f"edirecon: {mask_credentials(where)}{exc.strerror or type(exc).__name__}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # a bug: its kind only (its text could quote patient data)
        typer.echo(f"edirecon: internal error ({type(exc).__name__}); please report it with the command that failed", err=True)
        raise typer.Exit(2) from None


def _out_folder(out: Path) -> None:
    """--out must be a folder, or a path where one can be made: said before the store is touched."""
    if out.exists() and not out.is_dir():
        raise parsers.UsageError(f"--out {out} is a file, not a folder: give a folder (it is created when missing)")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise parsers.UsageError(f"--out {out}: {parent} is a file, not a folder")
            break


def _report(findings: list[parsers.Finding]) -> None:
    for f in findings:
        typer.echo(str(f), err=True)


FilesArg = Annotated[list[Path], typer.Argument(help="X12 files, or folders to read recursively.", show_default=False)]


@app.command()
def parse(
    files: FilesArg,
    summary: Annotated[bool, typer.Option("--summary", help="One line per file with counts instead of records.")] = False,
) -> None:
    """Parse 837 and 835 files into JSON Lines: one object per claim, claim payment and PLB adjustment.

    Each object has "record" (claim, claim_payment, provider_adjustment), "transaction_type"
    (837P, 837I, 837D, 835), every field read, "trusted" (false when its transaction set has
    envelope errors) and "source" (file, segment, offset, isa13, gs06, st02, loop).
    """
    had_errors = False
    out = sys.stdout
    with _failures():
        for path in expand_inputs(files):
            file_summary = parsers.FileSummary(str(path))
            if summary:
                for _ in parsers.iter_records(path, file_summary, str(path)):
                    pass
                out.write(_summary_line(file_summary) + "\n")
            else:
                for record in parsers.iter_records(path, file_summary, str(path)):
                    out.write(json.dumps(record_dict(record), separators=(",", ":")) + "\n")
            out.flush()
            _report(file_summary.findings)
            had_errors |= file_summary.has_errors
    raise typer.Exit(1 if had_errors else 0)


def _summary_line(s: parsers.FileSummary) -> str:
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
    from edirecon.parsers.validate import validate_file

    had_errors = False
    with _failures():
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
            had_errors |= any(f.severity is parsers.Severity.ERROR for f in result.findings)
    raise typer.Exit(1 if had_errors else 0)


def _configure_logging(verbose: bool) -> None:
    """Structured log events (JSON lines) on stderr; info events only with --verbose."""
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    import logging

    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    import structlog

    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"), structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO if verbose else logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


@app.command()
def run(
    inputs: Annotated[list[Path], typer.Argument(help="837/835 files, patient-payment CSVs, or folders to read recursively.", show_default=False)],
    db: Annotated[str, typer.Option("--db", envvar=DB_ENV, help="SQLAlchemy URL of the store (SQLite or PostgreSQL).")] = "sqlite:///edirecon.db",
    out: Annotated[Path, typer.Option("--out", help="Folder for the outputs (rewritten in full each run).")] = Path("out"),
    as_of: Annotated[str | None, typer.Option("--as-of", help="The day the run is taken to happen (YYYY-MM-DD); default today.")] = None,
    config: Annotated[Path | None, typer.Option("--config", envvar=CONFIG_ENV, help="TOML file: refund deadlines and federal payers.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Processes ingesting files side by side; default: one per core.")] = None,
    queue: Annotated[bool, typer.Option("--queue", help="PostgreSQL: defer ingestion as jobs to `edirecon worker` processes and wait for them.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Log every file as a structured event on stderr.")] = False,
) -> None:
    """Find credit balances: ingest claims, remittances and patient payments, then write refund
    requests, recoupments, credit balances, exceptions and a summary to --out.

    Running the same inputs again changes nothing.
    """

    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    from edirecon.engine.config import Config
    from edirecon.engine.run import input_files
    from edirecon.engine.run import run as run_engine

    _configure_logging(verbose)
    # a batch job allocating millions of short-lived objects: collect the young generation less
    # often (the default 700 makes the collector rescan surviving batches again and again)
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    import gc

    gc.set_threshold(200_000, 50, 100)
    console = Console(stderr=True)
    day = _day_option(as_of, "--as-of") or date.today()
    with _failures(db):
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
    raise typer.Exit(0)


def _configure_watch_logging(verbose: bool) -> None:
    """One JSON line per watcher event on stderr; the engine's own per-file events only with --verbose."""
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    import logging

    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    import structlog

    def only_watch(_logger: object, method: str, event: dict[str, object]) -> dict[str, object]:
        if method in ("debug", "info") and event.get("component") != "watch" and not verbose:
            raise structlog.DropEvent
        return event

    structlog.configure(
        processors=[only_watch, structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"), structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )


@app.command()
def watch(
    root: Annotated[
        Path,
        typer.Argument(
            help="The drop-folder root, which must exist (inbound/, work/, archive/, error/, ack/, outbound/ are created under it).", show_default=False
        ),
    ],
    db: Annotated[str, typer.Option("--db", envvar=DB_ENV, help="SQLAlchemy URL of the store (SQLite or PostgreSQL).")] = "sqlite:///edirecon.db",
    once: Annotated[bool, typer.Option("--once", help="Poll twice, process what is ready, publish, and exit (for cron and tests).")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between polls.", min=0.01)] = 2.0,
    as_of: Annotated[str | None, typer.Option("--as-of", help="The day the outputs are taken to be made (YYYY-MM-DD); default the day of each batch.")] = None,
    config: Annotated[Path | None, typer.Option("--config", envvar=CONFIG_ENV, help="TOML file: refund deadlines and federal payers (as for run).")] = None,
    duplicate_window: Annotated[
        int, typer.Option("--duplicate-window", help="Days within which the same sender (ISA06) and ISA13 is a duplicate.", min=0)
    ] = 365,
    queue: Annotated[bool, typer.Option("--queue", help="PostgreSQL: defer each file's parse-and-ingest to `edirecon worker` jobs.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Also log the engine's own per-file events.")] = False,
    create: Annotated[bool, typer.Option("--create", help="Create ROOT when it does not exist (without it, a missing ROOT is a usage error).")] = False,
) -> None:
    """Watch clearinghouse drop folders: ingest what partners drop in ROOT/inbound/, acknowledge
    837s in ack/, quarantine bad files in error/, archive the rest, and publish the outputs of
    run (with a manifest) in outbound/.

    Exit codes: 0 done (or stopped by SIGTERM/SIGINT); 1 with --once when a file was quarantined
    or an entry rejected; 2 usage or store error (a ROOT that does not exist, without --create).
    """
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    from datetime import timedelta

    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    from edirecon.engine.config import Config
    from edirecon.engine.dropfolder.watch import Options
    from edirecon.engine.dropfolder.watch import watch as watch_root

    _configure_watch_logging(verbose)
    day = _day_option(as_of, "--as-of")
    with _failures(db):
        if queue:
            # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
            from edirecon.engine.scale.queue import conninfo

            conninfo(db)  # the queue lives in PostgreSQL: a SQLite URL is a usage error
        options = Options(
            interval=interval, once=once, as_of=day, config=Config.load(config), duplicate_window=timedelta(days=duplicate_window), queue=queue, create=create
        )
        code = watch_root(root, db, options)
    raise typer.Exit(code)


@app.command()
def worker(
    db: Annotated[str, typer.Option("--db", envvar=DB_ENV, help="postgresql:// URL of the store, whose database is also the job queue.")],
    config: Annotated[Path | None, typer.Option("--config", envvar=CONFIG_ENV, help="TOML file: refund deadlines and federal payers (as for run).")] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="Jobs at once in this process (parsing is CPU-bound: run one worker per core instead).")
    ] = 1,
    stalled_after: Annotated[
        float, typer.Option("--stalled-after", min=1, help="Seconds without a heartbeat after which a worker's job is put back in the queue.")
    ] = 30.0,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="The day (YYYY-MM-DD) detections are taken to happen for jobs that carry no day of their own (the jobs of run and watch carry their --as-of); default today.",
        ),
    ] = None,
) -> None:
    """Work the job queue (procrastinate on PostgreSQL): ingest files and parts of files, and
    detect refunds by claim number, until SIGTERM/SIGINT (the job in hand is finished first).

    Any number of workers on any number of machines may share one database.
    """
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    from edirecon.engine.config import Config
    from edirecon.engine.scale.queue import run_worker

    _configure_logging(True)
    day = _day_option(as_of, "--as-of")
    with _failures(db):
        run_worker(db, Config.load(config), concurrency=concurrency, stalled_after=stalled_after, as_of=day)


@app.command()
def status(
    db: Annotated[str, typer.Option("--db", envvar=DB_ENV, help="postgresql:// URL of the store and its job queue.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Show the job queue: depth, jobs running, failed (parked) and done, workers, files by state,
    and the last errors."""
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    import json

    from rich.console import Console
    from rich.table import Table

    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    from edirecon.engine.scale.queue import status as queue_status

    _configure_logging(False)
    with _failures(db):
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
    db: Annotated[str, typer.Option("--db", envvar=DB_ENV, help="postgresql:// URL of the store and its job queue.")],
    job_ids: Annotated[list[int] | None, typer.Argument(help="Failed job ids to run again; none: every failed job.", show_default=False)] = None,
) -> None:
    """Put parked (failed) jobs back in the queue."""
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    from edirecon.engine.scale.queue import retry as retry_jobs

    _configure_logging(False)
    with _failures(db):
        chosen = retry_jobs(db, job_ids or None)
    typer.echo(f"{len(chosen)} job(s) back in the queue" + (f": {', '.join(map(str, chosen))}" if chosen else ""))
    raise typer.Exit(0)


# -- the refund workflow and the reports (docs/workflow-and-reports.md) ------------------------

refund_app = typer.Typer(
    name="refund",
    help="The refund workflow: list, show, approve, hold, mark-sent, void, mark-cashed, mark-recovered (with an audit trail).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(refund_app, name="refund")

DbOpt = Annotated[str, typer.Option("--db", envvar=DB_ENV, help="SQLAlchemy URL of the store (SQLite or PostgreSQL).")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="The day taken as today (YYYY-MM-DD); default today.")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", envvar=CONFIG_ENV, help="TOML file: deadlines, auto-approval rules, hold threshold, escheatment period.")
]
UserOpt = Annotated[str | None, typer.Option("--user", help="Who takes the action, for the audit trail; default the OS user.")]
NoteOpt = Annotated[str, typer.Option("--note", help="A note for the audit trail.")]
RefundIdArg = Annotated[str, typer.Argument(help="The refund_id (RF-…) of refund_requests.csv.", show_default=False)]
RefundIdsArg = Annotated[list[str] | None, typer.Argument(help="refund_ids (RF-…) of refund_requests.csv, each acted on its own.", show_default=False)]
FromOpt = Annotated[Path | None, typer.Option("--from", help="A file of refund ids: one per line, or a CSV with a refund_id column (a filtered worklist.csv).")]


def _day_option(value: str | None, name: str) -> date | None:

    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        typer.echo(f"edirecon: {name} {value!r} is not a date (YYYY-MM-DD)", err=True)
        raise typer.Exit(2) from None


def _amount_option(value: str | None) -> Decimal | None:

    if value is None:
        return None
    try:
        amount = Decimal(value)
        if not amount.is_finite() or amount.as_tuple().exponent < -2:  # type: ignore[operator]
            raise InvalidOperation
    except InvalidOperation:
        typer.echo(f"edirecon: --amount {value!r} is not an amount with at most two decimals", err=True)
        raise typer.Exit(2) from None
    return amount


def _workflow(db: str, as_of: str | None, config: Path | None) -> tuple[Any, date, Any]:

    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    from edirecon.engine.config import Config
    from edirecon.engine.workflow.refunds import open_store

    day = _day_option(as_of, "--as-of") or date.today()
    return open_store(db), day, Config.load(config)


def _flags(b: Any, v: Any) -> str:
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    from edirecon.engine.record.writers import money

    flags = []
    if v.status in ("pending", "held", "approved") and v.refund is not None and v.refund.due_by and b.as_of > v.refund.due_by:
        flags.append(f"overdue {(b.as_of - v.refund.due_by).days}d")
    if v.refund is not None and v.refund.status != "open":
        flags.append(f"engine:{v.refund.status}")
    if v.refund is None:
        flags.append("not identified by the engine")
    if v.status == "double_refund":
        flags.append(f"recover {money(v.state['double_refund_amount'])}")
    if b.escheatment_candidate(v):
        flags.append("escheatment candidate")
    return ", ".join(flags)


@refund_app.command("list")
def refund_list(
    db: DbOpt = "sqlite:///edirecon.db",
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
    status: Annotated[list[str] | None, typer.Option("--status", help="Only refunds in this workflow status (repeatable).")] = None,
    payer: Annotated[str | None, typer.Option("--payer", help="Only refunds to this payer id.")] = None,
    escheatment: Annotated[bool, typer.Option("--escheatment", help="Only patient refunds sent and not cashed for the escheatment period.")] = False,
) -> None:
    """List refunds with their workflow status, due date and flags (overdue, double refund,
    escheatment candidate), after syncing the workflow with the engine's current decisions."""
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    from edirecon.engine.record.writers import money
    from edirecon.engine.workflow.refunds import STATUSES, book

    _configure_logging(False)
    with _failures(db):
        unknown = sorted(set(status or []) - set(STATUSES))
        if unknown:
            typer.echo(f"edirecon: --status {unknown[0]!r} is not one of {', '.join(STATUSES)}", err=True)
            raise typer.Exit(2)
        store, day, cfg = _workflow(db, as_of, config)
        try:
            b = book(store, day, cfg)
        finally:
            store.dispose()
    shown = [
        v
        for v in b.views.values()
        if (not status or v.status in status) and (payer is None or v.state["payer_id"] == payer) and (not escheatment or b.escheatment_candidate(v))
    ]
    typer.echo(f"{'refund_id':<19}  {'status':<13}  {'reason':<19}  {'payee':<13}  {'amount':>9}  {'due_by':<10}  flags")
    for v in shown:
        due = v.refund.due_by.isoformat() if v.refund is not None and v.refund.due_by else ""
        payee = f"payer {v.state['payer_id']}" if v.payee_type == "payer" else "patient"
        typer.echo(f"{v.refund_id:<19}  {v.status:<13}  {v.state['reason']:<19}  {payee:<13}  {money(v.amount):>9}  {due:<10}  {_flags(b, v)}".rstrip())
    typer.echo(f"{len(shown)} refund(s)")


@refund_app.command("show")
def refund_show(
    refund_id: RefundIdArg,
    db: DbOpt = "sqlite:///edirecon.db",
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show one refund: what the engine found, its workflow state, and its audit trail."""
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    from edirecon.engine.record.writers import money
    from edirecon.engine.workflow.refunds import book, events

    _configure_logging(False)
    with _failures(db):
        store, day, cfg = _workflow(db, as_of, config)
        try:
            b = book(store, day, cfg)
            v = b.view(refund_id)
            trail = events(store, refund_id)
        finally:
            store.dispose()
    s, r = v.state, v.refund
    lines = [f"refund {v.refund_id}", f"  status            {v.status}"]
    if r is not None:
        e = r.encounter
        lines += [
            f"  engine status     {r.status}" + (f" (recouped {money(r.recouped)})" if r.recouped else ""),
            f"  reason            {r.reason}",
            f"  payee             {'payer ' + r.payer_id + ' ' + r.payer_name if r.payee_type == 'payer' else 'patient ' + e.patient_name}",
            f"  claim             {e.pcn}" + (f", payer claim number {r.icn}" if r.icn else "") + f", billing NPI {e.npi}",
            f"  patient           {e.patient_name}, member {e.member_id}, service {e.service_from.isoformat() if e.service_from else ''}",
            f"  amount            {money(r.amount)} (outstanding {money(v.outstanding)})",
            f"  identified on     {r.identified_on.isoformat() if r.identified_on else ''}, due by {r.due_by.isoformat() if r.due_by else ''}"
            + (f", credit since {v.arose_on.isoformat()}" if v.arose_on else ""),
        ]
        for ev in r.evidence:
            if "patient_payment_id" in ev:
                lines.append(f"  evidence          patient payment {ev['patient_payment_id']} of {ev['paid_on'].isoformat()}: {money(ev['amount'])}")
            else:
                lines.append(
                    f"  evidence          {ev.get('role', 'payment')}: payer {ev['payer_id']} trace {ev['trace_number']} CLP07 "
                    f"{ev['payer_claim_control_number']} paid {money(ev['paid'])} at {ev['file']}:{ev['segment']}"
                )
    else:
        lines += [f"  reason            {s['reason']}", f"  amount            {money(s['amount'])} (the engine no longer identifies it)"]
    if s["sent_on"] is not None:
        lines.append(f"  sent              {s['method']} {s['reference']} of {money(s['sent_amount'])} on {s['sent_on'].isoformat()}")
    if s["acknowledged_by"]:
        lines.append(
            f"  acknowledged      {money(s['acknowledged_amount'])} on {s['acknowledged_on'].isoformat() if s['acknowledged_on'] else ''} (PLB {s['acknowledged_by']})"
        )
    if s["double_refund_amount"]:
        lines.append(f"  double refund     {money(s['double_refund_amount'])} to recover: {s['double_refund_traces']}")
    if s["recovered_on"] is not None:
        lines.append(f"  recovered         {money(s['recovered_amount'])} on {s['recovered_on'].isoformat()}")
    if s["cashed_on"] is not None:
        lines.append(f"  cashed            {s['cashed_on'].isoformat()}")
    if b.escheatment_candidate(v):
        lines.append(
            f"  escheatment       sent {s['sent_on'].isoformat()} and not cashed for {cfg.refunds.escheatment_days} days: unclaimed-property candidate"
        )
    lines.append("history")
    for ev in trail:
        arrow = f"{ev['from_status'] or '(new)'} -> {ev['to_status']}"
        lines.append(
            f"  {ev['at'].strftime('%Y-%m-%dT%H:%M:%SZ')}  {ev['user_name']:<10}  {ev['action']:<15}  {arrow}" + (f"  {ev['note']}" if ev["note"] else "")
        )
    typer.echo("\n".join(lines))


def read_refund_ids(path: Path) -> list[str]:
    """The refund ids of a --from file: one per line, or the ``refund_id`` column of a CSV with a
    header row (such as a filtered worklist.csv); blank lines and cells are skipped."""
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    import csv
    import io

    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise parsers.UsageError(f"--from {path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from exc
    lines = [line for line in text.splitlines() if line.strip()]
    header = [h.strip() for h in next(csv.reader(lines[:1]), [])]
    if "refund_id" in header:
        ids = [(row.get("refund_id") or "").strip() for row in csv.DictReader(io.StringIO(text), fieldnames=header)][1:]
    elif len(header) > 1:
        raise parsers.UsageError(f"--from {path}: a CSV needs a refund_id column (its header is {', '.join(header[:8])})")
    else:
        ids = [line.strip() for line in lines]
    ids = [i for i in ids if i]
    if not ids:
        raise parsers.UsageError(f"--from {path}: holds no refund id")
    return ids


def _act(
    refund_ids: list[str] | None,
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
    from edirecon.engine.workflow.refunds import act_many, default_user

    _configure_logging(False)
    with _failures(db):
        ids = [*(refund_ids or []), *(read_refund_ids(from_file) if from_file is not None else [])]
        if not ids:
            raise parsers.UsageError("no refund id: give refund ids (RF-…) or --from FILE")
        store, day, cfg = _workflow(db, as_of, config)
        try:
            who = user or default_user()
            outcomes = act_many(store, ids, action, who, day, cfg, note, **details)
        finally:
            store.dispose()
    for o in outcomes:
        if o.refused is None:
            typer.echo(f"{o.refund_id}: {action} by {who}; now {o.view.status}")
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
    db: DbOpt = "sqlite:///edirecon.db",
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
    user: UserOpt = None,
    note: NoteOpt = "",
) -> None:
    """Approve pending or held refunds for sending (not one the payer already took back)."""
    _act(refund_ids, from_file, "approve", db, as_of, config, user, note)


@refund_app.command("hold")
def refund_hold(
    refund_ids: RefundIdsArg = None,
    from_file: FromOpt = None,
    db: DbOpt = "sqlite:///edirecon.db",
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
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
    db: DbOpt = "sqlite:///edirecon.db",
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
    user: UserOpt = None,
    note: NoteOpt = "",
) -> None:
    """Record that approved refunds were sent: method, check or EFT number, date and amount."""
    _act(
        refund_ids,
        from_file,
        "mark-sent",
        db,
        as_of,
        config,
        user,
        note,
        method=method,
        reference=reference,
        day=_day_option(sent_on, "--date"),
        amount=_amount_option(amount),
    )


@refund_app.command("void")
def refund_void(
    refund_ids: RefundIdsArg = None,
    from_file: FromOpt = None,
    db: DbOpt = "sqlite:///edirecon.db",
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
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
    db: DbOpt = "sqlite:///edirecon.db",
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
    user: UserOpt = None,
    note: NoteOpt = "",
) -> None:
    """Record that patients cashed refund checks (they are then no escheatment candidates)."""
    _act(refund_ids, from_file, "mark-cashed", db, as_of, config, user, note, day=_day_option(cashed_on, "--date"))


@refund_app.command("mark-recovered")
def refund_mark_recovered(
    refund_ids: RefundIdsArg = None,
    from_file: FromOpt = None,
    recovered_on: Annotated[str | None, typer.Option("--date", help="The day the money came back; default --as-of.")] = None,
    amount: Annotated[str | None, typer.Option("--amount", help="The amount recovered (one refund only); default, and at most, the double refund.")] = None,
    reference: Annotated[str, typer.Option("--reference", help="The payer's check or EFT number.")] = "",
    db: DbOpt = "sqlite:///edirecon.db",
    as_of: AsOfOpt = None,
    config: ConfigOpt = None,
    user: UserOpt = None,
    note: NoteOpt = "",
) -> None:
    """Record that double refunds were recovered from the payer."""
    _act(
        refund_ids,
        from_file,
        "mark-recovered",
        db,
        as_of,
        config,
        user,
        note,
        day=_day_option(recovered_on, "--date"),
        amount=_amount_option(amount),
        reference=reference,
    )


@app.command()
def report(
    db: DbOpt = "sqlite:///edirecon.db",
    out: Annotated[Path, typer.Option("--out", help="Folder for the reports (rewritten in full).")] = Path("report"),
    as_of: AsOfOpt = None,
    quarter: Annotated[str | None, typer.Option("--quarter", help="The CMS-838 quarter, e.g. 2026Q4; default the last quarter ended by --as-of.")] = None,
    config: ConfigOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="Log the report as a structured event on stderr.")] = False,
) -> None:
    """Write the credit-balance reports from the store: the refund worklist with aging and totals
    per payer, follow-ups (double refunds, escheatment candidates), the reconciliation audit,
    root-cause analytics, the CMS-838, refund packets (PDF) and a self-contained HTML dashboard.
    """
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    from edirecon.engine.reports.cms838 import Quarter
    from edirecon.engine.reports.report import report as write_report

    _configure_logging(verbose)
    with _failures(db):
        _out_folder(out)
        store_url, day, cfg = db, *_workflow_day_config(as_of, config)
        q = Quarter.parse(quarter) if quarter else Quarter.last_ended(day)
        rep = write_report(store_url, out, day, cfg, q)
    total = rep.totals[-1]
    typer.echo(f"worklist: {total['count']} open refund(s), {money_text(total['outstanding'])} outstanding, {total['overdue_count']} overdue")
    typer.echo(f"follow-ups: {len(rep.followups)}; audit discrepancies: {len(rep.discrepancies)}; CMS-838 {q}: {len(rep.cms838)} row(s)")
    typer.echo(f"reports written to {out}/")
    for pdf, count in sorted(rep.unprintable.items()):
        typer.echo(
            f"edirecon: {pdf}: {count} character(s) have no glyph in any installed font and print as '?' "
            "(install a font that has them, e.g. Noto Sans CJK for Chinese)",
            err=True,
        )


def _workflow_day_config(as_of: str | None, config: Path | None) -> tuple[Any, Any]:

    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    from edirecon.engine.config import Config

    return _day_option(as_of, "--as-of") or date.today(), Config.load(config)


def money_text(value: Any) -> str:
    # deferred: each command loads only the libraries it uses (SQLAlchemy, alembic, pyx12, fpdf2, procrastinate)
    from edirecon.engine.record.writers import money

    return money(value)


if __name__ == "__main__":  # pragma: no cover
    app()
