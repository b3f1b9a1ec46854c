"""Writing the outputs of a run: CSV and JSON Lines, each atomically (temporary name, then rename).

Format version 1 (docs/outputs.md).  Rows are sorted by content so the same decisions give the
same bytes.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from edirecon.engine.decide.encounters import Encounter
from edirecon.engine.decide.facts import PaymentFact
from edirecon.engine.decide.rules import Decisions, Refund
from edirecon.engine.record.csvout import Lines
from edirecon.money import ZERO, from_storage, text

FORMAT_VERSION = 1

REFUND_COLUMNS = [
    "refund_id",
    "reason",
    "payee_type",
    "payer_id",
    "payer_name",
    "patient_control_number",
    "payer_claim_control_number",
    "billing_provider_npi",
    "patient_name",
    "member_id",
    "service_date",
    "amount",
    "identified_on",
    "due_by",
    "status",
    "evidence",
]
RECOUPMENT_COLUMNS = [
    "recoupment_id",
    "kind",
    "payer_id",
    "payer_name",
    "trace_number",
    "effective_date",
    "amount",
    "patient_control_number",
    "payer_claim_control_number",
    "refund_id",
    "status",
]
BALANCE_COLUMNS = [
    "patient_control_number",
    "billing_provider_npi",
    "member_id",
    "service_date",
    "primary_payer_id",
    "total_charge",
    "payer_paid",
    "patient_paid",
    "write_offs",
    "patient_responsibility",
    "balance",
    "days_in_credit",
]
EXCEPTION_COLUMNS = ["kind", "severity", "source_file", "segment", "patient_control_number", "payer_id", "amount", "detail"]


#: an amount's two-decimal text (``edirecon.money``; the name reports and the CLI import)
money = text


def _scalar(value: Any) -> Any:
    if isinstance(value, Decimal):
        return money(value)
    if isinstance(value, date):
        return value.isoformat()
    if value is None:
        return ""
    return value


def _evidence_text(items: list[dict[str, Any]]) -> str:
    parts = []
    for ev in items:
        if "patient_payment_id" in ev:
            parts.append(f"patient payment {ev['patient_payment_id']} {_scalar(ev['paid_on'])} {_scalar(ev['amount'])}")
        else:
            parts.append(
                f"{ev['payer_id']} trace {ev['trace_number']} CLP07 {ev['payer_claim_control_number']} paid {_scalar(ev['paid'])} "
                f"at {ev['file']}:{ev['segment']}:{ev['offset']}"
            )
    return "; ".join(parts)


class Rows(Sequence[dict[str, Any]]):
    """Output rows made on demand from the decisions behind them (a sequence of dicts)."""

    def __init__(self, items: list[Any], make: Callable[[Any], dict[str, Any]]):
        self._items = items
        self._make = make

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self._make(item) for item in self._items[index]]
        return self._make(self._items[index])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return map(self._make, self._items)

    def pairs(self) -> Iterator[tuple[Any, dict[str, Any]]]:
        """(the item, its row), in order."""
        return ((item, self._make(item)) for item in self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)


#: an amount per (payer id, trace number)
Sums = dict[tuple[str, str], Decimal]


def trace_sums(payments: Iterable[PaymentFact], encounters: Iterable[Encounter]) -> tuple[Sums, Sums]:
    """Per payer and trace number, the claim payments (CLP04) of ``payments``, and those matched
    to one of ``encounters``: what the reconciliation audit compares with BPR02, summed from
    ZERO (the same quantum however the payments are split, e.g. into shards)."""
    matched_ids = {p.id for e in encounters for p in e.payments}
    paid: Sums = {}
    matched: Sums = {}
    for p in payments:
        key = (p.payer_id, p.trace_number)
        paid[key] = paid.get(key, ZERO) + p.paid
        if p.id in matched_ids:
            matched[key] = matched.get(key, ZERO) + p.paid
    return paid, matched


def refund_request(r: Refund) -> dict[str, Any]:
    """A refund as a row of ``refund_requests`` (its evidence aside), as the API also shows it."""
    e = r.encounter
    return {
        "refund_id": r.refund_id,
        "reason": r.reason,
        "payee_type": r.payee_type,
        "payer_id": r.payer_id,
        "payer_name": r.payer_name,
        "patient_control_number": e.pcn,
        "payer_claim_control_number": r.icn,
        "billing_provider_npi": e.npi,
        "patient_name": e.patient_name,
        "member_id": e.member_id,
        "service_date": e.service_from,
        "amount": r.amount,
        "identified_on": r.identified_on,
        "due_by": r.due_by,
        "status": r.status,
    }


def rows(d: Decisions, as_of: date, ingest_exceptions: list[dict[str, Any]]) -> dict[str, Sequence[dict[str, Any]]]:
    """The output rows of a run, as plain dicts (JSON form: evidence nested)."""
    refunds = [{**refund_request(r), "evidence": r.evidence} for r in d.refunds]
    recoupments = []
    for rc in d.recoupments:
        recoupments.append(
            {
                "recoupment_id": rc.recoupment_id,
                "kind": rc.kind,
                "payer_id": rc.payer_id,
                "payer_name": rc.payer_name,
                "trace_number": rc.trace_number,
                "effective_date": rc.effective_date,
                "amount": rc.amount,
                "patient_control_number": rc.encounter.pcn if rc.encounter else "",
                "payer_claim_control_number": rc.icn,
                "refund_id": rc.refund_id,
                "status": rc.status,
            }
        )

    def balance_row(b: Any) -> dict[str, Any]:
        e = b.encounter
        return {
            "patient_control_number": e.pcn,
            "billing_provider_npi": e.npi,
            "member_id": e.member_id,
            "service_date": e.service_from,
            "primary_payer_id": b.primary_payer_id,
            "total_charge": b.total_charge,
            "payer_paid": b.payer_paid,
            "patient_paid": b.patient_paid,
            "write_offs": b.write_offs,
            "patient_responsibility": b.patient_responsibility,
            "balance": b.balance,
            "days_in_credit": (as_of - b.in_credit_since).days if b.balance < 0 and b.in_credit_since else None,
        }

    # one row per encounter with a balance: made as it is written, never held as dicts all at once
    balances = Rows(sorted((b for b in d.balances if b.balance != 0), key=balance_order), balance_row)
    exceptions = exception_rows(ingest_exceptions, d.exceptions)
    refunds.sort(key=ORDER["refund_requests"])
    recoupments.sort(key=ORDER["recoupments"])
    exceptions.sort(key=ORDER["exceptions"])
    return {"refund_requests": refunds, "recoupments": recoupments, "credit_balances": balances, "exceptions": exceptions}


def exception_rows(ingest_exceptions: list[dict[str, Any]], decided: list[Any]) -> list[dict[str, Any]]:
    """The exceptions rows of the ingest exceptions (rows of the store) and of decided ``ExceptionRow``s."""
    return [
        {
            "kind": x["kind"],
            "severity": x["severity"],
            "source_file": x["source_file"],
            "segment": x["segment"],
            "patient_control_number": x["patient_control_number"],
            "payer_id": x["payer_id"],
            "amount": x["amount"],
            "detail": x["detail"],
        }
        for x in ingest_exceptions
    ] + [
        {
            "kind": x.kind,
            "severity": x.severity,
            "source_file": x.source_file,
            "segment": x.segment,
            "patient_control_number": x.pcn,
            "payer_id": x.payer_id,
            "amount": x.amount,
            "detail": x.detail,
        }
        for x in decided
    ]


def balance_order(b: Any) -> tuple[str, str]:
    """The order of credit_balances rows: claim number, then encounter id."""
    return (b.encounter.pcn, b.encounter.id)


#: the order of the rows of each output but credit_balances (``balance_order``), by row content
ORDER: dict[str, Callable[[dict[str, Any]], tuple[Any, ...]]] = {
    "refund_requests": lambda r: (r["patient_control_number"], r["reason"], r["payer_claim_control_number"], r["refund_id"]),
    "recoupments": lambda r: (r["kind"], r["trace_number"], r["payer_claim_control_number"], r["recoupment_id"]),
    "exceptions": lambda x: (x["kind"], x["source_file"], x["segment"], x["patient_control_number"], x["detail"]),
}


def tallies(d: Decisions) -> dict[str, int]:
    """The counts of a summary that come from the decisions rather than from the output rows."""
    return {"encounters": len(d.encounters), "matched_payments": d.matched, "credit_balances": sum(1 for b in d.balances if b.balance < 0)}


def summary(out: dict[str, Sequence[dict[str, Any]]], counts: dict[str, int], tally: dict[str, int], as_of: date) -> dict[str, Any]:
    """summary.json: ``counts`` of the store, ``tally`` of the decisions (``tallies``)."""
    by_reason: dict[str, dict[str, Any]] = {}
    for r in out["refund_requests"]:
        slot = by_reason.setdefault(r["reason"], {"count": 0, "amount": ZERO})
        slot["count"] += 1
        slot["amount"] += r["amount"]
    return {
        "format_version": FORMAT_VERSION,
        "as_of": as_of.isoformat(),
        **counts,
        "encounters": tally["encounters"],
        "matched_payments": tally["matched_payments"],
        "refunds": {k: {"count": v["count"], "amount": money(v["amount"])} for k, v in sorted(by_reason.items())},
        "refunds_open_amount": money(sum((r["amount"] for r in out["refund_requests"] if r["status"] not in ("settled_by_recoupment", "acknowledged")), ZERO)),
        "recoupments": {"count": len(out["recoupments"]), "amount": money(sum((r["amount"] for r in out["recoupments"]), ZERO))},
        "credit_balances": tally["credit_balances"],
        "exceptions": dict(sorted(Counter(x["kind"] for x in out["exceptions"]).items())),
    }


class _Atomic:
    """A file written under a temporary name and renamed into place when complete."""

    def __init__(self, path: Path):
        self.path = path
        self.tmp = path.with_name(f".{path.name}.tmp")

    def __enter__(self) -> io.TextIOWrapper:
        self.fh = open(self.tmp, "w", encoding="utf-8", newline="")
        return self.fh

    def __exit__(self, kind: Any, *_: Any) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.fh.close()
        if kind is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


COLUMNS = {"refund_requests": REFUND_COLUMNS, "recoupments": RECOUPMENT_COLUMNS, "credit_balances": BALANCE_COLUMNS, "exceptions": EXCEPTION_COLUMNS}
_MONEY_COLUMNS = {"total_charge", "payer_paid", "patient_paid", "write_offs", "patient_responsibility", "balance", "amount"}
_encode = json.JSONEncoder(default=_scalar, separators=(",", ":")).encode
_encode_plain = json.JSONEncoder(separators=(",", ":")).encode


class Renderer:
    """An output row as its CSV line and its JSON line (format version 1)."""

    def __init__(self, name: str):
        self.columns = COLUMNS[name]
        self.evidence = self.columns.index("evidence") if "evidence" in self.columns else -1
        self.lines = Lines(self.columns)

    def __call__(self, row: dict[str, Any]) -> tuple[str, str]:
        """The CSV line (text cells made safe for spreadsheets: ``csvout``) and the JSON line (raw values)."""
        if self.evidence >= 0:  # nested evidence: the general encoder
            flat = [_scalar(row[c]) for c in self.columns]
            flat[self.evidence] = _evidence_text(row["evidence"])
            return self.lines.row(flat), _encode(row) + "\n"
        # flat rows (most of them: credit balances): each value made text once, for both lines
        values = {k: money(v) if type(v) is Decimal else v.isoformat() if isinstance(v, date) else v for k, v in row.items()}
        return self.lines.row(["" if (v := values[c]) is None else v for c in self.columns]), _encode_plain(values) + "\n"


class Rendered(Sequence[dict[str, Any]]):
    """Output rows rendered elsewhere (by the shard processes: ``engine.shards``), handed to
    ``write`` as (CSV line, JSON line) in order, to be written once as they come; afterwards the
    rows are read back as dicts (amounts ``Decimal``, dates ``date``) from the JSON Lines file
    written."""

    def __init__(self, lines: Iterable[tuple[str, str]], count: int, keys: Sequence[tuple[str, str]] = ()):
        self.lines: Iterable[tuple[str, str]] | None = lines
        self.count = count
        #: the ``balance_order`` of each row, in order, once written (when the renderer kept them)
        self.keys = keys
        self.path: Path | None = None

    def take(self) -> Iterable[tuple[str, str]]:
        lines, self.lines = self.lines, None
        if lines is None:
            raise RuntimeError("these rows were written already")
        return lines

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: Any) -> Any:
        return list(self)[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for line in self.json_lines():
            yield _decode(line)

    def json_lines(self) -> Iterator[str]:
        """The JSON lines written, as they are in the file (each ends with a newline)."""
        if self.path is None:
            raise RuntimeError("these rows are read from their file once written")
        with open(self.path, encoding="utf-8") as fh:
            yield from fh


def _decode(json_line: str) -> dict[str, Any]:
    return typed(json.loads(json_line))


def typed(row: dict[str, Any]) -> dict[str, Any]:
    """An output row read back from its JSON form (in place): amounts ``Decimal``, days ``date``."""
    for key, value in row.items():
        if value is not None and value != "":
            if key in _MONEY_COLUMNS:
                row[key] = from_storage(value)
            elif key in ("service_date", "identified_on", "due_by", "effective_date"):
                row[key] = date.fromisoformat(value)
    return row


def write(out_dir: Path, out: dict[str, Sequence[dict[str, Any]]], summary_doc: dict[str, Any]) -> list[Path]:
    """Write every output, row by row; return the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in out.items():
        render = Renderer(name)
        lines: Iterable[tuple[str, str]] = table.take() if isinstance(table, Rendered) else map(render, table)
        with _Atomic(out_dir / f"{name}.csv") as csv_fh, _Atomic(out_dir / f"{name}.jsonl") as jsonl_fh:
            csv_fh.write(render.lines.header())
            for csv_line, json_line in lines:  # one pass: a row is made once for both files
                csv_fh.write(csv_line)
                jsonl_fh.write(json_line)
        written += [out_dir / f"{name}.csv", out_dir / f"{name}.jsonl"]
        if isinstance(table, Rendered):
            table.path = out_dir / f"{name}.jsonl"
    with _Atomic(out_dir / "summary.json") as fh:
        fh.write(json.dumps(summary_doc, indent=1, default=_scalar) + "\n")
    written.append(out_dir / "summary.json")
    return written
