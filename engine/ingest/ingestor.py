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
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from edirecon import mappings, parsers
from edirecon.engine.logging import get_logger
from edirecon.engine.store import intake
from edirecon.engine.store.connection import SQLITE_BUSY_TIMEOUT, Connection, Store
from edirecon.engine.store.lengths import ADDRESS_PARTS, TooLong, column_length, widths
from edirecon.money import parse as parse_amount
from edirecon.parsers.model import Address, Claim, ClaimPayment, Contact, Party, ProviderAdjustment
from edirecon.parsers.source import Source

log = get_logger("edirecon.ingest")

PATIENT_PAYMENTS_HEADER = ["patient_control_number", "amount", "paid_on", "payment_id"]
#: rows of consecutive transaction sets written in one database transaction (a larger set alone)
BATCH_ROWS = 20_000
#: on SQLite, while another process holds the write lock, a process keeps parsing until it has this
#: many rows in hand, and only then waits for the lock
HELD_ROWS = 3 * BATCH_ROWS
#: seconds between two tries at SQLite's write lock while another process holds it (at 2 ms the
#: two processes of the 100,000-claim mix slept 0.25-0.29 s each, at 0.5 ms 0.06-0.25 s)
LOCK_POLL = 0.0005


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


_EXCEPTION_PCN = column_length("ingest_exceptions", "patient_control_number")
_EXCEPTION_PAYER = column_length("ingest_exceptions", "payer_id")


def exception_key(*parts: object) -> str:
    """A deterministic key for an exception, so the same problem is stored once."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


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
    intake.insert_exceptions(
        conn, [exception_row(key_parts, kind, source_file, detail, severity=severity, segment=segment, pcn=pcn, payer_id=payer_id, amount=amount)]
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
    """One ``ingest_exceptions`` row (``record_exception`` writes one; many go in one statement).
    ``pcn`` and ``payer_id`` only say which claim or payer the exception is about: they are kept to
    the lengths of the table's columns."""
    mappings.registered("exception_kind", kind, severity)
    return {
        "key": exception_key(kind, *key_parts),
        "kind": kind,
        "severity": severity,
        "source_file": source_file,
        "segment": segment,
        "patient_control_number": pcn[:_EXCEPTION_PCN],
        "payer_id": payer_id[:_EXCEPTION_PAYER],
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
            file_id, known = intake.new_file(conn, sha, name, kind)
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
            intake.complete_file(conn, task.file_id)
        self.report.files_ingested += 1
        log.info("file_ingested", file=task.name)

    # -- X12 -------------------------------------------------------------------------
    def _x12(self, task: FileTask) -> None:
        path, name, file_id, sha = task.path, task.name, task.file_id, task.sha
        summary = parsers.FileSummary(name)
        with self.store.engine.connect() as conn:
            done = intake.handled_ordinals(conn, file_id)

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
            # the lock busy (another process writing): parse on rather than wait, up to HELD_ROWS
            if rows >= BATCH_ROWS and self._write(pending, name, file_id, sha, wait=rows >= HELD_ROWS):
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
        if errors:  # no write transaction (nor a turn at SQLite's write lock) for a clean file
            with self.store.write() as conn:
                intake.insert_exceptions(conn, errors)  # one statement, however many findings

    def _write(self, pending: list[tuple[Any, Any]], name: str, file_id: int, sha: str, wait: bool = True) -> bool:
        """Write prepared transaction sets, in one database transaction: each is still all or
        nothing (a killed run leaves none of them, and the next ingests them again), and the
        writers of a large file take the lock a few times rather than once per set.  Without
        ``wait``, nothing is written (False) when SQLite's write lock is held by another process."""
        waited = 0.0
        while True:
            with self.store.write_if_free() as conn:
                if conn is not None:
                    self._write_in(conn, pending, name, file_id, sha)
                    return True
            if not wait:
                return False
            if waited >= SQLITE_BUSY_TIMEOUT:  # a writer that never lets go: SQLite's own wait, and its error
                with self.store.write() as conn:
                    self._write_in(conn, pending, name, file_id, sha)
                return True
            # the lock is taken again as soon as it is free: SQLite's busy handler sleeps up to
            # 100 ms between tries, most of it after the other process's short transaction is over
            time.sleep(LOCK_POLL)
            waited += LOCK_POLL

    def _write_in(self, conn: Connection, pending: list[tuple[Any, Any]], name: str, file_id: int, sha: str) -> None:
        """The rows of ``pending`` in the write transaction ``conn``."""
        for parsed, prepared in pending:
            ts = parsed.transaction
            ordinal = parsed.ordinal
            cuts: list[_Cut] = []
            envelope = (ts.envelope.isa13, ts.envelope.gs06, ts.envelope.st02, parsed.transaction_type)
            isa13, gs06, st02, transaction_type = _fit(_TRANSACTION_WIDTHS, envelope, cuts, ts.source, "", "")
            txn_id = intake.new_transaction(conn, file_id, ordinal, isa13, gs06, st02, transaction_type)
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
                intake.transaction_ingested(conn, txn_id)
                cuts += prepared.cuts
            intake.insert_exceptions(conn, cut_rows(cuts, name, sha, ordinal))

    def _claims(self, conn: Connection, prepared: _Claims, txn_id: int) -> bool:
        intake.insert_claims(conn, txn_id, prepared.claims, CLAIM_COLUMNS, prepared.lines, CLAIM_LINE_COLUMNS)
        self.report.claims += len(prepared.claims)
        return True

    def _remittance(self, conn: Connection, prepared: _Remittance, name: str, txn_id: int, st_segment: int) -> bool:
        rem = prepared.header
        if rem is None:
            return False
        payer_id = prepared.payer_id
        row = {**prepared.header_row, "transaction_id": txn_id}
        remittance_id = intake.new_remittance(conn, row)
        if remittance_id is None:
            first = intake.remittance_file(conn, row["payer_id"], row["trace_number"])
            record_exception(
                conn,
                [payer_id, rem.trace_number, name],
                "DUPLICATE_FILE",
                name,
                f"remittance of payer {payer_id} with trace number {rem.trace_number} was ingested from {first}; not ingested again",
                severity="warning",
                segment=st_segment,
                payer_id=row["payer_id"],
                amount=rem.payment_amount,
            )
            return False
        intake.insert_claim_payments(
            conn,
            remittance_id,
            (prepared.payments, PAYMENT_COLUMNS),
            (prepared.lines, PAYMENT_LINE_COLUMNS),
            (prepared.adjustments, ADJUSTMENT_COLUMNS),
            prepared.plb_rows,
        )
        self.report.provider_adjustments += len(prepared.plbs)
        self.report.claim_payments += len(prepared.payments)
        return True

    # -- patient payments -------------------------------------------------------------
    def _patient_payments(self, path: Path, name: str, file_id: int, sha: str) -> None:
        rows: list[dict[str, Any]] = []
        cuts: list[_Cut] = []
        fit = widths("patient_payments").fit_mapping
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
                            pcn=row.get("patient_control_number") or "",
                        )
                        continue
                    over: list[TooLong] = []
                    fitted = fit(parsed, over)
                    cuts.extend(_Cut(o, number, f"row {number}", fitted["patient_control_number"], "") for o in over)
                    rows.append({**fitted, "file_id": file_id, "row_number": number})
            intake.insert_patient_payments(conn, rows)
            intake.insert_exceptions(conn, cut_rows(cuts, name, sha, 0))
        self.report.patient_payments += len(rows)


# -- values longer than their columns ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Cut:
    """A text cut to its column's length (``lengths.TooLong``), where it was and whose it was."""

    too_long: TooLong
    segment: int
    where: str  # "segment 12, byte 345" (X12) or "row 7" (CSV)
    pcn: str
    payer_id: str


#: the X12 element (or CSV column) each bounded column is read from, for the FIELD_TOO_LONG detail
ELEMENTS = {
    "transactions.isa13": "ISA13",
    "transactions.gs06": "GS06",
    "transactions.st02": "ST02",
    "transactions.transaction_type": "ST01 and version",
    "claims.transaction_type": "ST01 and version",
    "claims.patient_control_number": "CLM01",
    "claims.billing_npi": "2010AA NM109",
    "claims.billing_tin": "2010AA REF*EI",
    "claims.member_id": "2010BA NM109",
    "claims.patient_last": "2010CA NM103, or 2010BA when the patient is the subscriber",
    "claims.patient_first": "2010CA NM104, or 2010BA when the patient is the subscriber",
    "claims.frequency": "CLM05-3",
    "claims.original_reference": "REF*F8 REF02",
    "claims.payer_id": "2010BB NM109",
    "claims.payer_name": "2010BB NM103",
    "claims.payer_responsibility": "SBR01",
    "claims.filing_indicator": "SBR09",
    "claims.type_of_bill": "CLM05-1 and CLM05-3",
    "claims.billing_name": "2010AA NM103",
    "claims.billing_contact": "2010AA PER02 (or 1000A)",
    "claims.billing_phone": "2010AA PER04 (or 1000A)",
    **{
        f"{prefix}_{part}": f"{loop} {element}"
        for prefix, loop in (("claims.billing", "2010AA"), ("claims.patient", "2010CA or 2010BA"), ("remittances.payer", "N1*PR"))
        for part, element in zip(ADDRESS_PARTS, ("N301", "N302", "N401", "N402", "N403", "N404"), strict=True)
    },
    "claim_lines.line_number": "LX01",
    "claim_lines.procedure_code": "SV101-2, SV202-2 or SV301-2",
    "claim_lines.modifiers": "procedure modifiers",
    "claim_lines.line_item_control_number": "REF*6R REF02",
    "remittances.payer_id": "N1*PR N104 (or REF*2U)",
    "remittances.payer_name": "N1*PR N102",
    "remittances.trace_number": "TRN02",
    "remittances.credit_debit": "BPR03",
    "remittances.payee_npi": "N1*PE N104",
    "remittances.payee_tin": "N1*PE N104 or REF*TJ",
    "claim_payments.patient_control_number": "CLP01",
    "claim_payments.status": "CLP02",
    "claim_payments.filing_indicator": "CLP06",
    "claim_payments.payer_claim_control_number": "CLP07",
    "claim_payments.member_id": "NM1*IL, QC or 74 NM109",
    "claim_payments.patient_last": "NM1*QC NM103",
    "claim_payments.patient_first": "NM1*QC NM104",
    "claim_payments.crossover_carrier_id": "NM1*TT NM109",
    "payment_lines.procedure_code": "SVC01-2 (SVC06-2)",
    "payment_lines.modifiers": "SVC01-3..6 (SVC06-3..6)",
    "payment_lines.line_item_control_number": "REF*6R REF02",
    "adjustments.group_code": "CAS01",
    "adjustments.reason": "CAS reason code",
    "provider_adjustments.provider_id": "PLB01",
    "provider_adjustments.reason": "PLB adjustment reason code",
    "provider_adjustments.reference": "PLB reference",
    "patient_payments.payment_id": "payment_id",
    "patient_payments.patient_control_number": "patient_control_number",
    "patient_payments.billing_npi": "billing_provider_npi",
    "patient_payments.member_id": "patient_member_id",
}


def cut_rows(cuts: list[_Cut], name: str, sha: str, ordinal: int) -> list[dict[str, Any]]:
    """The ``FIELD_TOO_LONG`` exception rows of the values of one transaction set (``ordinal``;
    0 for a CSV file) that were cut to their columns.  The value itself is never repeated (it may
    be a name or an id): the detail names the field and the lengths, the position finds it."""
    rows = []
    for n, cut in enumerate(cuts):
        o = cut.too_long
        field = f"{o.table}.{o.column}"
        element = ELEMENTS.get(field)
        detail = (
            f"{field}{f' ({element})' if element else ''} has {o.length} characters and its column holds {o.limit}: "
            f"its first {o.limit} are stored ({cut.where})"
        )
        key = [sha, ordinal, n, field, cut.where]
        rows.append(exception_row(key, "FIELD_TOO_LONG", name, detail, severity="warning", segment=cut.segment, pcn=cut.pcn, payer_id=cut.payer_id))
    return rows


def _where(source: Source | None) -> tuple[int, str]:
    if source is None:
        return 0, "position unknown"
    return source.segment, f"segment {source.segment}, byte {source.offset}"


def _fit(fitter: Any, row: tuple[Any, ...], cuts: list[_Cut], source: Source | None, pcn: str, payer_id: str) -> tuple[Any, ...]:
    """``row`` fitted to its columns; a cut is recorded at ``source``."""
    over: list[TooLong] = []
    row = fitter.fit(row, over)
    if over:
        segment, where = _where(source)
        cuts.extend(_Cut(o, segment, where, pcn, payer_id) for o in over)
    return row


def _sourced(
    over: list[TooLong], cuts: list[_Cut], sources: dict[str, Party | Address | Contact | None], default: Source | None, pcn: str, payer_id: str
) -> None:
    """Record the cuts of ``over`` (then empty it), each at the segment of the party its column
    comes from (``sources``: a party, or an address for its columns), else at ``default`` (the record's own segment)."""
    for o in over:
        party = sources.get(o.column)
        segment, where = _where(party.source if party is not None and party.source is not None else default)
        cuts.append(_Cut(o, segment, where, pcn, payer_id))
    over.clear()


_TRANSACTION_WIDTHS = widths("transactions", ["isa13", "gs06", "st02", "transaction_type"])


# -- a transaction set as rows, before it is written -----------------------------------
# Child rows name their parent by its index in the transaction set; ids are given under the lock.


@dataclass(slots=True)
class _Claims:
    claims: list[tuple[Any, ...]]  # claim_row
    lines: list[tuple[Any, ...]]  # (claim index, *CLAIM_LINE_COLUMNS from line_number on)
    cuts: list[_Cut]

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
    header_row: dict[str, Any]  # remittance_row, fitted
    plb_rows: list[dict[str, Any]]  # plb_row without its remittance_id, fitted
    cuts: list[_Cut]

    @property
    def size(self) -> int:
        return len(self.payments) + len(self.lines) + len(self.adjustments) + len(self.plbs)


#: how the money and dates of a transaction set's rows are put: in the store's storage form on
#: SQLite, as they are for PostgreSQL (one per transaction set: its dates are converted once)
_StorageForm = intake.StorageForm


def _same(value: Any) -> Any:
    return value


def _prepare_claims(records: Iterable[Claim], name: str, form: _StorageForm) -> _Claims:
    claims: list[tuple[Any, ...]] = []
    lines: list[tuple[Any, ...]] = []
    cuts: list[_Cut] = []
    over: list[TooLong] = []
    money, day = form.money, form.day
    fit_claim = widths("claims", CLAIM_COLUMNS[2:]).fit  # from transaction_type on, as claim_row gives them
    fit_line = widths("claim_lines", [None, *CLAIM_LINE_COLUMNS[2:]]).fit
    pcn_at, payer_at = CLAIM_COLUMNS.index("patient_control_number") - 2, CLAIM_COLUMNS.index("payer_id") - 2
    for index, c in enumerate(records):
        row = fit_claim(claim_row(c, name, money, day), over)
        claims.append(row)
        pcn, payer_id = row[pcn_at], row[payer_at]
        if over:
            bp, payer = c.billing_provider, c.payer
            parties = {"billing_npi": bp, "billing_tin": bp, "member_id": c.subscriber, "patient_last": c.patient, "patient_first": c.patient}
            per = billing_contact(c)
            parties.update(billing_name=bp, billing_contact=per or bp, billing_phone=per or bp)
            for prefix, party in (("billing", bp), ("patient", c.patient if c.patient is not None and c.patient.address is not None else c.subscriber)):
                parties.update(dict.fromkeys((f"{prefix}_{part}" for part in ADDRESS_PARTS), party.address if party is not None else None))
            _sourced(over, cuts, {**parties, "payer_id": payer, "payer_name": payer}, c.source, pcn, payer_id)
        for line in c.lines:
            lines.append(
                fit_line(
                    (
                        index,
                        line.number,
                        line.procedure_code,
                        ":".join(line.modifiers),
                        money(line.charge),
                        money(line.units),
                        day(line.service_date),
                        line.line_item_control_number,
                    ),
                    over,
                )
            )
            if over:
                _sourced(over, cuts, {}, line.source or c.source, pcn, payer_id)
    return _Claims(claims, lines, cuts)


def _prepare_remittance(records: Iterable[Any], name: str, form: _StorageForm) -> _Remittance:
    out = _Remittance(None, "", [], [], [], [], {}, [], [])
    money, day = form.money, form.day
    payments, lines, adjustments, cuts = out.payments, out.lines, out.adjustments, out.cuts
    over: list[TooLong] = []
    fit_payment = widths("claim_payments", [None, *PAYMENT_COLUMNS[3:]]).fit  # (ordinal, *payment_row)
    fit_line = widths("payment_lines", [None, None, *PAYMENT_LINE_COLUMNS[3:]]).fit
    fit_adjustment = widths("adjustments", [None, *ADJUSTMENT_COLUMNS[2:]]).fit
    fit_plb = widths("provider_adjustments").fit_mapping
    pcn_at = PAYMENT_COLUMNS.index("patient_control_number") - 2
    payer = ""
    ordinal = 0
    for record in records:
        if out.header is None:
            out.header = rem = record.remittance
            out.payer_id = rem.payer_id or (rem.payer.id if rem.payer else "")
            out.header_row = widths("remittances").fit_mapping(remittance_row(rem, out.payer_id, name), over)
            payer = out.header_row["payer_id"]
            address = dict.fromkeys(PAYER_ADDRESS_COLUMNS, rem.payer.address if rem.payer is not None else None)
            _sourced(
                over, cuts, {"payer_id": rem.payer, "payer_name": rem.payer, "payee_npi": rem.payee, "payee_tin": rem.payee, **address}, rem.source, "", payer
            )
        ordinal += 1
        if isinstance(record, ProviderAdjustment):
            out.plbs.append(record)
            row = fit_plb(plb_row(record, 0), over)
            del row["remittance_id"]
            out.plb_rows.append(row)
            _sourced(over, cuts, {}, record.source, "", payer)
            continue
        index = len(payments)
        row = fit_payment((ordinal, *payment_row(record, name, money, day)), over)
        payments.append(row)
        pcn = row[pcn_at]
        if over:
            person = record.insured or record.patient or record.corrected_insured
            patient = record.patient or record.insured
            parties = {"member_id": person, "patient_last": patient, "patient_first": patient, "crossover_carrier_id": record.crossover_carrier}
            _sourced(over, cuts, parties, record.source, pcn, payer)
        for a in record.adjustments:
            adjustments.append(fit_adjustment((index, None, a.group, a.reason, money(a.amount)), over))
            if over:
                _sourced(over, cuts, {}, a.source, pcn, payer)
        for n, svc in enumerate(record.services, start=1):
            lines.append(fit_line((index, n, *payment_line_row(svc, money, day)), over))
            if over:
                _sourced(over, cuts, {}, svc.source or record.source, pcn, payer)
            for a in svc.adjustments:
                adjustments.append(fit_adjustment((index, n, a.group, a.reason, money(a.amount)), over))
                if over:
                    _sourced(over, cuts, {}, a.source, pcn, payer)
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
    "billing_name",
    *(f"billing_{part}" for part in ADDRESS_PARTS),
    "billing_contact",
    "billing_phone",
    *(f"patient_{part}" for part in ADDRESS_PARTS),
]
PAYER_ADDRESS_COLUMNS = [f"payer_{part}" for part in ADDRESS_PARTS]
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


#: the other payers' ids are compared with payer ids as stored, so they are cut the same way
_PAYER_ID = column_length("claims", "payer_id")


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
        c.transaction_type,
        c.patient_control_number,
        (bp.id if bp is not None and bp.id_qualifier == "XX" else ""),
        (bp.tin if bp is not None else ""),
        (subscriber.id if subscriber is not None else ""),
        "|".join(others),
        "|".join(op.payer.id[:_PAYER_ID] for op in c.other_payers if op.payer is not None and op.payer.id),
        (patient.name if patient is not None else ""),
        (patient.first_name if patient is not None else ""),
        day(patient.date_of_birth if patient is not None else None),
        day(start),
        day(end),
        money(c.total_charge),
        c.frequency,
        c.original_reference,
        (c.payer.id if c.payer is not None else ""),
        (c.payer.name if c.payer is not None else ""),
        c.payer_responsibility,
        c.claim_filing_indicator,
        day(c.created_on),
        name,
        c.source.segment if c.source else 0,
        c.source.offset if c.source else 0,
        c.type_of_bill,
        day(c.statement_from),
        day(c.statement_to),
        day(c.admission_date),
        (bp.name if bp is not None else ""),
        *_address(bp),
        *((per.name, per.phone) if (per := billing_contact(c)) is not None else ("", "")),
        *_address(patient if patient is not None and patient.address is not None else subscriber),
    )


def _address(party: Party | None) -> tuple[str, ...]:
    """The ADDRESS_PARTS of a party's N3/N4 ("" each when it has none)."""
    a = party.address if party is not None else None
    if a is None:
        return _NO_ADDRESS
    return ((a.lines[0] if a.lines else ""), (a.lines[1] if len(a.lines) > 1 else ""), a.city, a.state, a.postal_code, a.country)


_NO_ADDRESS = ("",) * 6


def billing_contact(c: Claim) -> Contact | None:
    """The billing provider's contact: the first PER of 2010AA with a name or a telephone, else
    of the submitter's 1000A when the submitter is the billing provider itself (a clearinghouse's
    contact is no one a patient should call)."""
    bp, sub = c.billing_provider, c.submitter
    contacts = bp.contacts if bp is not None else []
    if not contacts and sub is not None and bp is not None and sub.name and sub.name == bp.name:
        contacts = sub.contacts
    return next((per for per in contacts if per.phone or per.name), None)


def remittance_row(rem: Any, payer_id: str, name: str) -> dict[str, Any]:
    return {
        "payer_id": payer_id,
        "payer_name": (rem.payer.name if rem.payer else ""),
        "trace_number": rem.trace_number,
        "payment_amount": rem.payment_amount,
        "credit_debit": rem.credit_debit,
        "payment_date": rem.payment_date,
        "production_date": rem.production_date,
        "payee_npi": rem.payee_npi,
        "payee_tin": rem.payee_tin,
        "source_file": name,
        "segment": rem.source.segment if rem.source else 0,
        "byte_offset": rem.source.offset if rem.source else 0,
        **dict(zip(PAYER_ADDRESS_COLUMNS, _address(rem.payer), strict=True)),
    }


def payment_row(p: ClaimPayment, name: str, money: Callable[[Any], Any] = _same, day: Callable[[Any], Any] = _same) -> tuple[Any, ...]:
    """PAYMENT_COLUMNS from patient_control_number on (money and dates put by ``money`` and ``day``)."""
    person = p.insured or p.patient or p.corrected_insured
    patient = p.patient or p.insured
    start, end = _dates([*(s.service_date for s in p.services), *(s.service_end_date for s in p.services)])
    if start is None:
        start, end = _dates([p.statement_from, p.statement_to])
    return (
        p.patient_control_number,
        p.status,
        money(p.charge),
        money(p.paid),
        money(p.patient_responsibility),
        p.claim_filing_indicator,
        p.payer_claim_control_number,
        (person.id if person is not None else ""),
        (patient.name if patient is not None else ""),
        (patient.first_name if patient is not None else ""),
        day(start),
        day(end),
        name,
        p.source.segment if p.source else 0,
        p.source.offset if p.source else 0,
        (p.crossover_carrier.id if p.crossover_carrier is not None else ""),
    )


def payment_line_row(svc: Any, money: Callable[[Any], Any] = _same, day: Callable[[Any], Any] = _same) -> tuple[Any, ...]:
    """PAYMENT_LINE_COLUMNS from procedure_code on (the billed procedure when SVC06 gives it; money
    and dates put by ``money`` and ``day``)."""
    billed = bool(svc.original_procedure_code)
    return (
        (svc.original_procedure_code if billed else svc.procedure_code),
        ":".join(svc.original_modifiers if billed else svc.modifiers),
        money(svc.charge),
        money(svc.paid),
        money(svc.original_units if svc.original_units is not None else svc.units),
        day(svc.service_date),
        svc.line_item_control_number,
    )


def plb_row(p: ProviderAdjustment, remittance_id: int) -> dict[str, Any]:
    return {
        "remittance_id": remittance_id,
        "provider_id": p.provider_id,
        "fiscal_period_date": p.fiscal_period_date,
        "position": p.position,
        "reason": p.reason,
        "reference": p.reference,
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
        "payment_id": payment_id,
        "patient_control_number": pcn,
        "amount": amount,
        "paid_on": paid_on,
        "billing_npi": (row.get("billing_provider_npi") or "").strip(),
        "member_id": (row.get("patient_member_id") or "").strip(),
    }
