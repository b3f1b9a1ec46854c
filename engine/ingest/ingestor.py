"""Ingestion: files in, facts in the store.  Idempotent and atomic per transaction set.

* A file is known by its SHA-256.  Already ingested from the same path: skipped (a re-run).  The
  same bytes under another path: ``DUPLICATE_FILE``, kept once.
* A remittance is known by payer id + TRN02 trace number; the same remittance in another file is
  ``DUPLICATE_FILE`` and is not ingested again.
* Each transaction set is written in one database transaction, together with the row that says it
  was handled, so a run killed in the middle leaves whole transaction sets only; the next run
  resumes the file and skips what is already there.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Connection, insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from edirecon import parsers
from edirecon.engine.store import schema as t
from edirecon.engine.store.bulk import Converted, allocate_ids, insert_rows
from edirecon.engine.store.connection import Store
from edirecon.money import parse as parse_amount
from edirecon.money import to_storage
from edirecon.parsers.model import Claim, ClaimPayment, ProviderAdjustment

log = structlog.get_logger("edirecon.ingest")

PATIENT_PAYMENTS_HEADER = ["patient_control_number", "amount", "paid_on", "payment_id"]
#: rows of consecutive transaction sets written in one database transaction (a larger set alone)
BATCH_ROWS = 20_000


#: an X12 file at least this large is shared out among the processes, transaction set by set
SPLIT_BYTES = 4 << 20


@dataclass(frozen=True)
class FileTask:
    """A file being ingested (or one part of its transaction sets: ``part`` of ``parts``)."""

    path: Path
    name: str
    file_id: int
    sha: str
    kind: str
    part: int = 0
    parts: int = 1


@dataclass
class IngestReport:
    """What one run ingested, for the summary table."""

    files_seen: int = 0
    files_ingested: int = 0
    files_skipped: int = 0
    claims: int = 0
    claim_payments: int = 0
    provider_adjustments: int = 0
    patient_payments: int = 0

    def add(self, other: IngestReport) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


#: a bare transaction set (ST*835*... without ISA/GS), as some payer portals hand out a remittance
_BARE_ST = re.compile(r"ST[^A-Za-z0-9\s][0-9]{3}[^A-Za-z0-9\s]")


def classify(path: Path) -> str:
    """``x12``, ``patient_payments`` or ``unsupported``, by content."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    text = head.decode("latin-1").removeprefix("\xef\xbb\xbf").lstrip(" \t\r\n")
    if text.startswith("ISA") or _BARE_ST.match(text):
        return "x12"
    first = text.splitlines()[0] if text else ""
    header = [h.strip() for h in first.split(",")]
    if header[:4] == PATIENT_PAYMENTS_HEADER:
        return "patient_payments"
    return "unsupported"


def exception_key(*parts: object) -> str:
    """A deterministic key for an exception, so the same problem is stored once."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def _upsert(conn: Connection) -> Any:
    """The dialect's INSERT, which has ON CONFLICT (SQLite and PostgreSQL alike)."""
    return postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert


def insert_ignore(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING, on SQLite and PostgreSQL alike."""
    if not rows:
        return
    conn.execute(_upsert(conn)(table).on_conflict_do_nothing(), rows)


def insert_new(conn: Connection, table: Any, row: dict[str, Any], natural_key: list[str]) -> int | None:
    """INSERT a row unless one with the same natural key exists; its new id, or None.

    Safe with concurrent writers: on PostgreSQL a conflicting insert waits for the other
    transaction and then does nothing; on SQLite writers hold the database lock in turn.
    """
    statement = _upsert(conn)(table).values(row).on_conflict_do_nothing(index_elements=natural_key).returning(table.c.id)
    return conn.execute(statement).scalar_one_or_none()


def record_exception(
    conn: Connection,
    key_parts: Iterable[object],
    kind: str,
    source_file: str,
    detail: str,
    *,
    severity: str = "error",
    segment: int = 0,
    pcn: str = "",
    payer_id: str = "",
    amount: Decimal | None = None,
) -> None:
    insert_ignore(
        conn,
        t.ingest_exceptions,
        [exception_row(key_parts, kind, source_file, detail, severity=severity, segment=segment, pcn=pcn, payer_id=payer_id, amount=amount)],
    )


def exception_row(
    key_parts: Iterable[object],
    kind: str,
    source_file: str,
    detail: str,
    *,
    severity: str = "error",
    segment: int = 0,
    pcn: str = "",
    payer_id: str = "",
    amount: Decimal | None = None,
) -> dict[str, Any]:
    """One ``ingest_exceptions`` row (``record_exception`` writes one; many go in one statement)."""
    return {
        "key": exception_key(kind, *key_parts),
        "kind": kind,
        "severity": severity,
        "source_file": source_file,
        "segment": segment,
        "patient_control_number": pcn,
        "payer_id": payer_id,
        "amount": amount,
        "detail": detail,
    }


class Ingestor:
    """Ingest files into a store."""

    def __init__(self, store: Store):
        self.store = store
        self.report = IngestReport()

    # -- files ----------------------------------------------------------------------
    def ingest(self, path: Path, display: str | None = None) -> None:
        """Ingest one file (known again: skipped; interrupted before: resumed)."""
        task = self.begin(path, display)
        if task is not None:
            self.ingest_part(task)
            self.finish(task)

    def begin(self, path: Path, display: str | None = None) -> FileTask | None:
        """Record the file as being ingested; None when it is known (ingested, or the same bytes
        under another name, a ``DUPLICATE_FILE``)."""
        name = display or str(path)
        self.report.files_seen += 1
        sha = sha256_of(path)
        kind = classify(path)
        with self.store.write() as conn:
            file_id = insert_new(conn, t.files, {"sha256": sha, "path": name, "kind": kind, "complete": False}, ["sha256"])
            known = None if file_id is not None else conn.execute(select(t.files).where(t.files.c.sha256 == sha)).mappings().one()
            if known is not None and (known["complete"] or known["path"] != name):
                if known["path"] != name:
                    record_exception(
                        conn,
                        [sha, name],
                        "DUPLICATE_FILE",
                        name,
                        f"the same bytes (SHA-256 {sha[:12]}…) were ingested from {known['path']}; nothing ingested again",
                        severity="warning",
                    )
                self.report.files_skipped += 1
                log.info("file_skipped", file=name, reason="already_ingested", sha256=sha[:12])
                return None
            if known is not None:
                file_id = known["id"]
                log.info("file_resumed", file=name, sha256=sha[:12])
        log.info("file_received", file=name, kind=kind, sha256=sha[:12])
        assert file_id is not None
        return FileTask(path, name, file_id, sha, kind)

    def ingest_part(self, task: FileTask) -> None:
        """The file's content, or for X12 the transaction sets of ``task.part`` (every
        ``task.parts``-th one): parts of one file may be ingested side by side."""
        if task.kind == "x12":
            self._x12(task)
        elif task.kind == "patient_payments":
            self._patient_payments(task.path, task.name, task.file_id, task.sha)
        else:
            with self.store.write() as conn:
                record_exception(
                    conn,
                    [task.sha],
                    "UNSUPPORTED_FILE",
                    task.name,
                    "neither X12 (no ISA header) nor a patient-payments CSV (header patient_control_number,amount,paid_on,payment_id)",
                    severity="warning",
                )

    def finish(self, task: FileTask) -> None:
        """Mark the file complete once all its parts are in."""
        with self.store.write() as conn:
            conn.execute(t.files.update().where(t.files.c.id == task.file_id).values(complete=True))
        self.report.files_ingested += 1
        log.info("file_ingested", file=task.name)

    # -- X12 -------------------------------------------------------------------------
    def _x12(self, task: FileTask) -> None:
        path, name, file_id, sha = task.path, task.name, task.file_id, task.sha
        summary = parsers.FileSummary(name)
        with self.store.engine.connect() as conn:
            done = set(conn.execute(select(t.transactions.c.ordinal).where(t.transactions.c.file_id == file_id)).scalars())

        def wanted(ordinal: int) -> bool:
            return (ordinal - 1) % task.parts == task.part and ordinal not in done

        text = self.store.dialect == "sqlite"  # rows in SQLite's storage form (see _StorageForm)

        pending: list[tuple[parsers.ParsedTransaction, _Claims | _Remittance | None]] = []
        rows = 0
        for parsed in parsers.iter_transactions(path, summary, name, wanted):
            ts = parsed.transaction
            # parse the transaction set into rows before taking the write lock: another process
            # ingesting beside this one waits only for the inserts, not for the parsing
            prepared: _Claims | _Remittance | None = None
            if parsed.supported and ts.trusted:
                form = _StorageForm(text)
                prepared = _prepare_remittance(parsed.records, name, form) if ts.code == "835" else _prepare_claims(parsed.records, name, form)
                rows += prepared.size
            parsed.records = iter(())  # read: what is kept of them is in the rows
            pending.append((parsed, prepared))
            if rows >= BATCH_ROWS:
                self._write(pending, name, file_id, sha)
                pending, rows = [], 0
        if pending:
            self._write(pending, name, file_id, sha)
        errors = [
            exception_row(
                [sha, f.code, f.source.segment, f.source.offset, f.message],
                "PARSE_ERROR",
                name,
                f"{f.code} at byte {f.source.offset}: {f.message}",
                segment=f.source.segment,
            )
            for f in summary.findings
            if f.severity is parsers.Severity.ERROR
        ]
        with self.store.write() as conn:
            insert_ignore(conn, t.ingest_exceptions, errors)  # one statement, however many findings

    def _write(self, pending: list[tuple[Any, Any]], name: str, file_id: int, sha: str) -> None:
        """Write prepared transaction sets, in one database transaction: each is still all or
        nothing (a killed run leaves none of them, and the next ingests them again), and the
        writers of a large file take the lock a few times rather than once per set."""
        with self.store.write() as conn:
            for parsed, prepared in pending:
                ts = parsed.transaction
                ordinal = parsed.ordinal
                txn_id = insert_new(
                    conn,
                    t.transactions,
                    {
                        "file_id": file_id,
                        "ordinal": ordinal,
                        "isa13": ts.envelope.isa13[:9],
                        "gs06": ts.envelope.gs06[:9],
                        "st02": ts.envelope.st02[:9],
                        "transaction_type": parsed.transaction_type[:8],
                        "ingested": False,
                    },
                    ["file_id", "ordinal"],
                )
                if txn_id is None:
                    continue  # another process (one left over from a killed run, say) wrote it meanwhile
                ingested = False
                if not parsed.supported:
                    record_exception(
                        conn,
                        [sha, ordinal],
                        "UNSUPPORTED_TRANSACTION",
                        name,
                        f"transaction set {ts.code} ST02={ts.control_number} is not modelled",
                        severity="warning",
                        segment=ts.source.segment,
                    )
                elif isinstance(prepared, _Remittance):
                    ingested = self._remittance(conn, prepared, name, txn_id, ts.source.segment)
                elif isinstance(prepared, _Claims):
                    ingested = self._claims(conn, prepared, txn_id)
                # else: an untrusted envelope, whose findings become PARSE_ERROR rows below
                if ingested:
                    conn.execute(t.transactions.update().where(t.transactions.c.id == txn_id).values(ingested=True))

    def _claims(self, conn: Connection, prepared: _Claims, txn_id: int) -> bool:
        claims, lines = prepared.claims, prepared.lines
        ids = allocate_ids(conn, t.claims, len(claims))
        insert_rows(conn, t.claims, CLAIM_COLUMNS, [(cid, txn_id, *row) for cid, row in zip(ids, claims, strict=True)])
        line_ids = allocate_ids(conn, t.claim_lines, len(lines))
        insert_rows(conn, t.claim_lines, CLAIM_LINE_COLUMNS, [(i, ids[row[0]], *row[1:]) for i, row in zip(line_ids, lines, strict=True)])
        self.report.claims += len(claims)
        return True

    def _remittance(self, conn: Connection, prepared: _Remittance, name: str, txn_id: int, st_segment: int) -> bool:
        rem = prepared.header
        if rem is None:
            return False
        payer_id = prepared.payer_id
        row = {**remittance_row(rem, payer_id, name), "transaction_id": txn_id}
        remittance_id = insert_new(conn, t.remittances, row, ["payer_id", "trace_number"])
        if remittance_id is None:
            first = conn.execute(
                select(t.remittances.c.source_file).where(t.remittances.c.payer_id == row["payer_id"], t.remittances.c.trace_number == row["trace_number"])
            ).scalar_one()
            record_exception(
                conn,
                [payer_id, rem.trace_number, name],
                "DUPLICATE_FILE",
                name,
                f"remittance of payer {payer_id} with trace number {rem.trace_number} was ingested from {first}; not ingested again",
                severity="warning",
                segment=st_segment,
                payer_id=payer_id,
                amount=rem.payment_amount,
            )
            return False
        payments = prepared.payments
        ids = allocate_ids(conn, t.claim_payments, len(payments))
        insert_rows(conn, t.claim_payments, PAYMENT_COLUMNS, [(pid, remittance_id, *row) for pid, row in zip(ids, payments, strict=True)])
        line_ids = allocate_ids(conn, t.payment_lines, len(prepared.lines))
        insert_rows(conn, t.payment_lines, PAYMENT_LINE_COLUMNS, [(i, ids[row[0]], *row[1:]) for i, row in zip(line_ids, prepared.lines, strict=True)])
        adjustment_ids = allocate_ids(conn, t.adjustments, len(prepared.adjustments))
        insert_rows(conn, t.adjustments, ADJUSTMENT_COLUMNS, [(i, ids[row[0]], *row[1:]) for i, row in zip(adjustment_ids, prepared.adjustments, strict=True)])
        if prepared.plbs:
            conn.execute(insert(t.provider_adjustments), [plb_row(p, remittance_id) for p in prepared.plbs])
            self.report.provider_adjustments += len(prepared.plbs)
        self.report.claim_payments += len(payments)
        return True

    # -- patient payments -------------------------------------------------------------
    def _patient_payments(self, path: Path, name: str, file_id: int, sha: str) -> None:
        rows: list[dict[str, Any]] = []
        with self.store.write() as conn:
            with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
                reader = csv.DictReader(fh)
                for number, row in enumerate(reader, start=2):
                    problem, parsed = patient_payment_row(row)
                    if problem:
                        record_exception(
                            conn,
                            [sha, number],
                            "PARSE_ERROR",
                            name,
                            f"row {number}: {problem}",
                            segment=number,
                            pcn=(row.get("patient_control_number") or "")[:38],
                        )
                        continue
                    rows.append({**parsed, "file_id": file_id, "row_number": number})
            insert_ignore(conn, t.patient_payments, rows)
        self.report.patient_payments += len(rows)


# -- a transaction set as rows, before it is written -----------------------------------
# Child rows name their parent by its index in the transaction set; ids are given under the lock.


@dataclass(slots=True)
class _Claims:
    claims: list[tuple[Any, ...]]  # claim_row
    lines: list[tuple[Any, ...]]  # (claim index, *CLAIM_LINE_COLUMNS from line_number on)

    @property
    def size(self) -> int:
        return len(self.claims) + len(self.lines)


@dataclass(slots=True)
class _Remittance:
    header: Any  # parsers.model.Remittance, None when the 835 has no claim payment nor PLB
    payer_id: str
    payments: list[tuple[Any, ...]]  # (ordinal, *payment_row)
    lines: list[tuple[Any, ...]]  # (payment index, ordinal, *payment_line_row)
    adjustments: list[tuple[Any, ...]]  # (payment index, line ordinal or None, group, reason, amount)
    plbs: list[ProviderAdjustment]

    @property
    def size(self) -> int:
        return len(self.payments) + len(self.lines) + len(self.adjustments) + len(self.plbs)


class _StorageForm:
    """How the money and date values of the bulk-inserted rows are put.

    As they are (``Decimal``, ``date``) for PostgreSQL's COPY; for SQLite already in the form the
    driver's adapters (``engine.bulk``) would give them, exact decimal text and ISO text, so that
    the conversion is done while parsing rather than inside the write transaction, and more cheaply
    (a transaction set's dates repeat: each is converted once).
    """

    __slots__ = ("day", "money")

    def __init__(self, text: bool):
        self.money: Callable[[Any], Any] = to_storage if text else _same
        self.day: Callable[[Any], Any] = Converted(_iso_text, None).__getitem__ if text else _same


def _same(value: Any) -> Any:
    return value


def _iso_text(day: Any) -> Any:
    """A date as its ISO text (``str``, what the SQLite adapter of ``engine.bulk`` binds)."""
    return str(day) if isinstance(day, date) else day


def _prepare_claims(records: Iterable[Claim], name: str, form: _StorageForm) -> _Claims:
    claims: list[tuple[Any, ...]] = []
    lines: list[tuple[Any, ...]] = []
    money, day = form.money, form.day
    for index, c in enumerate(records):
        claims.append(claim_row(c, name, money, day))
        lines.extend(
            (
                index,
                line.number[:6],
                line.procedure_code[:48],
                ":".join(line.modifiers)[:20],
                money(line.charge),
                money(line.units),
                day(line.service_date),
                line.line_item_control_number[:50],
            )
            for line in c.lines
        )
    return _Claims(claims, lines)


def _prepare_remittance(records: Iterable[Any], name: str, form: _StorageForm) -> _Remittance:
    out = _Remittance(None, "", [], [], [], [])
    money, day = form.money, form.day
    payments, lines, adjustments = out.payments, out.lines, out.adjustments
    ordinal = 0
    for record in records:
        if out.header is None:
            out.header = rem = record.remittance
            out.payer_id = rem.payer_id or (rem.payer.id if rem.payer else "")
        ordinal += 1
        if isinstance(record, ProviderAdjustment):
            out.plbs.append(record)
            continue
        index = len(payments)
        payments.append((ordinal, *payment_row(record, name, money, day)))
        for a in record.adjustments:
            adjustments.append((index, None, a.group[:2], a.reason[:5], money(a.amount)))
        for n, svc in enumerate(record.services, start=1):
            lines.append((index, n, *payment_line_row(svc, money, day)))
            for a in svc.adjustments:
                adjustments.append((index, n, a.group[:2], a.reason[:5], money(a.amount)))
    return out


# -- rows ------------------------------------------------------------------------------


def _dates(values: Iterable[date | None]) -> tuple[date | None, date | None]:
    known = [d for d in values if d is not None]
    return (min(known), max(known)) if known else (None, None)


#: the columns of the bulk-inserted rows, in the order the row functions below give them
CLAIM_COLUMNS = [
    "id",
    "transaction_id",
    "transaction_type",
    "patient_control_number",
    "billing_npi",
    "billing_tin",
    "member_id",
    "other_member_ids",
    "other_payer_ids",
    "patient_last",
    "patient_first",
    "patient_dob",
    "service_from",
    "service_to",
    "total_charge",
    "frequency",
    "original_reference",
    "payer_id",
    "payer_name",
    "payer_responsibility",
    "filing_indicator",
    "created_on",
    "source_file",
    "segment",
    "byte_offset",
    "type_of_bill",
    "statement_from",
    "statement_to",
    "admission_date",
]
CLAIM_LINE_COLUMNS = ["id", "claim_id", "line_number", "procedure_code", "modifiers", "charge", "units", "service_date", "line_item_control_number"]
PAYMENT_COLUMNS = [
    "id",
    "remittance_id",
    "ordinal",
    "patient_control_number",
    "status",
    "charge",
    "paid",
    "patient_responsibility",
    "filing_indicator",
    "payer_claim_control_number",
    "member_id",
    "patient_last",
    "patient_first",
    "service_from",
    "service_to",
    "source_file",
    "segment",
    "byte_offset",
    "crossover_carrier_id",
]
PAYMENT_LINE_COLUMNS = [
    "id",
    "claim_payment_id",
    "ordinal",
    "procedure_code",
    "modifiers",
    "charge",
    "paid",
    "units",
    "service_date",
    "line_item_control_number",
]
ADJUSTMENT_COLUMNS = ["id", "claim_payment_id", "line_ordinal", "group_code", "reason", "amount"]


def claim_row(c: Claim, name: str, money: Callable[[Any], Any] = _same, day: Callable[[Any], Any] = _same) -> tuple[Any, ...]:
    """CLAIM_COLUMNS from transaction_type on (money and dates put by ``money`` and ``day``)."""
    bp = c.billing_provider
    patient = c.patient
    subscriber = c.subscriber
    start, end = _dates([*(ln.service_date for ln in c.lines), *(ln.service_end_date for ln in c.lines)])
    if start is None:
        start, end = _dates([c.service_date, c.service_end_date, c.statement_from, c.statement_to])
    others = [op.subscriber.id for op in c.other_payers if op.subscriber is not None and op.subscriber.id]
    return (
        c.transaction_type[:8],
        c.patient_control_number[:38],
        (bp.id if bp is not None and bp.id_qualifier == "XX" else "")[:80],
        (bp.tin if bp is not None else "")[:80],
        (subscriber.id if subscriber is not None else "")[:80],
        "|".join(others),
        "|".join(op.payer.id[:80] for op in c.other_payers if op.payer is not None and op.payer.id),
        (patient.name if patient is not None else "")[:60],
        (patient.first_name if patient is not None else "")[:35],
        day(patient.date_of_birth if patient is not None else None),
        day(start),
        day(end),
        money(c.total_charge),
        c.frequency[:2],
        c.original_reference[:50],
        (c.payer.id if c.payer is not None else "")[:80],
        (c.payer.name if c.payer is not None else "")[:60],
        c.payer_responsibility[:2],
        c.claim_filing_indicator[:2],
        day(c.created_on),
        name,
        c.source.segment if c.source else 0,
        c.source.offset if c.source else 0,
        c.type_of_bill[:4],
        day(c.statement_from),
        day(c.statement_to),
        day(c.admission_date),
    )


def remittance_row(rem: Any, payer_id: str, name: str) -> dict[str, Any]:
    return {
        "payer_id": payer_id[:80],
        "payer_name": (rem.payer.name if rem.payer else "")[:60],
        "trace_number": rem.trace_number[:50],
        "payment_amount": rem.payment_amount,
        "credit_debit": rem.credit_debit[:1],
        "payment_date": rem.payment_date,
        "production_date": rem.production_date,
        "payee_npi": rem.payee_npi[:80],
        "payee_tin": rem.payee_tin[:80],
        "source_file": name,
        "segment": rem.source.segment if rem.source else 0,
        "byte_offset": rem.source.offset if rem.source else 0,
    }


def payment_row(p: ClaimPayment, name: str, money: Callable[[Any], Any] = _same, day: Callable[[Any], Any] = _same) -> tuple[Any, ...]:
    """PAYMENT_COLUMNS from patient_control_number on (money and dates put by ``money`` and ``day``)."""
    person = p.insured or p.patient or p.corrected_insured
    patient = p.patient or p.insured
    start, end = _dates([*(s.service_date for s in p.services), *(s.service_end_date for s in p.services)])
    if start is None:
        start, end = _dates([p.statement_from, p.statement_to])
    return (
        p.patient_control_number[:38],
        p.status[:2],
        money(p.charge),
        money(p.paid),
        money(p.patient_responsibility),
        p.claim_filing_indicator[:2],
        p.payer_claim_control_number[:50],
        (person.id if person is not None else "")[:80],
        (patient.name if patient is not None else "")[:60],
        (patient.first_name if patient is not None else "")[:35],
        day(start),
        day(end),
        name,
        p.source.segment if p.source else 0,
        p.source.offset if p.source else 0,
        (p.crossover_carrier.id if p.crossover_carrier is not None else "")[:80],
    )


def payment_line_row(svc: Any, money: Callable[[Any], Any] = _same, day: Callable[[Any], Any] = _same) -> tuple[Any, ...]:
    """PAYMENT_LINE_COLUMNS from procedure_code on (the billed procedure when SVC06 gives it; money
    and dates put by ``money`` and ``day``)."""
    billed = bool(svc.original_procedure_code)
    return (
        (svc.original_procedure_code if billed else svc.procedure_code)[:48],
        ":".join(svc.original_modifiers if billed else svc.modifiers)[:20],
        money(svc.charge),
        money(svc.paid),
        money(svc.original_units if svc.original_units is not None else svc.units),
        day(svc.service_date),
        svc.line_item_control_number[:50],
    )


def plb_row(p: ProviderAdjustment, remittance_id: int) -> dict[str, Any]:
    return {
        "remittance_id": remittance_id,
        "provider_id": p.provider_id[:50],
        "fiscal_period_date": p.fiscal_period_date,
        "position": p.position,
        "reason": p.reason[:2],
        "reference": p.reference[:50],
        "amount": p.amount,
        "segment": p.source.segment if p.source else 0,
        "byte_offset": p.source.offset if p.source else 0,
    }


def patient_payment_row(row: dict[str, str | None]) -> tuple[str, dict[str, Any]]:
    """(problem, row): the problem is "" for a good row."""
    pcn = (row.get("patient_control_number") or "").strip()
    payment_id = (row.get("payment_id") or "").strip()
    amount_text = (row.get("amount") or "").strip()
    paid_text = (row.get("paid_on") or "").strip()
    if not pcn or not payment_id:
        return "patient_control_number and payment_id are required", {}
    amount = parse_amount(amount_text)
    if amount is None:
        return f"amount {amount_text!r} is not a decimal amount", {}
    try:
        paid_on = date.fromisoformat(paid_text)
    except ValueError:
        return f"paid_on {paid_text!r} is not an ISO date (YYYY-MM-DD)", {}
    return "", {
        "payment_id": payment_id[:80],
        "patient_control_number": pcn[:38],
        "amount": amount,
        "paid_on": paid_on,
        "billing_npi": (row.get("billing_provider_npi") or "").strip()[:80],
        "member_id": (row.get("patient_member_id") or "").strip()[:80],
    }
