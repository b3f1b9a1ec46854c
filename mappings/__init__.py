"""Code lists and structure tables, as data.

Each table is a CSV file in this folder with a header row; ``code`` (or ``version``) is the key.
Tables are read once and cached.  ``tests/unit/test_mappings.py`` loads every one of them.

Add a table by dropping a CSV here and naming it in :data:`TABLES`.

``codes.csv`` is the registry of edirecon's own codes (finding codes, exception kinds, refund
reasons and statuses ...), by family (:data:`FAMILIES`): the code writes only registered codes
(:func:`registered` raises on any other), and ``tests/unit/test_registry.py`` checks that the docs
list exactly the codes of each family.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).parent

#: table name -> what it lists (and the X12 element it serves)
TABLES: dict[str, str] = {
    "claim_status_codes": "CLP02 claim status codes (835)",
    "cas_group_codes": "CAS01 claim adjustment group codes",
    "claim_adjustment_reason_codes": "CAS02/05/08/11/14/17 claim adjustment reason codes (CARC)",
    "plb_adjustment_reason_codes": "PLB03-1 provider adjustment reason codes, with their kind (recovery, interest, ...)",
    "claim_filing_indicator_codes": "SBR09 / CLP06 claim filing indicator codes, with the federal (Medicare/Medicaid) flag",
    "claim_frequency_codes": "CLM05-3 / CLP09 claim frequency type codes",
    "transaction_sets": "ST01 transaction set identifiers, and which ones edirecon models",
    "implementation_guides": "ST03 / GS08 implementation-guide versions and the transaction type each means",
    "element_lengths": "X12 minimum and maximum lengths of the elements at each segment position",
    "aging_buckets": "the aging buckets of the refund worklist (days in credit)",
    "refund_acknowledgment_codes": "PLB03-1 codes by which a payer acknowledges a refund the provider sent (72)",
    "cms838_reason_codes": "CMS-838 reason for a Medicare credit balance (1 duplicate, 2 other insurer primary, 3 other), by refund reason "
    "(PAYER_NOT_BILLED: a PAYER_OVERPAYMENT to a payer no claim names, rule 5)",
    "cms838_payment_methods": "refund payment methods and their CMS-838 method-of-payment code (C check, A adjustment, O other)",
    "cms838_filing_indicators": "claim filing indicators (SBR09/CLP06) of Medicare, with the part (A or B) of the CMS-838 detail page",
    "facility_type_codes": "CLM05-1 facility type codes of an 837I (type of facility + bill classification), with whether the claim is inpatient "
    "(the CMS-838 gives admission/discharge dates, else from/through)",
    "root_cause_patterns": "recurring overpayment patterns of the root-cause report, by refund reason",
    "routine_adjustment_codes": "CAS group-reason codes on nearly every normal payment (CO-45, PR-1/2/3), left out of the root-cause `carc` "
    "dimension unless they made the credit (a negative amount, or on a claim status other than normal_claim_statuses)",
    "codes": "the registry of edirecon's own codes, by family (FAMILIES): finding codes, exception kinds, refund reasons, statuses ...",
}

#: family of ``codes.csv`` -> what it lists (and where the docs list the same codes)
FAMILIES: dict[str, str] = {
    "finding": "finding codes of the parsers, with their severity (docs/findings.md)",
    "exception_kind": "the kind column of exceptions.csv, with the severity each is written with (docs/outputs.md)",
    "refund_reason": "the reason column of refund_requests.csv (docs/outputs.md)",
    "refund_status": "the engine's status column of refund_requests.csv (docs/outputs.md)",
    "recoupment_kind": "the kind column of recoupments.csv: CLAIM_REVERSAL and PLB_<code> of each recovery PLB code (docs/outputs.md)",
    "recoupment_status": "the status column of recoupments.csv (docs/outputs.md)",
    "workflow_status": "the statuses of the refund workflow, in the order `refund list --status` names them (docs/workflow-and-reports.md)",
    "audit_action": "the action of an audit event of the refund workflow (docs/workflow-and-reports.md)",
    "followup_kind": "the kind column of the report's followups.csv (docs/workflow-and-reports.md)",
    "refusal": "why the drop-folder watcher refuses an entry of inbound/ (docs/dropfolders.md)",
    "role": "the role of a user of `edirecon serve` (`edirecon user add --role`), from least to most allowed (docs/users.md)",
}


class Code(NamedTuple):
    """One registered code."""

    family: str
    code: str
    severity: str  # error, warning or info; empty in a family whose codes have none
    description: str


class UnregisteredCode(LookupError):
    """A code that ``codes.csv`` does not register in its family (or with another severity)."""


@cache
def rows(table: str) -> tuple[dict[str, str], ...]:
    """Every row of a table, as dicts keyed by the header."""
    if table not in TABLES:
        raise KeyError(f"unknown mapping table {table!r}; known: {', '.join(sorted(TABLES))}")
    with open(HERE / f"{table}.csv", newline="", encoding="utf-8") as fh:
        return tuple(csv.DictReader(fh))


@cache
def codes(table: str) -> dict[str, str]:
    """code -> description for a code list."""
    return {row["code"]: row["description"] for row in rows(table)}


def describe(table: str, code: str) -> str | None:
    """The description of a code, or None when the code is not in the list."""
    return codes(table).get(code)


@cache
def implementation_guides() -> dict[str, str]:
    """Version identifier (e.g. ``005010X222A1``) -> transaction type (``837P``, ``837I``, ``837D``, ``835``)."""
    return {row["version"]: row["transaction_type"] for row in rows("implementation_guides")}


@cache
def supported_transaction_sets() -> frozenset[str]:
    """ST01 codes edirecon models (835, 837)."""
    return frozenset(row["code"] for row in rows("transaction_sets") if row["supported"] == "yes")


@cache
def federal_filing_indicators() -> frozenset[str]:
    """Claim filing indicators of Medicare and Medicaid (60-day refund deadline)."""
    return frozenset(row["code"] for row in rows("claim_filing_indicator_codes") if row["federal"] == "yes")


@cache
def plb_kinds() -> dict[str, str]:
    """PLB reason code -> kind (``recovery``, ``interest``, ``withholding``, ``payment``, ``other``)."""
    return {row["code"]: row["kind"] for row in rows("plb_adjustment_reason_codes")}


@cache
def element_max_lengths() -> dict[str, tuple[int | None, ...]]:
    """Segment id -> maximum length by 1-based position (index 0 unused; None = composite or unknown)."""
    table: dict[str, dict[int, int | None]] = {}
    for row in rows("element_lengths"):
        limit = row["max"].strip()
        table.setdefault(row["segment"], {})[int(row["position"])] = int(limit) if limit.isdigit() else None
    return {seg: tuple(positions.get(i) for i in range(max(positions) + 1)) for seg, positions in table.items()}


@cache
def routine_adjustment_codes() -> dict[str, frozenset[str]]:
    """Group-reason code (``CO-45``) -> the claim statuses (CLP02) on which it is routine, not a cause."""
    return {row["code"]: frozenset(row["normal_claim_statuses"].split()) for row in rows("routine_adjustment_codes")}


@cache
def aging_buckets() -> tuple[tuple[str, str, int, int | None], ...]:
    """(code, description, first day, last day or None) of each worklist aging bucket, in order."""
    return tuple(
        (row["code"], row["description"], int(row["min_days"]), int(row["max_days"]) if row["max_days"].strip() else None) for row in rows("aging_buckets")
    )


def aging_bucket(days: int) -> str:
    """The aging bucket (code) of a number of days in credit."""
    for code, _description, low, high in aging_buckets():
        if days >= low and (high is None or days <= high):
            return code
    return aging_buckets()[0][0]  # a credit dated after the as-of day counts as new


@cache
def refund_acknowledgment_codes() -> frozenset[str]:
    """PLB reason codes by which a payer acknowledges a refund it received (72)."""
    return frozenset(row["code"] for row in rows("refund_acknowledgment_codes"))


@cache
def cms838_reason(refund_reason: str) -> str:
    """The CMS-838 reason code (1, 2, 3) of a refund reason; 3 (other) when not listed."""
    for row in rows("cms838_reason_codes"):
        if refund_reason in row["refund_reasons"].split():
            return row["code"]
    return "3"


@cache
def cms838_method(method: str) -> str:
    """The CMS-838 method-of-payment code of a refund payment method (check, adjustment, eft, offset)."""
    return {row["code"]: row["cms838_code"] for row in rows("cms838_payment_methods")}.get(method, "O")


@cache
def medicare_filing_indicators() -> dict[str, str]:
    """Claim filing indicator -> Medicare part (A, B)."""
    return {row["code"]: row["part"] for row in rows("cms838_filing_indicators")}


@cache
def inpatient_facility_types() -> frozenset[str]:
    """CLM05-1 facility type codes of inpatient bills (11 hospital inpatient, 21 SNF inpatient, 18 swing bed ...)."""
    return frozenset(row["code"] for row in rows("facility_type_codes") if row["inpatient"] == "yes")


@cache
def registry(family: str) -> dict[str, Code]:
    """code -> :class:`Code` of one family of ``codes.csv``, in the file's order."""
    if family not in FAMILIES:
        raise KeyError(f"unknown code family {family!r}; known: {', '.join(sorted(FAMILIES))}")
    return {row["code"]: Code(**row) for row in rows("codes") if row["family"] == family}


def registered(family: str, code: str, severity: str | None = None) -> str:
    """``code`` itself when ``codes.csv`` registers it in ``family`` (with ``severity``, when
    given); :class:`UnregisteredCode` otherwise: an unregistered code is never written."""
    entry = registry(family).get(code)
    if entry is None:
        raise UnregisteredCode(f"{code!r} is not a registered {family} code (mappings/codes.csv)")
    if severity is not None and severity != entry.severity:
        raise UnregisteredCode(f"{family} {code!r} is registered with severity {entry.severity!r}, not {severity!r} (mappings/codes.csv)")
    return code
