"""Root-cause analytics of ``edirecon report``: which payers, codes and habits keep producing
overpayments and duplicates, so that they can be stopped.

Every refund the engine found counts, whatever its workflow status (a refund the payer took back
was still an overpayment).  A refund is dated by the day its credit arose (``refunds.credit_arose_on``).
The trend compares the 90 days up to the as-of day with the 90 days before.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from edirecon import mappings
from edirecon.engine.decide.facts import PaymentFact
from edirecon.engine.decide.rules import Refund
from edirecon.engine.workflow.refunds import Book, credit_arose_on
from edirecon.money import ZERO

WINDOW = timedelta(days=90)
REASONS = tuple(mappings.registry("refund_reason"))  # in the order of mappings/codes.csv: the columns of root_cause_months.csv


def behind(r: Refund) -> list[PaymentFact]:
    """The claim payments behind a refund: the duplicate payment; the payer's payments on the
    encounter for an over- or COB payment; every payment of the encounter for a patient refund
    (it is the payers' adjudication that set what the patient owed)."""
    payments = [p for p in r.encounter.payments if p.status != "22"]
    if r.reason == "DUPLICATE_PAYMENT":
        return [p for p in payments if p.key == r.payment_key]
    if r.payee_type == "payer":
        return [p for p in payments if p.payer_id == r.payer_id]
    return payments


def pattern(r: Refund, payments: dict[tuple[str, str, str], PaymentFact]) -> str:
    """The recurring pattern a refund is an instance of (``mappings/root_cause_patterns.csv``)."""
    if r.reason == "DUPLICATE_PAYMENT":
        earlier_ev = next((ev for ev in r.evidence if ev.get("role") == "earlier payment"), None)
        dup_ev = next((ev for ev in r.evidence if ev.get("role") == "duplicate payment"), None)
        if earlier_ev is None or dup_ev is None:
            return "DUP_NEW_ICN"
        earlier = payments.get((earlier_ev["payer_id"], earlier_ev["trace_number"], earlier_ev["payer_claim_control_number"]))
        if earlier is not None and earlier.pcn != r.encounter.pcn:
            return "DUP_OTHER_CLAIM_NUMBER"
        if earlier_ev["payer_claim_control_number"] == dup_ev["payer_claim_control_number"]:
            return "DUP_SAME_ICN"
        if earlier_ev["paid"] != dup_ev["paid"]:
            return "DUP_CORRECTION_NOT_REVERSED"
        return "DUP_NEW_ICN"
    return {"COB_OVERPAYMENT": "COB_SECONDARY_OVERPAID", "PAYER_OVERPAYMENT": "PAYER_PAID_OVER_BALANCE"}.get(r.reason, "PATIENT_PAID_OVER_RESPONSIBILITY")


def causing_carcs(payments: list[PaymentFact]) -> list[str]:
    """The group-reason codes (``CO-94``) of the adjustments on the payments behind a refund, but
    the routine ones (``mappings/routine_adjustment_codes.csv``: CO-45, PR-1/2/3) where they are
    routine: every amount of the code positive, on claims of a normal status (processed as
    primary, secondary or tertiary). A routine code stays when it made the credit itself: a
    negative amount (the payer gave back its write-off or the patient's share and paid it
    instead) or one on a claim of another status."""
    routine = mappings.routine_adjustment_codes()
    found: dict[str, bool] = {}  # code -> made the credit (not routine) at least once
    for p in payments:
        for group, reason, amount in p.all_adjustments:
            if not amount:
                continue
            code = f"{group}-{reason}"
            cause = code not in routine or amount < 0 or p.status not in routine[code]
            found[code] = found.get(code, False) or cause
    return sorted(code for code, cause in found.items() if cause)


def _trend(last: Decimal, previous: Decimal) -> str:
    return "up" if last > previous else "down" if last < previous else "flat"


def root_causes(b: Book) -> dict[str, list[dict[str, Any]]]:
    """Three tables: ``dimensions`` (by reason, payer, CARC (routine codes left out: ``causing_carcs``), procedure code, billing provider and
    month: count, amount, the two 90-day windows and the trend), ``months`` (count and amount per
    month and reason, every month from the first to the as-of month) and ``patterns`` (the
    recurring patterns, most frequent first)."""
    arose = credit_arose_on(b.decisions)
    by_key = {(p.payer_id, p.trace_number, p.icn): p for p in b.facts.payments}
    carc_names = mappings.codes("claim_adjustment_reason_codes")
    dims: dict[tuple[str, str], dict[str, Any]] = {}
    months: dict[str, dict[str, Any]] = {}
    patterns: dict[str, dict[str, Any]] = {}
    last_from, previous_from = b.as_of - WINDOW, b.as_of - 2 * WINDOW
    for r in sorted(b.decisions.refunds, key=lambda r: r.refund_id):
        day = arose.get(r.refund_id)
        window = "last" if day and last_from < day <= b.as_of else "previous" if day and previous_from < day <= last_from else ""
        paid = behind(r)
        carcs = causing_carcs(paid)
        procedures = sorted({line.procedure for p in paid for line in p.lines} or {ln.procedure_code for ln in r.encounter.billing_claim.lines})
        month = day.strftime("%Y-%m") if day else ""
        keys = [
            ("reason", r.reason, r.reason.replace("_", " ").lower()),
            ("payer", r.payer_id or "patient", r.payer_name or "patients"),
            *(("carc", c, carc_names.get(c.split("-", 1)[1], "")) for c in carcs),
            *(("procedure", code, "") for code in procedures),
            ("billing_provider", r.encounter.npi, b.config.providers.get(r.encounter.npi).name if r.encounter.npi in b.config.providers else ""),
            ("month", month, ""),
        ]
        for dimension, key, description in keys:
            slot = dims.setdefault(
                (dimension, key),
                {
                    "dimension": dimension,
                    "key": key,
                    "description": description,
                    "count": 0,
                    "amount": ZERO,
                    "last_90_days": ZERO,
                    "previous_90_days": ZERO,
                    "trend": "",
                },
            )
            slot["count"] += 1
            slot["amount"] += r.amount
            if window:
                slot[f"{window}_90_days"] += r.amount
        m = months.setdefault(month, _month(month))
        m["count"] += 1
        m["amount"] += r.amount
        m[r.reason] += r.amount
        code = pattern(r, by_key)
        p = patterns.setdefault(
            code,
            {
                "pattern": code,
                "description": mappings.codes("root_cause_patterns")[code],
                "reason": r.reason,
                "count": 0,
                "amount": ZERO,
                "payers": defaultdict(int),
                "first_seen": day,
                "last_seen": day,
            },
        )
        p["count"] += 1
        p["amount"] += r.amount
        p["payers"][r.payer_id or "patient"] += 1
        if day:
            p["first_seen"] = min(filter(None, [p["first_seen"], day]))
            p["last_seen"] = max(filter(None, [p["last_seen"], day]))
    order = {"reason": 0, "payer": 1, "carc": 2, "procedure": 3, "billing_provider": 4, "month": 5}
    dimensions = sorted(dims.values(), key=lambda d: (order[d["dimension"]], d["key"] if d["dimension"] == "month" else "", -d["amount"], d["key"]))
    for d in dimensions:
        d["trend"] = _trend(d["last_90_days"], d["previous_90_days"])
    ranked = sorted(patterns.values(), key=lambda p: (-p["count"], -p["amount"], p["pattern"]))
    pattern_rows = [
        {
            "rank": i,
            **{k: v for k, v in p.items() if k != "payers"},
            "payers": " ".join(f"{payer}:{n}" for payer, n in sorted(p["payers"].items())),
            "recurring": "yes" if p["count"] >= 2 else "no",
        }
        for i, p in enumerate(ranked, start=1)
    ]
    return {"dimensions": dimensions, "months": _fill_months(months, b.as_of), "patterns": pattern_rows}


def _month(month: str) -> dict[str, Any]:
    return {"month": month, "count": 0, "amount": ZERO, **dict.fromkeys(REASONS, ZERO)}


def _fill_months(months: dict[str, dict[str, Any]], as_of: date) -> list[dict[str, Any]]:
    """Every month from the first with a refund to the as-of month, empty ones included (a trend)."""
    known = sorted(m for m in months if m)
    if not known:
        return []
    year, month = map(int, known[0].split("-"))
    out = []
    while (year, month) <= (as_of.year, as_of.month) or f"{year:04d}-{month:02d}" <= known[-1]:
        key = f"{year:04d}-{month:02d}"
        out.append(months.get(key, _month(key)))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out
