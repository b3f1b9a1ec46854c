"""The Medicare Credit Balance Report (Form CMS-838) for a calendar quarter: its detail rows.

A Medicare credit is a refund to a payer billed as Medicare (claim filing indicator MA or MB,
``mappings/cms838_filing_indicators.csv``, or a payer listed in ``[cms838] medicare_payers``).  The
quarter's report lists every Medicare credit that arose on or before the last day of the quarter
and was not fully repaid before the quarter began; what was repaid up to the quarter's end, how,
and what is left.  Codes (reason 1/2/3, method C/A/O) come from ``mappings/``.  The printable form
is written by ``letters.cms838_form``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from edirecon import mappings
from edirecon.engine.decide.rules import Refund, payer_member_id
from edirecon.engine.workflow.refunds import Book, View
from edirecon.errors import UsageError
from edirecon.money import ZERO
from edirecon.money import text as money

COLUMNS = [
    "medicare_part",
    "beneficiary_name",
    "mbi",
    "icn",
    "type_of_bill",
    "admission_or_from_date",
    "discharge_or_through_date",
    "paid_date",
    "cost_report",
    "credit_balance",
    "amount_repaid",
    "method_of_payment",
    "amount_outstanding",
    "reason",
    "comments",
    "refund_id",
    "patient_control_number",
]


@dataclass(frozen=True)
class Quarter:
    year: int
    number: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        m = re.fullmatch(r"(\d{4})-?Q([1-4])", text.strip().upper())
        if m is None:
            raise UsageError(f"--quarter {text!r} is not a quarter like 2026Q4")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def last_ended(cls, day: date) -> Quarter:
        """The last quarter that ended on or before ``day`` (the one a CMS-838 is due for)."""
        number = (day.month - 1) // 3 + 1
        q = cls(day.year, number)
        if day != q.end:
            q = cls(day.year - 1, 4) if number == 1 else cls(day.year, number - 1)
        return q

    @property
    def start(self) -> date:
        return date(self.year, 3 * self.number - 2, 1)

    @property
    def end(self) -> date:
        following = date(self.year + 1, 1, 1) if self.number == 4 else date(self.year, 3 * self.number + 1, 1)
        return following - timedelta(days=1)

    def __str__(self) -> str:
        return f"{self.year}Q{self.number}"


def medicare_part(b: Book, r: Refund) -> str:
    """``A`` or ``B`` for a Medicare refund, "" for any other."""
    if r.payee_type != "payer":
        return ""
    part = mappings.medicare_filing_indicators().get(r.filing_indicator)
    if part:
        return part
    if r.payer_id in b.config.cms838.medicare_payers:
        return "A" if r.encounter.billing_claim.transaction_type == "837I" else "B"
    return ""


def repayments(b: Book, v: View) -> list[tuple[date | None, str, Decimal, str]]:
    """(day, method, amount, comment) of each repayment of a credit, oldest first: the refund the
    provider sent, and what the contractor took back itself (offset)."""
    r, s = v.refund, v.state
    out: list[tuple[date | None, str, Decimal, str]] = []
    if s["sent_on"] is not None and s["status"] not in ("voided",):
        out.append((s["sent_on"], s["method"] or "check", s["sent_amount"], f"{s['method']} {s['reference']} of {money(s['sent_amount'])} sent {s['sent_on']}"))
    if r is not None and r.recouped > 0:
        taken = [rc for rc in b.decisions.recoupments if rc.refund_id == r.refund_id]
        day = max((rc.effective_date for rc in taken if rc.effective_date), default=None)
        what = "; ".join(f"{rc.kind} trace {rc.trace_number}" for rc in taken) or "recoupment"
        recouped = r.recouped - (s["recouped_when_sent"] or ZERO) if s["sent_on"] is not None else r.recouped
        if recouped > 0:
            out.append((day, "offset", recouped, f"Medicare recouped {money(recouped)} ({what}) on {day}"))
        if s["sent_on"] is not None and s["recouped_when_sent"]:
            out.append((None, "offset", s["recouped_when_sent"], f"Medicare recouped {money(s['recouped_when_sent'])} before the refund was sent"))
    return sorted(out, key=lambda x: (x[0] or date.min, x[1]))


def cause(r: Refund) -> str:
    """What a credit's CMS-838 reason is looked up by (``mappings/cms838_reason_codes.csv``): the
    refund reason, or ``PAYER_NOT_BILLED`` for the whole payment of a payer no claim of the
    encounter names (rule 5: its evidence's role is "payer not billed"), whose claim another
    insurer was billed for as primary."""
    if r.reason == "PAYER_OVERPAYMENT" and any(ev.get("role") == "payer not billed" for ev in r.evidence):
        return "PAYER_NOT_BILLED"
    return r.reason


def paid_date(r: Refund) -> date | None:
    """The day Medicare paid the claim the credit is on: the duplicate payment, else the latest
    payment of that payer on the encounter."""
    if r.reason == "DUPLICATE_PAYMENT":
        return next((p.payment_date for p in r.encounter.payments if p.key == r.payment_key), None)
    return max((p.payment_date for p in r.encounter.payments if p.payer_id == r.payer_id and p.payment_date and p.status != "22"), default=None)


def bill_and_dates(r: Refund) -> tuple[str, date | None, date | None]:
    """The type of bill and the CMS-838's two dates of the claim a credit is on.

    An 837I has a type of bill (CLM05-1 facility type + CLM05-3 frequency, e.g. ``111``).  An
    inpatient bill (``mappings/facility_type_codes.csv``) gives its admission date (DTP*435, else
    the statement's from date) and its discharge date, the statement's through date (DTP*434; the
    DTP*096 discharge hour has no date); any other bill its statement from and through dates.
    Professional and dental claims, and 837I claims stored before revision 0005, have no type of
    bill: the first and last service dates of the encounter."""
    e = r.encounter
    c = e.billing_claim
    first, last = e.service_from, e.service_to or e.service_from
    if not c.type_of_bill:
        return "", first, last
    through = c.statement_to or last
    if c.type_of_bill[:2] in mappings.inpatient_facility_types():
        return c.type_of_bill, c.admission_date or c.statement_from or first, through
    return c.type_of_bill, c.statement_from or first, through


def cms838_rows(b: Book, quarter: Quarter) -> list[dict[str, Any]]:

    rows = []
    closed = b.config.cms838.cost_reports_closed_through
    for v in b.views.values():
        r = v.refund
        if r is None or v.status in ("voided", "withdrawn") or not medicare_part(b, r):
            continue
        arose = v.arose_on or r.identified_on
        if arose is None or arose > quarter.end:
            continue
        paid = [x for x in repayments(b, v) if x[0] is None or x[0] <= quarter.end]
        repaid = min(r.amount, sum((x[2] for x in paid), ZERO))
        before = min(r.amount, sum((x[2] for x in paid if x[0] is None or x[0] < quarter.start), ZERO))
        if before >= r.amount:
            continue  # repaid in full before the quarter began: reported, if at all, in an earlier quarter
        e = r.encounter
        comments = []
        why = cause(r)
        if r.reason == "DUPLICATE_PAYMENT":
            earlier = next((ev for ev in r.evidence if ev.get("role") == "earlier payment"), None)
            comments.append(f"duplicate of ICN {earlier['payer_claim_control_number']}" if earlier else "duplicate payment")
        elif why == "PAYER_NOT_BILLED":
            billed = e.primary_claim
            comments.append(
                f"Medicare was not billed: the claim was billed as primary to {billed.payer_name} ({billed.payer_id}), yet Medicare "
                "processed it as primary; its whole payment is refunded"
            )
        elif mappings.cms838_reason(why) == "3":
            comments.append("Medicare paid more than the balance left after contractual adjustments")
        else:
            comments.append("another insurer is primary: Medicare paid more than the patient responsibility left")
        comments += [x[3] for x in paid]
        if v.status == "double_refund":
            comments.append(f"refunded and also recouped: {money(v.state['double_refund_amount'])} to recover from the contractor")
        bill, start, through = bill_and_dates(r)
        rows.append(
            {
                "medicare_part": medicare_part(b, r),
                "beneficiary_name": e.patient_name,
                "mbi": payer_member_id(r),
                "icn": r.icn,
                "type_of_bill": bill,
                "admission_or_from_date": start,
                "discharge_or_through_date": through,
                "paid_date": paid_date(r),
                "cost_report": "C" if closed is not None and through is not None and through <= closed else "O",
                "credit_balance": r.amount,
                "amount_repaid": repaid,
                "method_of_payment": mappings.cms838_method(paid[0][1]) if paid else "",
                "amount_outstanding": r.amount - repaid,
                "reason": mappings.cms838_reason(why),
                "comments": "; ".join(comments),
                "refund_id": r.refund_id,
                "patient_control_number": e.pcn,
            }
        )
    rows.sort(key=lambda row: (row["medicare_part"], row["beneficiary_name"], row["icn"]))
    return rows
