"""Findings: problems in the input, as data with stable codes and positions.

A finding never stops parsing.  Each code below is stable (downstream systems and tests key on
it) and documented in docs/findings.md; a test fails when a code is missing there.

A message names the element and what was expected; it never repeats a value that can be patient
data (names, ids, dates, addresses: findings end up in logs).  Malformed amounts and quantities and
unknown codes are quoted; dates and pyx12's element values are not (docs/findings.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from .source import Source


class Severity(str, Enum):
    """How bad a finding is.  ``error`` makes ``edirecon parse`` exit 1."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


#: code -> (severity, what it means).  docs/findings.md documents every one.
CODES: dict[str, tuple[Severity, str]] = {
    # reading the file
    "EMPTY_FILE": (Severity.ERROR, "the file has no bytes, or only white space"),
    "NOT_X12": (Severity.ERROR, "the file does not start with an ISA interchange header"),
    "ISA_MALFORMED": (Severity.ERROR, "the ISA header is too short or its delimiters cannot be read"),
    "DELIMITER_COLLISION": (
        Severity.ERROR,
        "two delimiters of an interchange are the same character (or ISA16 is a letter, digit or space): "
        "its transaction sets are untrusted, or skipped when the terminator is the element separator",
    ),
    "SEGMENT_TERMINATOR_NOT_FOUND": (
        Severity.ERROR,
        "the segment terminator declared after ISA16 does not occur where segments should end (wrong terminator)",
    ),
    "NON_ASCII_BYTE": (Severity.WARNING, "a byte outside ASCII (X12 basic and extended character sets)"),
    "TEXT_ENCODING": (
        Severity.INFO,
        "an interchange has text outside ASCII: read as UTF-8 when all of it is valid UTF-8, else as Windows-1252",
    ),
    "CONTROL_CHARACTER": (Severity.ERROR, "a control byte (binary data) inside a segment"),
    "INVALID_SEGMENT_ID": (Severity.ERROR, "a segment id that is not 2-3 upper-case letters or digits"),
    "SEGMENT_TOO_LONG": (Severity.ERROR, "a segment longer than 64 KiB; it is skipped"),
    "ELEMENT_TOO_LONG": (Severity.ERROR, "an element longer than the X12 maximum for its position"),
    "MISSING_SEGMENT_TERMINATOR": (Severity.WARNING, "the last segment of the file has no terminator"),
    "TRUNCATED_SEGMENT": (
        Severity.ERROR,
        "the file ends inside a segment of a transaction set (no terminator); the partial segment is not read",
    ),
    "DATA_AFTER_INTERCHANGE": (Severity.ERROR, "bytes after IEA that are not another ISA interchange"),
    # envelopes
    "NO_ENVELOPE": (
        Severity.WARNING,
        "a bare ST..SE transaction set without ISA/GS: read with the delimiters of its ST segment, known by payer and TRN02 alone",
    ),
    "SEGMENT_OUTSIDE_TRANSACTION": (Severity.ERROR, "a segment between envelopes, outside any ST/SE"),
    "MISSING_GS": (Severity.ERROR, "a transaction set with no GS functional group around it"),
    "MISSING_SE": (Severity.ERROR, "a transaction set ends (next ST/GE/IEA or end of file) without SE"),
    "MISSING_GE": (Severity.ERROR, "a functional group ends without GE"),
    "MISSING_IEA": (Severity.ERROR, "an interchange ends without IEA"),
    "UNEXPECTED_TRAILER": (Severity.ERROR, "SE, GE or IEA with no matching header open"),
    "SE_COUNT_MISMATCH": (Severity.ERROR, "SE01 differs from the number of segments from ST to SE"),
    "SE_CONTROL_MISMATCH": (Severity.ERROR, "SE02 differs from ST02"),
    "GE_COUNT_MISMATCH": (Severity.ERROR, "GE01 differs from the number of transaction sets in the group"),
    "GE_CONTROL_MISMATCH": (Severity.ERROR, "GE02 differs from GS06"),
    "IEA_COUNT_MISMATCH": (Severity.ERROR, "IEA01 differs from the number of functional groups"),
    "IEA_CONTROL_MISMATCH": (Severity.ERROR, "IEA02 differs from ISA13"),
    "TRANSACTION_NOT_POSTABLE": (
        Severity.ERROR,
        "the transaction set has envelope errors: its records are returned but marked trusted=false",
    ),
    "TRANSACTION_TOO_LARGE": (
        Severity.ERROR,
        "a claim, claim payment or header loop of more than 50,000 segments: the transaction set is not read (nor posted)",
    ),
    "UNSUPPORTED_TRANSACTION": (
        Severity.WARNING,
        "a recognised transaction set edirecon does not model (270, 271, 276, 277, 278, 820, 834, 997, 999 ...)",
    ),
    "UNKNOWN_TRANSACTION": (Severity.ERROR, "an ST01 that is not an X12 health-care transaction set"),
    "TYPE_MISMATCH": (
        Severity.WARNING,
        "the content contradicts the version (e.g. SV3 dental lines under an 837I guide); the content decides the type",
    ),
    "UNKNOWN_VERSION": (
        Severity.WARNING,
        "an implementation-guide version (ST03/GS08) edirecon does not know; the type is taken from the content",
    ),
    # content
    "MISSING_ELEMENT": (Severity.ERROR, "a required element is empty or absent"),
    "INVALID_AMOUNT": (Severity.ERROR, "an amount that is not a decimal number; it is kept as null"),
    "AMOUNT_PRECISION": (Severity.WARNING, "an amount with more than two decimal places; kept exactly"),
    "INVALID_NUMBER": (Severity.ERROR, "a quantity (units, counts) that is not a number; it is kept as null"),
    "INVALID_DATE": (Severity.ERROR, "a date that is not a real CCYYMMDD date; it is kept as null"),
    "UNKNOWN_CODE": (Severity.WARNING, "a code not in edirecon's code lists; kept as it is"),
    "ORPHAN_SEGMENT": (
        Severity.ERROR,
        "a segment that belongs to a loop that has not started (e.g. SVC before any CLP); it is skipped",
    ),
    # pyx12 validation (edirecon validate)
    "IG_SEGMENT_ERROR": (Severity.ERROR, "pyx12: implementation-guide error on a segment (999 IK3)"),
    "IG_ELEMENT_ERROR": (Severity.ERROR, "pyx12: implementation-guide error on an element (999 IK4)"),
    "IG_TRANSACTION_ERROR": (Severity.ERROR, "pyx12: transaction-set level error (999 IK5)"),
    "IG_GROUP_ERROR": (Severity.ERROR, "pyx12: functional-group level error (999 AK9)"),
    "IG_INTERCHANGE_ERROR": (Severity.ERROR, "pyx12: interchange envelope error (TA1)"),
    "IG_NO_MAP": (Severity.WARNING, "pyx12 has no implementation-guide map for this version; not validated"),
    "IG_VALIDATOR_FAILED": (Severity.ERROR, "pyx12 itself failed on this file; its message is kept"),
}


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in an input, with a stable code and its position."""

    code: str
    message: str
    source: Source
    severity: Severity

    @classmethod
    def make(cls, code: str, message: str, source: Source) -> Finding:
        """A finding with the severity its code is registered with."""
        return cls(code, message, source, CODES[code][0])

    def __str__(self) -> str:
        s = self.source
        return f"{s.file}:{s.segment}:{s.offset}: {self.code} {self.message}"

    def as_dict(self) -> dict[str, object]:
        """The JSON form."""
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "source": self.source.as_dict(),
        }


#: the most findings of one code listed for one file; past it they are counted (``FindingList``)
MAX_LISTED = 1_000


class FindingList(list[Finding]):
    """A file's findings, as a list: the first ``MAX_LISTED`` of each code, then only a count, so
    that a file of a million faulty segments does not hold a million findings.  ``close()``, at the
    end of the file, adds one finding per code that went past the limit, saying how many more there
    were (same code and severity, at the first one left out)."""

    def __init__(self, findings: Iterable[Finding] = ()):
        super().__init__()
        self.counts: Counter[str] = Counter()
        self._first_left_out: dict[str, Finding] = {}
        self.extend(findings)

    def append(self, finding: Finding) -> None:
        self.counts[finding.code] += 1
        if self.counts[finding.code] <= MAX_LISTED:
            super().append(finding)
        else:
            self._first_left_out.setdefault(finding.code, finding)

    def extend(self, findings: Iterable[Finding]) -> None:
        for finding in findings:
            self.append(finding)

    def close(self) -> None:
        """Add the count of each code's findings left out (once: a second call adds nothing)."""
        for code, first in self._first_left_out.items():
            more = self.counts[code] - MAX_LISTED
            super().append(
                Finding(
                    code,
                    f"{more} more {code} findings in this file are not listed (the first {MAX_LISTED} are); the first of them: {first.message}",
                    first.source,
                    first.severity,
                )
            )
        self._first_left_out.clear()
