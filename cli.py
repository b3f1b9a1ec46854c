"""The ``edirecon`` command line: a thin layer over the library.

Exit codes (every command): 0 clean, 1 the input had error findings, 2 usage or unreadable input.
Findings go to stderr as ``file:segment:offset: CODE message``.
"""

from __future__ import annotations

import json
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Optional

import typer

import parsers
from parsers.serialize import record_dict

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
        Optional[bool],
        typer.Option("--version", help="Print the version and exit.", callback=_show_version, is_eager=True),
    ] = None,
) -> None:
    """Health-care EDI credit-balance engine: read X12 837 claims and 835 remittances exactly."""


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
    try:
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
    except parsers.EdireconError as exc:
        typer.echo(f"edirecon: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
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
        Optional[Path],
        typer.Option("--ack-dir", help="Write a 999 (and a TA1 when the interchange envelope is broken) for each 837 here."),
    ] = None,
) -> None:
    """Validate files against their implementation guides with pyx12, and write acknowledgments.

    pyx12's errors are reported as findings with positions; a pyx12 failure is a finding too.
    """
    from parsers.validate import validate_file

    had_errors = False
    try:
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
    except parsers.EdireconError as exc:
        typer.echo(f"edirecon: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    raise typer.Exit(1 if had_errors else 0)


def _configure_logging(verbose: bool) -> None:
    """Structured log events (JSON lines) on stderr; info events only with --verbose."""
    import logging

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
    db: Annotated[str, typer.Option("--db", help="SQLAlchemy URL of the store (SQLite or PostgreSQL).")] = "sqlite:///edirecon.db",
    out: Annotated[Path, typer.Option("--out", help="Folder for the outputs (rewritten in full each run).")] = Path("out"),
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="The day the run is taken to happen (YYYY-MM-DD); default today.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="TOML file: refund deadlines and federal payers.")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Processes ingesting files side by side; default: one per core.")] = None,
    queue: Annotated[bool, typer.Option("--queue", help="PostgreSQL: defer ingestion as jobs to `edirecon worker` processes and wait for them.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="Log every file as a structured event on stderr.")] = False,
) -> None:
    """Find credit balances: ingest claims, remittances and patient payments, then write refund
    requests, recoupments, credit balances, exceptions and a summary to --out.

    Running the same inputs again changes nothing.
    """
    from datetime import date

    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from engine.config import Config
    from engine.run import input_files
    from engine.run import run as run_engine

    _configure_logging(verbose)
    # a batch job allocating millions of short-lived objects: collect the young generation less
    # often (the default 700 makes the collector rescan surviving batches again and again)
    import gc

    gc.set_threshold(200_000, 50, 100)
    console = Console(stderr=True)
    try:
        day = date.fromisoformat(as_of) if as_of else date.today()
    except ValueError:
        typer.echo(f"edirecon: --as-of {as_of!r} is not a date (YYYY-MM-DD)", err=True)
        raise typer.Exit(2) from None
    try:
        cfg = Config.load(config)
        total = len(input_files(inputs))
        with Progress(console=console, transient=True, disable=total < 20) as bar:
            task = bar.add_task("ingesting", total=total)
            result = run_engine(inputs, db, out, day, cfg, progress=lambda _name: bar.advance(task), workers=workers, queue=queue)
    except parsers.EdireconError as exc:
        typer.echo(f"edirecon: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
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
    import logging

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
    root: Annotated[Path, typer.Argument(help="The drop-folder root (inbound/, work/, archive/, error/, ack/, outbound/ are created under it).", show_default=False)],
    db: Annotated[str, typer.Option("--db", help="SQLAlchemy URL of the store (SQLite or PostgreSQL).")] = "sqlite:///edirecon.db",
    once: Annotated[bool, typer.Option("--once", help="Poll twice, process what is ready, publish, and exit (for cron and tests).")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between polls.", min=0.01)] = 2.0,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="The day the outputs are taken to be made (YYYY-MM-DD); default the day of each batch.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="TOML file: refund deadlines and federal payers (as for run).")] = None,
    duplicate_window: Annotated[int, typer.Option("--duplicate-window", help="Days within which the same sender (ISA06) and ISA13 is a duplicate.", min=0)] = 365,
    verbose: Annotated[bool, typer.Option("--verbose", help="Also log the engine's own per-file events.")] = False,
) -> None:
    """Watch clearinghouse drop folders: ingest what partners drop in ROOT/inbound/, acknowledge
    837s in ack/, quarantine bad files in error/, archive the rest, and publish the outputs of
    run (with a manifest) in outbound/.

    Exit codes: 0 done (or stopped by SIGTERM/SIGINT); 1 with --once when a file was quarantined;
    2 usage or store error.
    """
    from datetime import date, timedelta

    from engine.config import Config
    from engine.watch import Options
    from engine.watch import watch as watch_root

    _configure_watch_logging(verbose)
    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        typer.echo(f"edirecon: --as-of {as_of!r} is not a date (YYYY-MM-DD)", err=True)
        raise typer.Exit(2) from None
    try:
        options = Options(interval=interval, once=once, as_of=day, config=Config.load(config), duplicate_window=timedelta(days=duplicate_window))
        code = watch_root(root, db, options)
    except parsers.EdireconError as exc:
        typer.echo(f"edirecon: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    raise typer.Exit(code)


@app.command()
def worker(
    db: Annotated[str, typer.Option("--db", help="postgresql:// URL of the store, whose database is also the job queue.")],
    config: Annotated[Optional[Path], typer.Option("--config", help="TOML file: refund deadlines and federal payers (as for run).")] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Jobs at once in this process (parsing is CPU-bound: run one worker per core instead).")] = 1,
    stalled_after: Annotated[float, typer.Option("--stalled-after", min=1, help="Seconds without a heartbeat after which a worker's job is put back in the queue.")] = 30.0,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="The day detections are taken to happen (YYYY-MM-DD); default today.")] = None,
) -> None:
    """Work the job queue (procrastinate on PostgreSQL): ingest files and parts of files, and
    detect refunds by claim number, until SIGTERM/SIGINT (the job in hand is finished first).

    Any number of workers on any number of machines may share one database.
    """
    from datetime import date

    from engine.config import Config
    from engine.queue import run_worker

    _configure_logging(True)
    try:
        day = date.fromisoformat(as_of) if as_of else None
    except ValueError:
        typer.echo(f"edirecon: --as-of {as_of!r} is not a date (YYYY-MM-DD)", err=True)
        raise typer.Exit(2) from None
    try:
        run_worker(db, Config.load(config), concurrency=concurrency, stalled_after=stalled_after, as_of=day)
    except parsers.EdireconError as exc:
        typer.echo(f"edirecon: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except Exception as exc:  # the database unreachable, say: one line, no traceback
        typer.echo(f"edirecon: worker stopped: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def status(
    db: Annotated[str, typer.Option("--db", help="postgresql:// URL of the store and its job queue.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """Show the job queue: depth, jobs running, failed (parked) and done, workers, files by state,
    and the last errors."""
    import json

    from rich.console import Console
    from rich.table import Table

    from engine.queue import status as queue_status

    _configure_logging(False)
    try:
        s = queue_status(db)
    except parsers.EdireconError as exc:
        typer.echo(f"edirecon: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except Exception as exc:
        typer.echo(f"edirecon: status unavailable: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(s, indent=1, default=str))
        raise typer.Exit(0)
    table = Table(title="edirecon status", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, key in (("jobs waiting (queue depth)", "queue_depth"), ("jobs running", "running"), ("jobs failed (parked)", "failed"),
                       ("jobs done", "succeeded"), ("workers", "workers")):
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
    db: Annotated[str, typer.Option("--db", help="postgresql:// URL of the store and its job queue.")],
    job_ids: Annotated[Optional[list[int]], typer.Argument(help="Failed job ids to run again; none: every failed job.", show_default=False)] = None,
) -> None:
    """Put parked (failed) jobs back in the queue."""
    from engine.queue import retry as retry_jobs

    _configure_logging(False)
    try:
        chosen = retry_jobs(db, job_ids or None)
    except parsers.EdireconError as exc:
        typer.echo(f"edirecon: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    typer.echo(f"{len(chosen)} job(s) back in the queue" + (f": {', '.join(map(str, chosen))}" if chosen else ""))
    raise typer.Exit(0)


if __name__ == "__main__":  # pragma: no cover
    app()
