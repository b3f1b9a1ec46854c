"""Findings: problems in the input, as data with stable codes and positions.

A finding never stops parsing.  Each code is stable (downstream systems and tests key on it),
registered in mappings/codes.csv (family ``finding``) and documented in docs/findings.md; a test
fails when the two differ.

A message names the element and what was expected; it never repeats a value that can be patient
data (names, ids, dates, addresses: findings end up in logs).  Malformed amounts and quantities and
unknown codes are quoted; dates and pyx12's element values are not (docs/findings.md).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from edirecon import mappings

from .source import Source


class Severity(str, Enum):
    """How bad a finding is.  ``error`` makes ``edirecon parse`` exit 1."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


#: code -> (severity, what it means), from the registry: the ``finding`` family of
#: mappings/codes.csv (docs/findings.md documents every one; tests/unit/test_registry.py checks both)
CODES: dict[str, tuple[Severity, str]] = {c.code: (Severity(c.severity), c.description) for c in mappings.registry("finding").values()}


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found in an input, with a stable code and its position."""

    code: str
    message: str
    source: Source
    severity: Severity

    @classmethod
    def make(cls, code: str, message: str, source: Source) -> Finding:
        """A finding with the severity its code is registered with (an unregistered code raises
        :class:`~edirecon.mappings.UnregisteredCode`)."""
        registered = CODES.get(code)
        if registered is None:
            raise mappings.UnregisteredCode(f"{code!r} is not a registered finding code (mappings/codes.csv)")
        return cls(code, message, source, registered[0])

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
