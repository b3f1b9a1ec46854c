"""Parsers: bytes in, typed position-aware documents and findings out.  Never judges money.

The errors are re-exported here for the callers of ``parsers.parse_file``; they live in ``edirecon.errors``."""

from edirecon.errors import EdireconError, InputError, UsageError

from .document import (
    FileSummary,
    ParsedTransaction,
    find_files,
    iter_records,
    iter_transactions,
    parse_file,
)
from .encoding import raw as raw_text
from .findings import CODES, Finding, Severity
from .model import (
    Adjustment,
    Claim,
    ClaimPayment,
    LineAdjudication,
    OtherPayer,
    Party,
    ProviderAdjustment,
    Record,
    Remittance,
    ServiceLine,
    ServicePayment,
)
from .source import Source
from .x12 import X12Reader

__all__ = [
    "CODES",
    "Adjustment",
    "Claim",
    "ClaimPayment",
    "EdireconError",
    "FileSummary",
    "Finding",
    "InputError",
    "LineAdjudication",
    "OtherPayer",
    "ParsedTransaction",
    "Party",
    "ProviderAdjustment",
    "Record",
    "Remittance",
    "ServiceLine",
    "ServicePayment",
    "Severity",
    "Source",
    "UsageError",
    "X12Reader",
    "find_files",
    "iter_records",
    "iter_transactions",
    "parse_file",
    "raw_text",
]
