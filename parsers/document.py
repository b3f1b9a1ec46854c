"""Reading whole files: transaction sets dispatched to their transaction-set readers.

``iter_transactions`` is the streaming API the engine builds on (one transaction set at a time,
its records produced lazily, its trust known up front); ``iter_records`` flattens it.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from edirecon import mappings
from edirecon.errors import UsageError

from .findings import CODES, FindingList, Severity
from .limits import refuse_oversized
from .model import Claim, ClaimPayment, ProviderAdjustment, Record
from .values import Values
from .x12 import TransactionSet, X12Reader
from .x835 import read_835
from .x837 import read_837


@dataclass(slots=True)
class FileSummary:
    """What one file held, and every finding met while reading it."""

    file: str
    interchanges: int = 0
    functional_groups: int = 0
    transaction_sets: int = 0
    segments: int = 0
    claims: int = 0
    claim_payments: int = 0
    service_lines: int = 0
    provider_adjustments: int = 0
    transaction_types: Counter[str] = field(default_factory=Counter)
    findings: FindingList = field(default_factory=FindingList)  # at most findings.MAX_LISTED of a code, then a count

    def severities(self) -> dict[str, int]:
        """Number of findings by severity (error, warning, info), all three present; those past
        the listing limit (``FindingList``) are counted too."""
        counts: Counter[str] = Counter()
        for code, n in self.findings.counts.items():
            counts[CODES[code][0].value] += n
        return {s.value: counts.get(s.value, 0) for s in Severity}

    @property
    def has_errors(self) -> bool:
        return any(f.severity is Severity.ERROR for f in self.findings)


@dataclass(slots=True)
class ParsedTransaction:
    """One transaction set: its envelope, its type and (lazily) its records."""

    transaction: TransactionSet
    transaction_type: str  # 835, 837P, 837I, 837D, or the ST01 of an unsupported set
    supported: bool
    records: Iterator[Record]
    ordinal: int = 0  # its place among the file's transaction sets, from 1


def transaction_type(ts: TransactionSet, v: Values) -> tuple[str, bool]:
    """The transaction type of a transaction set and whether edirecon models it (with findings)."""
    code = ts.code
    if code not in mappings.supported_transaction_sets():
        known = mappings.codes("transaction_sets")
        seg, off = ts.source.segment, ts.source.offset
        if code in known:
            v.find("UNSUPPORTED_TRANSACTION", f"transaction set {code} ({known[code]}) is not modelled; its content is skipped", seg, off, "ST")
        else:
            v.find("UNKNOWN_TRANSACTION", f"ST01 is {code[:10]!r}; expected a health-care transaction set such as 835 or 837", seg, off, "ST")
        return code, False
    kind = mappings.implementation_guides().get(ts.version, "")
    if not kind.startswith(code):
        v.find(
            "UNKNOWN_VERSION",
            f"implementation guide {ts.version!r} is not known for {code}; the type is taken from the content",
            ts.source.segment,
            ts.source.offset,
            "ST",
        )
        kind = code
    return kind, True


def iter_transactions(
    path: str | os.PathLike[str],
    summary: FileSummary | None = None,
    display_name: str | None = None,
    wanted: Callable[[int], bool] | None = None,
) -> Iterator[ParsedTransaction]:
    """Stream the transaction sets of a file; consume each one's records before asking for the next.

    ``wanted(ordinal)`` (1 for the file's first ST) picks the transaction sets to read: the others
    are only located (their envelopes still checked), never parsed -- how several processes share
    one large file, or a resumed file skips what is done.
    """
    reader = X12Reader(path, display_name=display_name)
    if summary is None:
        summary = FileSummary(reader.name)
    reader.findings = summary.findings
    try:
        for ordinal, ts in enumerate(reader, start=1):
            if wanted is not None and not wanted(ordinal):
                continue
            v = Values(ts.envelope, summary.findings)
            kind, supported = transaction_type(ts, v)
            summary.transaction_types[kind] += 1
            if not supported or refuse_oversized(ts, v):
                records: Iterator[Record] = iter(())
            elif ts.code == "835":
                records = _counted(read_835(ts, v), summary)
            else:
                records = _counted(read_837(ts, v, kind), summary)
            yield ParsedTransaction(ts, kind, supported, records, ordinal)
            for _ in records:  # whatever the consumer left unread
                pass
    finally:
        _closed(summary, reader)


def _closed(summary: FileSummary, reader: X12Reader) -> None:
    """The file is read (or given up): its findings closed, the reader's envelope counts taken."""
    summary.findings.close()
    summary.interchanges = reader.interchanges
    summary.functional_groups = reader.groups
    summary.transaction_sets = reader.transaction_sets
    summary.segments = reader.segment_count


def _counted(records: Iterator[Record], summary: FileSummary) -> Iterator[Record]:
    for rec in records:
        if type(rec) is ClaimPayment:
            summary.claim_payments += 1
            summary.service_lines += len(rec.services)
        elif type(rec) is Claim:
            summary.claims += 1
            summary.service_lines += len(rec.lines)
        elif type(rec) is ProviderAdjustment:
            summary.provider_adjustments += 1
        yield rec


def iter_records(path: str | os.PathLike[str], summary: FileSummary | None = None, display_name: str | None = None) -> Iterator[Record]:
    """Every claim, claim payment and provider adjustment of a file, in file order."""
    for parsed in iter_transactions(path, summary, display_name):
        yield from parsed.records


def find_files(paths: list[Path], skip_suffixes: tuple[str, ...] = ()) -> list[Path]:
    """Files as given; folders recursed in sorted order, leaving out dotfiles, golden files
    (``*.expected.*``) and names ending in ``skip_suffixes`` (a file named explicitly is always
    kept).  A path that does not exist is a usage error."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and not p.name.endswith(skip_suffixes)
                and ".expected." not in p.name
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.exists():
            out.append(path)
        else:
            raise UsageError(f"{path}: no such file or folder")
    return out


def parse_file(path: str | os.PathLike[str], display_name: str | None = None) -> tuple[list[Record], FileSummary]:
    """Read a whole file into memory (small files, tests): its records and its summary."""
    summary = FileSummary(display_name or os.fspath(path))
    records = list(iter_records(path, summary, display_name))
    return records, summary
