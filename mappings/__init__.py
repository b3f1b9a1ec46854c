"""Code lists and structure tables, as data.

Each table is a CSV file in this folder with a header row; ``code`` (or ``version``) is the key.
Tables are read once and cached.  ``tests/test_mappings.py`` loads every one of them.

Add a table by dropping a CSV here and naming it in :data:`TABLES`.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

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
}


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
    return {
        seg: tuple(positions.get(i) for i in range(max(positions) + 1)) for seg, positions in table.items()
    }
