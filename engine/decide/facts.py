"""The facts the rules decide on: encounters' claims, payments, PLBs, remittances, patient payments.

Every object here is plain data (``store.facts`` reads them from the store; ``decide.rules`` holds
the rules).  Orderings are by content (dates,
trace numbers, payer claim numbers, positions), never by database ids, so the decisions do not
depend on the order files arrived in or on the database used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple, TypedDict

from edirecon.money import ZERO


class Evidence(TypedDict, total=False):
    """One item of a refund's evidence: a claim payment (``PaymentFact.evidence``) and, on a payer's
    refund, its role; or a patient payment (patient_payment_id, paid_on, amount)."""

    payer_id: str
    trace_number: str
    payer_claim_control_number: str
    paid: Decimal
    file: str
    segment: int
    offset: int
    role: str  # "earlier payment", "duplicate payment", "payer not billed"
    patient_payment_id: str
    paid_on: date
    amount: Decimal


class ClaimLine(NamedTuple):
    """One billed service line (837 loop 2400), as the encounter rules need it."""

    line_number: str
    procedure_code: str
    modifiers: str
    charge: Decimal | None
    units: Decimal | None
    service_date: date | None
    line_item_control_number: str


@dataclass(slots=True)
class ClaimFact:
    id: int
    transaction_type: str
    pcn: str
    npi: str
    tin: str
    member_id: str
    other_member_ids: tuple[str, ...]
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
    lines: list[ClaimLine] = field(default_factory=list)
    type_of_bill: str = ""  # 837I: CLM05-1 facility type + CLM05-3 frequency ("" for 837P/837D)
    statement_from: date | None = None  # 837I DTP*434
    statement_to: date | None = None
    admission_date: date | None = None  # 837I DTP*435
    other_payer_ids: tuple[str, ...] | None = None  # 2330B; None: stored before the store kept them

    @property
    def payers(self) -> set[str] | None:
        """The payers this claim was billed to or names (2010BB and 2330B); None when not known."""
        if self.other_payer_ids is None:
            return None
        return {p for p in (self.payer_id, *self.other_payer_ids) if p}

    @property
    def order(self) -> tuple[date, str, int]:
        return (self.created_on or date.min, self.source_file, self.segment)

    @property
    def members(self) -> set[str]:
        return {m for m in [self.member_id, *self.other_member_ids] if m}


@dataclass(slots=True)
class PaymentLine:
    ordinal: int
    procedure: str
    modifiers: str
    charge: Decimal | None
    paid: Decimal
    units: Decimal | None
    service_date: date | None
    control: str
    adjustments: tuple[tuple[str, str, Decimal], ...] = ()


#: CLP02 -> the payer's place in the sequence (``PaymentFact.sequence``)
_SEQUENCE = {"1": 1, "19": 1, "2": 2, "20": 2, "3": 3, "21": 3}


@dataclass(slots=True)
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
    claim_adjustments: tuple[tuple[str, str, Decimal], ...] = ()
    lines: list[PaymentLine] | tuple[PaymentLine, ...] = ()
    crossover_carrier: str | None = ""  # NM1*TT NM109 ("" none); None: stored before the store kept it (revision 0007)

    @property
    def order(self) -> tuple[date, str, str, int, str]:
        """Content order: payment date, trace number, payer claim number, position."""
        return (self.payment_date or date.min, self.trace_number, self.icn, self.ordinal, self.pcn)

    @property
    def key(self) -> tuple[str, ...]:
        """Natural key, the same in any database."""
        return (self.payer_id, self.trace_number, self.icn, self.pcn, str(self.ordinal))

    @property
    def sequence(self) -> int:
        """1 primary, 2 secondary, 3 tertiary (from CLP02), 9 unknown."""
        return _SEQUENCE.get(self.status, 9)

    @property
    def all_adjustments(self) -> list[tuple[str, str, Decimal]]:
        return [*self.claim_adjustments, *(a for line in self.lines for a in line.adjustments)]

    def evidence(self) -> Evidence:
        return {
            "payer_id": self.payer_id,
            "trace_number": self.trace_number,
            "payer_claim_control_number": self.icn,
            "paid": self.paid,
            "file": self.source_file,
            "segment": self.segment,
            "offset": self.byte_offset,
        }


@dataclass(slots=True)
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
    def order(self) -> tuple[date, str, int, int]:
        return (self.payment_date or date.min, self.trace_number, self.segment, self.position)


@dataclass(slots=True)
class RemittanceFact:
    payer_id: str
    trace_number: str
    amount: Decimal
    credit_debit: str
    source_file: str
    segment: int
    paid_total: Decimal = ZERO
    plb_total: Decimal = ZERO


@dataclass(slots=True)
class PatientPaymentFact:
    payment_id: str
    pcn: str
    amount: Decimal
    paid_on: date
    npi: str
    member_id: str
    source_file: str = ""
    row_number: int = 0


@dataclass(slots=True)
class Facts:
    claims: list[ClaimFact]
    payments: list[PaymentFact]
    plbs: list[PlbFact]
    remittances: list[RemittanceFact]
    patient_payments: list[PatientPaymentFact]
    ingest_exceptions: list[dict[str, Any]]  # rows of the store's table as SQLAlchemy gives them: passed through, never read here
    identified: Mapping[str, date]  # refund id -> the day it was first identified (``refund_history``)
