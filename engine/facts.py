"""Loading the store's facts into memory for deciding: encounters, payments, PLBs, patient payments.

Every object here is plain data; ``decide.py`` holds the rules.  Orderings are by content (dates,
trace numbers, payer claim numbers, positions), never by database ids, so the decisions do not
depend on the order files arrived in or on the database used.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from . import schema as t

ZERO = Decimal("0.00")


@dataclass
class ClaimFact:
    id: int
    transaction_type: str
    pcn: str
    npi: str
    tin: str
    member_id: str
    other_member_ids: list[str]
    patient_last: str
    patient_first: str
    dob: date | None
    service_from: date | None
    service_to: date | None
    charge: Decimal
    frequency: str
    original_reference: str
    payer_id: str
    payer_name: str
    responsibility: str
    filing_indicator: str
    created_on: date | None
    source_file: str
    segment: int
    lines: list[dict[str, Any]] = field(default_factory=list)

    @property
    def order(self) -> tuple[Any, ...]:
        return (self.created_on or date.min, self.source_file, self.segment)

    @property
    def members(self) -> set[str]:
        return {m for m in [self.member_id, *self.other_member_ids] if m}


@dataclass
class PaymentLine:
    ordinal: int
    procedure: str
    modifiers: str
    charge: Decimal | None
    paid: Decimal
    units: Decimal | None
    service_date: date | None
    control: str
    adjustments: list[tuple[str, str, Decimal]] = field(default_factory=list)


@dataclass
class PaymentFact:
    id: int
    payer_id: str
    payer_name: str
    trace_number: str
    payment_date: date | None
    payee_npi: str
    payee_tin: str
    ordinal: int
    pcn: str
    status: str
    charge: Decimal
    paid: Decimal
    patient_responsibility: Decimal
    filing_indicator: str
    icn: str
    member_id: str
    patient_last: str
    patient_first: str
    service_from: date | None
    service_to: date | None
    source_file: str
    segment: int
    byte_offset: int
    claim_adjustments: list[tuple[str, str, Decimal]] = field(default_factory=list)
    lines: list[PaymentLine] = field(default_factory=list)

    @property
    def order(self) -> tuple[Any, ...]:
        """Content order: payment date, trace number, payer claim number, position."""
        return (self.payment_date or date.min, self.trace_number, self.icn, self.ordinal, self.pcn)

    @property
    def key(self) -> tuple[str, ...]:
        """Natural key, the same in any database."""
        return (self.payer_id, self.trace_number, self.icn, self.pcn, str(self.ordinal))

    @property
    def sequence(self) -> int:
        """1 primary, 2 secondary, 3 tertiary (from CLP02), 9 unknown."""
        return {"1": 1, "19": 1, "2": 2, "20": 2, "3": 3, "21": 3}.get(self.status, 9)

    @property
    def all_adjustments(self) -> list[tuple[str, str, Decimal]]:
        return [*self.claim_adjustments, *(a for line in self.lines for a in line.adjustments)]

    def evidence(self) -> dict[str, Any]:
        return {
            "payer_id": self.payer_id,
            "trace_number": self.trace_number,
            "payer_claim_control_number": self.icn,
            "paid": self.paid,
            "file": self.source_file,
            "segment": self.segment,
            "offset": self.byte_offset,
        }


@dataclass
class PlbFact:
    payer_id: str
    payer_name: str
    trace_number: str
    payment_date: date | None
    reason: str
    reference: str
    amount: Decimal
    source_file: str
    segment: int
    position: int

    @property
    def order(self) -> tuple[Any, ...]:
        return (self.payment_date or date.min, self.trace_number, self.segment, self.position)


@dataclass
class RemittanceFact:
    payer_id: str
    trace_number: str
    amount: Decimal
    credit_debit: str
    source_file: str
    segment: int
    paid_total: Decimal = ZERO
    plb_total: Decimal = ZERO


@dataclass
class PatientPaymentFact:
    payment_id: str
    pcn: str
    amount: Decimal
    paid_on: date
    npi: str
    member_id: str


@dataclass
class Facts:
    claims: list[ClaimFact]
    payments: list[PaymentFact]
    plbs: list[PlbFact]
    remittances: list[RemittanceFact]
    patient_payments: list[PatientPaymentFact]
    ingest_exceptions: list[dict[str, Any]]
    identified: dict[str, date]


def _d(value: Any) -> Decimal:
    return ZERO if value is None else Decimal(value)


def load(conn: Connection) -> Facts:
    """Every fact in the store."""
    lines_by_claim: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in conn.execute(select(t.claim_lines)).mappings():
        lines_by_claim[row["claim_id"]].append(dict(row))
    claims = [
        ClaimFact(
            r["id"], r["transaction_type"], r["patient_control_number"], r["billing_npi"], r["billing_tin"], r["member_id"],
            [m for m in r["other_member_ids"].split("|") if m], r["patient_last"], r["patient_first"], r["patient_dob"],
            r["service_from"], r["service_to"], _d(r["total_charge"]), r["frequency"], r["original_reference"], r["payer_id"],
            r["payer_name"], r["payer_responsibility"], r["filing_indicator"], r["created_on"], r["source_file"], r["segment"],
            lines_by_claim.get(r["id"], []),
        )
        for r in conn.execute(select(t.claims)).mappings()
    ]
    adjustments: dict[int, list[Any]] = defaultdict(list)
    for r in conn.execute(select(t.adjustments)).mappings():
        adjustments[r["claim_payment_id"]].append(r)
    plines: dict[int, list[PaymentLine]] = defaultdict(list)
    for r in conn.execute(select(t.payment_lines).order_by(t.payment_lines.c.claim_payment_id, t.payment_lines.c.ordinal)).mappings():
        plines[r["claim_payment_id"]].append(
            PaymentLine(r["ordinal"], r["procedure_code"], r["modifiers"], r["charge"], _d(r["paid"]), r["units"], r["service_date"], r["line_item_control_number"])
        )
    rem = t.remittances
    payments: list[PaymentFact] = []
    query = select(t.claim_payments, rem.c.payer_id, rem.c.payer_name, rem.c.trace_number, rem.c.payment_date, rem.c.payee_npi, rem.c.payee_tin).join(
        rem, rem.c.id == t.claim_payments.c.remittance_id
    )
    for r in conn.execute(query).mappings():
        p = PaymentFact(
            r["id"], r["payer_id"], r["payer_name"], r["trace_number"], r["payment_date"], r["payee_npi"], r["payee_tin"], r["ordinal"],
            r["patient_control_number"], r["status"], _d(r["charge"]), _d(r["paid"]), _d(r["patient_responsibility"]), r["filing_indicator"],
            r["payer_claim_control_number"], r["member_id"], r["patient_last"], r["patient_first"], r["service_from"], r["service_to"],
            r["source_file"], r["segment"], r["byte_offset"],
        )
        p.lines = plines.get(r["id"], [])
        by_line = {line.ordinal: line for line in p.lines}
        for a in adjustments.get(r["id"], []):
            adj = (a["group_code"], a["reason"], _d(a["amount"]))
            if a["line_ordinal"] is None or a["line_ordinal"] not in by_line:
                p.claim_adjustments.append(adj)
            else:
                by_line[a["line_ordinal"]].adjustments.append(adj)
        payments.append(p)
    remittances: dict[int, RemittanceFact] = {}
    for r in conn.execute(select(rem)).mappings():
        remittances[r["id"]] = RemittanceFact(r["payer_id"], r["trace_number"], _d(r["payment_amount"]), r["credit_debit"], r["source_file"], r["segment"])
    for r in conn.execute(select(t.claim_payments.c.remittance_id, t.claim_payments.c.paid)).mappings():
        remittances[r["remittance_id"]].paid_total += _d(r["paid"])
    plbs: list[PlbFact] = []
    for r in conn.execute(
        select(t.provider_adjustments, rem.c.payer_id, rem.c.payer_name, rem.c.trace_number, rem.c.payment_date, rem.c.source_file).join(
            rem, rem.c.id == t.provider_adjustments.c.remittance_id
        )
    ).mappings():
        remittances[r["remittance_id"]].plb_total += _d(r["amount"])
        plbs.append(
            PlbFact(r["payer_id"], r["payer_name"], r["trace_number"], r["payment_date"], r["reason"], r["reference"], _d(r["amount"]), r["source_file"], r["segment"], r["position"])
        )
    patient = [
        PatientPaymentFact(r["payment_id"], r["patient_control_number"], _d(r["amount"]), r["paid_on"], r["billing_npi"], r["member_id"])
        for r in conn.execute(select(t.patient_payments)).mappings()
    ]
    exceptions = [dict(r) for r in conn.execute(select(t.ingest_exceptions)).mappings()]
    identified = {r["refund_id"]: r["identified_on"] for r in conn.execute(select(t.refund_history)).mappings()}
    return Facts(claims, payments, plbs, list(remittances.values()), patient, exceptions, identified)
