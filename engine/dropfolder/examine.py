"""What a dropped file is and what it held, for ``edirecon watch``.

``identify`` is read before anything is decided about a file (its SHA-256, kind and interchange
ids).  ``examine`` reads it again after ingestion, with edirecon's own parser: every finding with
its position, what each transaction set was and whether the store took it, and the text of the
clean 835 sets to re-emit.  The counts of what was ingested come from the store (``stored_for``).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edirecon import parsers
from edirecon.engine.dropfolder.outbound import set_text
from edirecon.engine.ingest.ingestor import classify, patient_payment_row, sha256_of
from edirecon.engine.store.connection import Connection
from edirecon.engine.store.inbound import stored_from


@dataclass
class Identity:
    """What a claimed file is, read before anything is decided about it."""

    sha256: str
    kind: str  # x12, patient_payments, unsupported
    size: int
    isa06: str = ""
    isa08: str = ""
    isa13: str = ""
    first_set: str = ""  # ST01 of the first transaction set ("" when none)


@dataclass
class Stored:
    """What the store took from a file: counts, its transaction sets, and their remittances."""

    counts: dict[str, int]
    transactions: dict[int, Any]  # ordinal -> transactions row
    remittances: dict[int, Any]  # ordinal -> (payer_id, payee_npi, payments)


@dataclass
class Analysis:
    """What a file held and what the store took from it."""

    findings: list[parsers.Finding] = field(default_factory=list)
    sets: list[dict[str, Any]] = field(default_factory=list)
    clean_835: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    extra_errors: list[dict[str, Any]] = field(default_factory=list)  # CSV rows, unsupported files, duplicates

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [finding_dict(f) for f in self.findings if f.severity is parsers.Severity.ERROR] + self.extra_errors

    @property
    def broken(self) -> bool:
        return bool(self.errors)


def finding_dict(f: parsers.Finding) -> dict[str, Any]:
    s = f.source
    return {
        "code": f.code,
        "severity": f.severity.value,
        "message": f.message,
        "segment": s.segment,
        "offset": s.offset,
        "isa13": s.isa13,
        "gs06": s.gs06,
        "st02": s.st02,
    }


def identify(path: Path) -> Identity:
    """SHA-256, kind, and the first interchange's ISA06/ISA08/ISA13 and first ST01."""
    ident = Identity(sha256_of(path), classify(path), path.stat().st_size)
    if ident.kind != "x12":
        return ident
    reader = parsers.X12Reader(path)
    sets = iter(reader)
    try:
        first = next(sets, None)
        ident.first_set = first.code if first is not None else ""
    finally:
        sets.close()
    if reader.interchange_headers:
        isa = reader.interchange_headers[0]
        get = lambda i: isa[i].strip() if len(isa) > i else ""  # noqa: E731 - a tiny accessor
        ident.isa06, ident.isa08, ident.isa13 = get(6)[:15], get(8)[:15], get(13)[:9]
    return ident


def stored_for(conn: Connection, sha256: str) -> Stored:
    """What the store holds from the file with this SHA-256."""
    found = stored_from(conn, sha256)
    if found is None:
        return Stored({"transaction_sets_ingested": 0, "claims": 0, "claim_payments": 0, "patient_payments": 0}, {}, {})
    return Stored(*found)


def examine(path: Path, name: str, kind: str, stored: Stored) -> Analysis:
    """Read the file once more: findings with positions, its transaction sets, its clean 835 sets."""
    a = Analysis(counts=dict(stored.counts))
    if kind == "x12":
        _x12(path, name, a, stored)
    elif kind == "patient_payments":
        with open(path, newline="", encoding="utf-8-sig", errors="replace") as fh:
            for number, row in enumerate(csv.DictReader(fh), start=2):
                problem, _ = patient_payment_row(row)
                if problem:
                    a.extra_errors.append(
                        {"code": "PARSE_ERROR", "severity": "error", "message": f"row {number}: {problem}", "segment": number, "offset": None}
                    )
    else:
        summary = parsers.FileSummary(name)  # what the X12 reader says of it (EMPTY_FILE, NOT_X12 …)
        for _ in parsers.iter_transactions(path, summary, name):
            pass
        a.findings.extend(summary.findings)
        a.extra_errors.append(
            {
                "code": "UNSUPPORTED_FILE",
                "severity": "error",
                "segment": 0,
                "offset": 0,
                "message": "neither X12 (no ISA header) nor a patient-payments CSV (header patient_control_number,amount,paid_on,payment_id)",
            }
        )
    a.counts["transaction_sets"] = len(a.sets)
    return a


def _x12(path: Path, name: str, a: Analysis, stored: Stored) -> None:
    summary = parsers.FileSummary(name)
    for ordinal, parsed in enumerate(parsers.iter_transactions(path, summary, name), start=1):
        ts = parsed.transaction
        mark = len(summary.findings)
        for _ in parsed.records:
            pass
        errors = sum(1 for f in [*ts.findings, *summary.findings[mark:]] if f.severity is parsers.Severity.ERROR)
        row = stored.transactions.get(ordinal)
        ingested = bool(row is not None and row.ingested)
        if ingested:
            why = "ingested"
        elif not parsed.supported:
            why = "unsupported transaction set"
        elif not ts.trusted:
            why = "envelope errors (not postable)"
        elif ts.code == "835":
            why = "duplicate remittance (payer and trace number already ingested)"
        else:
            why = "not ingested"
        a.sets.append(
            {
                "ordinal": ordinal,
                "st01": ts.code,
                "st02": ts.control_number,
                "type": parsed.transaction_type,
                "segment": ts.source.segment,
                "offset": ts.source.offset,
                "ingested": ingested,
                "errors": errors,
                "status": why,
            }
        )
        remit = stored.remittances.get(ordinal)
        if ingested and errors == 0 and ts.code == "835" and remit is not None and ts.group is not None:
            d, isa = ts.delimiters, ts.interchange.isa
            a.clean_835.append(
                {
                    "payer_id": remit.payer_id,
                    "payee_npi": remit.payee_npi,
                    "claim_payments": int(remit.payments),
                    "st02": ts.control_number,
                    "source": name,
                    "isa13": ts.interchange.control_number,
                    "isa11": isa[11] if len(isa) > 11 else "^",
                    "isa12": isa[12] if len(isa) > 12 else "00501",
                    "isa15": isa[15] if len(isa) > 15 else "P",
                    "gs": list(ts.group.gs),
                    "delimiters": [d.element, d.repetition, d.component, d.segment],
                    # the bytes as received: text decoded from UTF-8 or Windows-1252 is encoded back
                    "text": parsers.raw_text(set_text((els for _n, _o, els in ts.segments()), d.element, d.segment), ts.interchange.encoding),
                }
            )
    seen = set()
    for f in summary.findings:  # a clean set read twice repeats its warnings: keep each once
        key = (f.code, f.source.segment, f.source.offset, f.message)
        if key not in seen:
            seen.add(key)
            a.findings.append(f)
