"""The summary reader behind ``edirecon parse --summary``: counts and findings without records.

:func:`summarize` gives the very same :class:`FileSummary` (counts, findings with their codes,
messages, positions, severities and order) as reading every record with ``iter_transactions``
(kept as :func:`typed_summary` for the comparison tests), in a fraction of the time on the usual
files.

How: the envelopes are read by the same :class:`~parsers.x12.X12Reader` (ISA/IEA, GS/GE, ST/SE
counts and control numbers, truncation, delimiters, text encoding: all its findings are the
typed path's own).  For an 835 transaction set the claim payments -- from its first CLP to its
first PLB or its SE -- are checked at C speed against what the typed reader reads without a
finding: each distinct *shape* of segment (every digit read as 0; a remittance of 20,000 claim
payments has some 9,000) is matched once against a pattern -- ASCII text without control bytes,
segments of at most 80 bytes (so no element-length check applies), CLP01 present, at most 38
characters and not starting with a space, known CAS01 codes, well-formed amounts and quantities,
and only the segments CLP, CAS, DTM, REF, AMT, SVC, NM1, LQ, MIA and MOA (no LX/TS2/TS3, which end
a claim payment) -- and what a shape hides is collected from the original text with
``findall`` and checked as sets: the CLP02 and CLP06 codes, the DTM02 dates (real dates; 29
February falls back) and the CAS reason codes.  When all of that holds, the claim payments and
service lines are counted (CLP and SVC segments), and the header before the first CLP and the
tail from the first PLB (only PLB segments, then SE) are read by the typed reader, whose
findings and records they are.

**Fallback:** any transaction set where the fast scan sees something it does not check --
an 837 (every 837 is read by the typed path for now), an 835 whose claim payments hold any other
segment, shape, code or value (a malformed segment, an unknown code, a bad amount or date, a
long segment, an odd byte, no CLP at all, no SE, a delimiter that is white space) -- is read
whole by the typed path, exactly as ``iter_transactions`` reads it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from .document import FileSummary, _closed, _counted, iter_transactions, transaction_type
from .limits import refuse_oversized
from .model import Record
from .values import Values
from .x12 import LONG_SEGMENT, MAX_SEGMENT, Delimiters, TransactionSet, X12Reader, _count_segments
from .x835 import read_835
from .x837 import read_837

_WS = " \t\r\n"


def typed_summary(path: str | os.PathLike[str], summary: FileSummary | None = None, display_name: str | None = None) -> FileSummary:
    """The summary of a file from its typed records (every record built): the reference."""
    name = display_name or os.fspath(path)
    if summary is None:
        summary = FileSummary(name)
    for parsed in iter_transactions(path, summary, name):
        for _ in parsed.records:
            pass
    return summary


def summarize(path: str | os.PathLike[str], summary: FileSummary | None = None, display_name: str | None = None) -> FileSummary:
    """The summary of a file, equal to :func:`typed_summary`'s, without building the records of
    the transaction sets the fast scan can vouch for (module docstring)."""
    reader = X12Reader(path, display_name=display_name)
    if summary is None:
        summary = FileSummary(reader.name)
    reader.findings = summary.findings
    try:
        for ts in reader:
            v = Values(ts.envelope, summary.findings)
            kind, supported = transaction_type(ts, v)
            summary.transaction_types[kind] += 1
            if not supported or refuse_oversized(ts, v):
                continue
            if ts.code == "835":
                if _fast_835(ts, v, summary):
                    continue
                records: Iterator[Record] = read_835(ts, v)
            else:
                records = read_837(ts, v, kind)
            for _ in _counted(records, summary):
                pass
    finally:
        _closed(summary, reader)
    return summary


class _Patterns:
    """The compiled patterns of the 835 fast scan for one set of delimiters."""

    __slots__ = ("cas_reasons", "clp_codes", "date", "dtm_dates", "first_clp", "shapes", "tail")

    def __init__(self, d: Delimiters, known: dict[str, frozenset[str]]):
        t, e = re.escape(d.segment), re.escape(d.element)
        ch = "[^\\x00-\\x1f\\x7f-\\xff" + e + t + "]"  # one character of an element
        el = ch + "*"
        nl = "(?:\\r?\\n)?"
        amt = "-?(?:[0-9]+(?:\\.[0-9]{1,2})?|\\.[0-9]{1,2})"
        num = "[0-9]+(?:\\.[0-9]+)?"
        day31, day30, day28 = "(?:0[1-9]|[12][0-9]|3[01])", "(?:0[1-9]|[12][0-9]|30)", "(?:0[1-9]|1[0-9]|2[0-8])"
        date = f"(?!0000)[0-9]{{4}}(?:(?:0[13578]|1[02]){day31}|(?:0[469]|11){day30}|02{day28})"

        def codes(name: str) -> str:
            return "(?:" + "|".join(re.escape(c) for c in sorted(known[name], key=lambda c: (-len(c), c))) + ")"

        def opt(*parts: str) -> str:
            """Elements each present only if the previous one is: ``*a(*b(*c)?)?``."""
            out = ""
            for p in reversed(parts):
                out = f"(?:{e}{p}{out})?"
            return out

        rest = f"(?:{e}{el})*"
        triple = f"{e}{el}{e}(?:{amt})?{e}(?:{num})?"
        last = f"(?:{e}{el}(?:{e}(?:{amt})?(?:{e}(?:{num})?)?)?)?"
        # the segments as shapes: every digit read as 0 (codes with digits and dates: checked on the original text)
        segs = "|".join(
            (
                f"CLP{e}[^ \\x00-\\x1f\\x7f-\\xff{e}{t}]{ch}{{0,37}}" + opt(el, f"(?:{amt})?", f"(?:{amt})?", f"(?:{amt})?", el + rest),
                f"CAS(?:{e}{codes('CAS01')}?(?:{triple}){{0,5}}{last})?",
                f"DTM{opt(el, '(?:0{8})?' + rest)}",
                f"AMT{opt(el, f'(?:{amt})?' + rest)}",
                f"SVC{opt(el, f'(?:{amt})?', f'(?:{amt})?', el, f'(?:{num})?', el, f'(?:{num})?' + rest)}",
                f"(?:REF|NM0|LQ|MIA|MOA){rest}",  # NM0: NM1 with its digit read as 0 (NM2..NM9 are ignored)
            )
        )
        # every segment at most LONG_SEGMENT bytes (no element-length check applies), then its terminator
        seg = f"{nl}(?=[^\\x00-\\x1f\\x7f-\\xff{t}]{{0,{LONG_SEGMENT}}}{t})(?:{segs}){t}"
        self.shapes = re.compile(f"(?:{seg})*")
        self.date = re.compile(date)
        self.first_clp = re.compile(f"(?:\\A|{t})[{_WS}]*(CLP{e})")
        self.tail = re.compile(f"(?:PLB{e}[^{t}]*{t}[{_WS}]*)*")
        # on the original text (a match inside an element only adds a value to check): CLP02 and
        # CLP06; DTM02; the reason codes CAS02, 05, ... 17
        x = f"[^{e}{t}]*"
        self.clp_codes = re.compile(f"CLP{e}{x}(?:{e}({x})(?:{e}{x}){{0,3}}(?:{e}({x}))?)?")
        self.dtm_dates = re.compile(f"DTM{e}{x}{e}({x})")
        nested = ""
        for _ in range(6):
            nested = f"(?:{e}({x})(?:{e}{x}(?:{e}{x}{nested})?)?)?"
        self.cas_reasons = re.compile(f"CAS{e}{x}{nested}")


_ZEROS = str.maketrans("123456789", "000000000")
#: the claim payments are scanned a block of about this many characters at a time
BLOCK = 1 << 20


def _body_clean(text: str, start: int, end: int, term: str, p: _Patterns, known: dict[str, Any]) -> bool:
    """Whether the claim payments of an 835 (``text[start:end]``, from its first CLP) raise no finding.

    Their order raises none once the first is a CLP, so each distinct *shape* of segment (every
    digit read as 0: amounts, quantities and ids keep their form) is checked once against the
    pattern, and what a shape hides (CLP02 and CLP06 codes, DTM02 dates, CAS reason codes) is
    collected from the original text at C speed and checked as sets."""
    # an empty or blank segment inside is not numbered by the typed reader: not counted here either
    if any(text.find(term + gap + term, start, end) >= 0 for gap in ("", "\n", "\r\n")):
        return False
    shapes: set[str] = set()
    clp_codes: set[tuple[str, str]] = set()
    dates: set[str] = set()
    reasons: set[tuple[str, ...]] = set()
    # a block of about BLOCK characters at a time, cut after a terminator: memory stays bounded
    i, n = start, end
    while i < n:
        j = text.find(term, i + BLOCK, n) + 1 if i + BLOCK < n else 0
        block = text[i : j or n]
        shapes.update(block.translate(_ZEROS).split(term))
        clp_codes.update(p.clp_codes.findall(block))
        dates.update(p.dtm_dates.findall(block))
        reasons.update(p.cas_reasons.findall(block))
        i = j or n
    shapes.difference_update(("", "\n", "\r\n"))
    if p.shapes.fullmatch(term.join(shapes) + term) is None:
        return False
    for clp02, clp06 in clp_codes:
        if (clp02 and clp02 not in known["CLP02"]) or (clp06 and clp06 not in known["filing indicator"]):
            return False
    date = p.date.fullmatch
    if not all(date(d) for d in dates if d):
        return False
    carc = known["CARC"]
    return all(r in carc for found in reasons for r in found if r)


@lru_cache(maxsize=16)
def _patterns(d: Delimiters, known_key: tuple[tuple[str, frozenset[str]], ...]) -> _Patterns:
    return _Patterns(d, dict(known_key))


def _fast_835(ts: TransactionSet, v: Values, summary: FileSummary) -> bool:
    """Count an 835 transaction set without building its claim payments; False (nothing done)
    when the fast scan cannot vouch for it and the typed path must read it whole."""
    d = ts.delimiters
    term, elem = d.segment, d.element
    if term in _WS or elem in _WS or not term or not elem or len(term) != 1 or len(elem) != 1:
        return False
    text = ts._text
    # the transaction set must end with its SE segment and terminator
    last = len(text)
    while last and text[last - 1] in _WS:
        last -= 1
    stripped = text[max(0, last - MAX_SEGMENT) : last]
    if not stripped.endswith(term):
        return False
    k = stripped.rfind(term, 0, len(stripped) - 1) + 1
    if k == 0:
        return False
    se_at = max(0, last - MAX_SEGMENT) + k + len(stripped[k:]) - len(stripped[k:].lstrip(_WS))
    if not text.startswith("SE" + elem, se_at):
        return False
    known = v._known
    if any(not c.isalpha() for c in known["CAS01"]):
        return False  # the shapes keep CAS01 as it is only when no group code has a digit
    p = _patterns(d, tuple((name, frozenset(known[name])) for name in ("CAS01",)))
    m = p.first_clp.search(text)
    if m is None:
        return False
    b0 = m.start(1)
    plbs = [i for i in (text.find(term + "PLB" + elem, b0, se_at), text.find("\nPLB" + elem, b0, se_at)) if i >= 0]
    plb = min(plbs) if plbs else -1
    t0 = se_at
    if plb >= 0:
        t0 = plb + 1
        while text[t0] in _WS:
            t0 += 1
        # the tail: only PLB segments, then SE
        if p.tail.match(text, t0, se_at).end() != se_at:  # type: ignore[union-attr]
            return False
    if not _body_clean(text, b0, t0, term, p, known):
        return False
    # the header (ST to the first CLP) and the tail (PLB ... SE) are read by the typed reader
    reader = ts._reader
    header_segments = _count_segments(text[:b0], term)
    body_segments = text.count(term, b0, t0)
    head = TransactionSet(ts.envelope, ts.interchange, ts.group, ts.st, ts.source, ts.trusted, [], text[:b0], ts._base, ts._first_segment, reader)
    for _ in _counted(read_835(head, v), summary):
        pass
    claims = 1 + text.count(term + "CLP" + elem, b0, t0) + text.count("\nCLP" + elem, b0, t0)
    lines = text.count(term + "SVC" + elem, b0, t0) + text.count("\nSVC" + elem, b0, t0)
    summary.claim_payments += claims
    summary.service_lines += lines
    tail = TransactionSet(
        ts.envelope,
        ts.interchange,
        ts.group,
        ts.st,
        ts.source,
        ts.trusted,
        [],
        text[t0:],
        ts._base + t0,
        ts._first_segment + header_segments + body_segments,
        reader,
    )
    for _ in _counted(read_835(tail, v), summary):
        pass
    return True
