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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Connection, insert, select

import parsers
from parsers.model import Claim, ClaimPayment, ProviderAdjustment

from . import schema as t
from .bulk import allocate_ids, insert_rows
from .store import Store

log = structlog.get_logger("edirecon.ingest")

PATIENT_PAYMENTS_HEADER = ["patient_control_number", "amount", "paid_on", "payment_id"]
BATCH = 2000


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


def classify(path: Path) -> str:
    """``x12``, ``patient_payments`` or ``unsupported``, by content."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    text = head.decode("latin-1").removeprefix("\xef\xbb\xbf").lstrip(" \t\r\n")
    if text.startswith("ISA"):
        return "x12"
    first = text.splitlines()[0] if text else ""
    header = [h.strip() for h in first.split(",")]
    if header[:4] == PATIENT_PAYMENTS_HEADER:
        return "patient_payments"
    return "unsupported"


def exception_key(*parts: object) -> str:
    """A deterministic key for an exception, so the same problem is stored once."""
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()


def insert_ignore(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING, on SQLite and PostgreSQL alike."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    conn.execute(dialect_insert(table).on_conflict_do_nothing(), rows)


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
        [
            {
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
        ],
    )


class Ingestor:
    """Ingest files into a store."""

    def __init__(self, store: Store):
        self.store = store
        self.report = IngestReport()

    # -- files ----------------------------------------------------------------------
    def ingest(self, path: Path, display: str | None = None) -> None:
        name = display or str(path)
        self.report.files_seen += 1
        sha = sha256_of(path)
        kind = classify(path)
        with self.store.write() as conn:
            known = conn.execute(select(t.files).where(t.files.c.sha256 == sha)).mappings().first()
            if known is not None and (known["complete"] or known["path"] != name):
                if known["path"] != name:
                    record_exception(
                        conn, [sha, name], "DUPLICATE_FILE", name,
                        f"the same bytes (SHA-256 {sha[:12]}…) were ingested from {known['path']}; nothing ingested again",
                        severity="warning",
                    )
                self.report.files_skipped += 1
                log.info("file_skipped", file=name, reason="already_ingested", sha256=sha[:12])
                return
            if known is None:
                file_id = conn.execute(
                    insert(t.files).values(sha256=sha, path=name, kind=kind, complete=False).returning(t.files.c.id)
                ).scalar_one()
            else:
                file_id = known["id"]
                log.info("file_resumed", file=name, sha256=sha[:12])
        log.info("file_received", file=name, kind=kind, sha256=sha[:12])
        if kind == "x12":
            self._x12(path, name, file_id, sha)
        elif kind == "patient_payments":
            self._patient_payments(path, name, file_id, sha)
        else:
            with self.store.write() as conn:
                record_exception(
                    conn, [sha], "UNSUPPORTED_FILE", name,
                    "neither X12 (no ISA header) nor a patient-payments CSV (header patient_control_number,amount,paid_on,payment_id)",
                    severity="warning",
                )
        with self.store.write() as conn:
            conn.execute(t.files.update().where(t.files.c.id == file_id).values(complete=True))
        self.report.files_ingested += 1
        log.info("file_ingested", file=name)

    # -- X12 -------------------------------------------------------------------------
    def _x12(self, path: Path, name: str, file_id: int, sha: str) -> None:
        summary = parsers.FileSummary(name)
        with self.store.engine.connect() as conn:
            done = set(conn.execute(select(t.transactions.c.ordinal).where(t.transactions.c.file_id == file_id)).scalars())
        for ordinal, parsed in enumerate(parsers.iter_transactions(path, summary, name), start=1):
            if ordinal in done:
                continue
            ts = parsed.transaction
            # parse the whole transaction set before taking the write lock: another process
            # ingesting beside this one waits only for the inserts, not for the parsing
            records = list(parsed.records) if parsed.supported and ts.trusted else []
            with self.store.write() as conn:
                txn_id = conn.execute(
                    insert(t.transactions)
                    .values(
                        file_id=file_id, ordinal=ordinal, isa13=ts.envelope.isa13[:9], gs06=ts.envelope.gs06[:9],
                        st02=ts.envelope.st02[:9], transaction_type=parsed.transaction_type[:8], ingested=False,
                    )
                    .returning(t.transactions.c.id)
                ).scalar_one()
                ingested = False
                if not parsed.supported:
                    record_exception(
                        conn, [sha, ordinal], "UNSUPPORTED_TRANSACTION", name,
                        f"transaction set {ts.code} ST02={ts.control_number} is not modelled",
                        severity="warning", segment=ts.source.segment,
                    )
                elif not ts.trusted:
                    pass  # its envelope findings become PARSE_ERROR rows below
                elif ts.code == "835":
                    ingested = self._remittance(conn, iter(records), name, txn_id, ts.source.segment)
                else:
                    ingested = self._claims(conn, iter(records), name, txn_id)
                if ingested:
                    conn.execute(t.transactions.update().where(t.transactions.c.id == txn_id).values(ingested=True))
        with self.store.write() as conn:
            for f in summary.findings:
                if f.severity is parsers.Severity.ERROR:
                    record_exception(
                        conn, [sha, f.code, f.source.segment, f.source.offset, f.message], "PARSE_ERROR", name,
                        f"{f.code} at byte {f.source.offset}: {f.message}", segment=f.source.segment,
                    )

    def _claims(self, conn: Connection, records: Iterator[Any], name: str, txn_id: int) -> bool:
        batch: list[Claim] = []
        for record in records:
            batch.append(record)
            if len(batch) >= BATCH:
                self._insert_claims(conn, batch, txn_id, name)
                batch = []
        self._insert_claims(conn, batch, txn_id, name)
        return True

    def _insert_claims(self, conn: Connection, batch: list[Claim], txn_id: int, name: str) -> None:
        if not batch:
            return
        ids = allocate_ids(conn, t.claims, len(batch))
        rows = [{"id": cid, "transaction_id": txn_id, **claim_row(c, name)} for cid, c in zip(ids, batch, strict=True)]
        _bulk(conn, t.claims, rows)
        lines = [{"claim_id": cid, **line_row(line)} for cid, claim in zip(ids, batch, strict=True) for line in claim.lines]
        line_ids = allocate_ids(conn, t.claim_lines, len(lines))
        _bulk(conn, t.claim_lines, [{"id": i, **row} for i, row in zip(line_ids, lines, strict=True)])
        self.report.claims += len(batch)

    def _remittance(self, conn: Connection, records: Iterator[Any], name: str, txn_id: int, st_segment: int) -> bool:
        remittance_id: int | None = None
        batch: list[ClaimPayment] = []
        plbs: list[ProviderAdjustment] = []
        duplicate = False
        count = 0
        for record in records:
            if remittance_id is None and not duplicate:
                rem = record.remittance
                payer_id = rem.payer_id or (rem.payer.id if rem.payer else "")
                exists = conn.execute(
                    select(t.remittances.c.id, t.remittances.c.source_file).where(
                        t.remittances.c.payer_id == payer_id, t.remittances.c.trace_number == rem.trace_number
                    )
                ).first()
                if exists is not None:
                    duplicate = True
                    record_exception(
                        conn, [payer_id, rem.trace_number, name], "DUPLICATE_FILE", name,
                        f"remittance of payer {payer_id} with trace number {rem.trace_number} was ingested from {exists[1]}; not ingested again",
                        severity="warning", segment=st_segment, payer_id=payer_id, amount=rem.payment_amount,
                    )
                else:
                    row = {**remittance_row(rem, payer_id, name), "transaction_id": txn_id}
                    remittance_id = conn.execute(insert(t.remittances).returning(t.remittances.c.id), row).scalar_one()
            if duplicate:
                continue
            count += 1
            if isinstance(record, ProviderAdjustment):
                plbs.append(record)
            else:
                batch.append(record)
                if len(batch) >= BATCH:
                    self._insert_payments(conn, batch, remittance_id, name, count - len(batch))
                    batch = []
        if remittance_id is None:
            return False
        self._insert_payments(conn, batch, remittance_id, name, count - len(batch) - len(plbs))
        if plbs:
            conn.execute(insert(t.provider_adjustments), [plb_row(p, remittance_id) for p in plbs])
            self.report.provider_adjustments += len(plbs)
        return True

    def _insert_payments(self, conn: Connection, batch: list[ClaimPayment], remittance_id: int | None, name: str, first: int) -> None:
        if not batch:
            return
        ids = allocate_ids(conn, t.claim_payments, len(batch))
        _bulk(conn, t.claim_payments, [{"id": pid, **payment_row(p, remittance_id, first + i + 1, name)} for i, (pid, p) in enumerate(zip(ids, batch, strict=True))])
        lines: list[dict[str, Any]] = []
        adjustments: list[dict[str, Any]] = []
        for pid, payment in zip(ids, batch, strict=True):
            for a in payment.adjustments:
                adjustments.append({"claim_payment_id": pid, "line_ordinal": None, "group_code": a.group[:2], "reason": a.reason[:5], "amount": a.amount})
            for n, svc in enumerate(payment.services, start=1):
                lines.append({"claim_payment_id": pid, "ordinal": n, **payment_line_row(svc)})
                for a in svc.adjustments:
                    adjustments.append({"claim_payment_id": pid, "line_ordinal": n, "group_code": a.group[:2], "reason": a.reason[:5], "amount": a.amount})
        _bulk(conn, t.payment_lines, [{"id": i, **row} for i, row in zip(allocate_ids(conn, t.payment_lines, len(lines)), lines, strict=True)])
        _bulk(conn, t.adjustments, [{"id": i, **row} for i, row in zip(allocate_ids(conn, t.adjustments, len(adjustments)), adjustments, strict=True)])
        self.report.claim_payments += len(batch)

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
                            conn, [sha, number], "PARSE_ERROR", name, f"row {number}: {problem}",
                            segment=number, pcn=(row.get("patient_control_number") or "")[:38],
                        )
                        continue
                    rows.append({**parsed, "file_id": file_id, "row_number": number})
            insert_ignore(conn, t.patient_payments, rows)
        self.report.patient_payments += len(rows)


# -- rows ------------------------------------------------------------------------------


def _bulk(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert rows that all have the same keys (one driver-level executemany)."""
    if rows:
        columns = list(rows[0])
        pick = itemgetter(*columns)
        insert_rows(conn, table, columns, [pick(r) for r in rows])




def _dates(values: Iterable[date | None]) -> tuple[date | None, date | None]:
    known = [d for d in values if d is not None]
    return (min(known), max(known)) if known else (None, None)


def claim_row(c: Claim, name: str) -> dict[str, Any]:
    bp = c.billing_provider
    patient = c.patient
    subscriber = c.subscriber
    start, end = _dates([*(ln.service_date for ln in c.lines), *(ln.service_end_date for ln in c.lines)])
    if start is None:
        start, end = _dates([c.service_date, c.service_end_date, c.statement_from, c.statement_to])
    others = [op.subscriber.id for op in c.other_payers if op.subscriber is not None and op.subscriber.id]
    return {
        "transaction_type": c.transaction_type[:8],
        "patient_control_number": c.patient_control_number[:38],
        "billing_npi": (bp.id if bp is not None and bp.id_qualifier == "XX" else "")[:80],
        "billing_tin": (bp.tin if bp is not None else "")[:80],
        "member_id": (subscriber.id if subscriber is not None else "")[:80],
        "other_member_ids": "|".join(others),
        "patient_last": (patient.name if patient is not None else "")[:60],
        "patient_first": (patient.first_name if patient is not None else "")[:35],
        "patient_dob": patient.date_of_birth if patient is not None else None,
        "service_from": start,
        "service_to": end,
        "total_charge": c.total_charge,
        "frequency": c.frequency[:2],
        "original_reference": c.original_reference[:50],
        "payer_id": (c.payer.id if c.payer is not None else "")[:80],
        "payer_name": (c.payer.name if c.payer is not None else "")[:60],
        "payer_responsibility": c.payer_responsibility[:2],
        "filing_indicator": c.claim_filing_indicator[:2],
        "created_on": c.created_on,
        "source_file": name,
        "segment": c.source.segment if c.source else 0,
        "byte_offset": c.source.offset if c.source else 0,
    }


def line_row(line: Any) -> dict[str, Any]:
    return {
        "line_number": line.number[:6],
        "procedure_code": line.procedure_code[:48],
        "modifiers": ":".join(line.modifiers)[:20],
        "charge": line.charge,
        "units": line.units,
        "service_date": line.service_date,
        "line_item_control_number": line.line_item_control_number[:50],
    }


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


def payment_row(p: ClaimPayment, remittance_id: int | None, ordinal: int, name: str) -> dict[str, Any]:
    person = p.insured or p.patient or p.corrected_insured
    patient = p.patient or p.insured
    start, end = _dates([*(s.service_date for s in p.services), *(s.service_end_date for s in p.services)])
    if start is None:
        start, end = _dates([p.statement_from, p.statement_to])
    return {
        "remittance_id": remittance_id,
        "ordinal": ordinal,
        "patient_control_number": p.patient_control_number[:38],
        "status": p.status[:2],
        "charge": p.charge,
        "paid": p.paid,
        "patient_responsibility": p.patient_responsibility,
        "filing_indicator": p.claim_filing_indicator[:2],
        "payer_claim_control_number": p.payer_claim_control_number[:50],
        "member_id": (person.id if person is not None else "")[:80],
        "patient_last": (patient.name if patient is not None else "")[:60],
        "patient_first": (patient.first_name if patient is not None else "")[:35],
        "service_from": start,
        "service_to": end,
        "source_file": name,
        "segment": p.source.segment if p.source else 0,
        "byte_offset": p.source.offset if p.source else 0,
    }


def payment_line_row(svc: Any) -> dict[str, Any]:
    billed = bool(svc.original_procedure_code)
    return {
        "procedure_code": (svc.original_procedure_code if billed else svc.procedure_code)[:48],
        "modifiers": ":".join(svc.original_modifiers if billed else svc.modifiers)[:20],
        "charge": svc.charge,
        "paid": svc.paid,
        "units": svc.original_units if svc.original_units is not None else svc.units,
        "service_date": svc.service_date,
        "line_item_control_number": svc.line_item_control_number[:50],
    }


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
    try:
        amount = Decimal(amount_text)
        if not amount.is_finite():
            raise InvalidOperation
    except InvalidOperation:
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


