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

An 837 transaction set (837P, 837I, 837D) is scanned the same way from its first HL to SE
(:func:`_fast_837`): the shapes of its segments, the values they hide (dates, frequency and
filing-indicator codes, CAS reasons) and the order of its segments against the reader's states
(no LX, service segment, SVD or CAS outside the loop that reads it, every LX followed by the
guide's service segment), all found by searches for what would be wrong.

**Fallback:** any transaction set where the fast scan sees something it does not check --
an 837 of an unknown guide, with any finding in its body, an irregular layout (blank lines,
indentation), a CLM or SBR before its first HL; an 835 whose claim payments hold any other
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
                if _fast_837(ts, v, kind, summary):
                    continue
                records = read_837(ts, v, kind)
            for _ in _counted(records, summary):
                pass
    finally:
        _closed(summary, reader)
    return summary


class _Patterns:
    """The compiled patterns of the 835 fast scan for one set of delimiters."""

    __slots__ = ("bad_values", "first_clp", "shapes", "tail")

    def __init__(self, d: Delimiters, known: dict[str, frozenset[str]]):
        t, e, ch, el = _atoms(d)
        nl = "(?:\\r?\\n)?"
        amt, num, one_of = _AMOUNT, _NUMBER, _one_of

        def codes(name: str) -> str:
            return one_of(known[name])

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
        self.first_clp = re.compile(f"(?:\\A|{t})[{_WS}]*(CLP{e})")
        self.tail = re.compile(f"(?:PLB{e}[^{t}]*{t}[{_WS}]*)*")
        # on the original text, a value a shape hides that the typed reader would flag (a match
        # inside an element only adds a value to check): a CLP02 or CLP06 code, a DTM02 date, a
        # CAS reason code (CAS02, 05, ... 17) -- searches that find nothing on a clean remittance
        x = f"[^{e}{t}]*"
        end = f"[{e}{t}]"
        # (one search each: each starts with a literal the engine scans for at C speed)
        self.bad_values = tuple(
            re.compile(bad)
            for bad in (
                f"CLP{e}{x}{e}(?:(?!{one_of(known['CLP02'])}{end}|{end})|{x}(?:{e}{x}){{3}}{e}(?!{one_of(known['filing indicator'])}{end}|{end}))",
                f"DTM{e}{x}{e}(?!{REAL_DATE}{end}|{end})",
                f"CAS{e}{x}(?:{e}{x}{e}{x}{e}{x}){{0,5}}{e}(?!{one_of(known['CARC'])}{end}|{end})",
            )
        )


#: an amount as the readers accept it without a finding, and a number (units)
_AMOUNT = "-?(?:[0-9]+(?:\\.[0-9]{1,2})?|\\.[0-9]{1,2})"
_NUMBER = "[0-9]+(?:\\.[0-9]+)?"


def _atoms(d: Delimiters) -> tuple[str, str, str, str]:
    """The segment terminator and element separator escaped, one character of an element, and an
    element (any run of them): what the shape patterns of both scans are made of."""
    t, e = re.escape(d.segment), re.escape(d.element)
    ch = "[^\\x00-\\x1f\\x7f-\\xff" + e + t + "]"
    return t, e, ch, ch + "*"


def _one_of(codes: Any) -> str:
    """A pattern matching exactly one of ``codes``, as a trie (``1(?:0|1)?`` ...): the regular
    expression engine tries the alternatives of a group one by one, so 400 codes side by side
    cost 400 tries where the trie costs a few."""
    trie: dict[str, Any] = {}
    for code in codes:
        node = trie
        for c in code:
            node = node.setdefault(c, {})
        node[""] = {}

    def pattern(node: dict[str, Any]) -> str:
        ends = "" in node
        branches = [re.escape(c) + pattern(child) for c, child in sorted(node.items()) if c]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 and not ends and len(branches[0]) <= 2 else "(?:" + "|".join(branches) + ")"
        return body + "?" if ends else body

    return "(?:" + pattern(trie) + ")" if trie else "(?!)"


#: a real CCYYMMDD date (what ``Values.day`` reads without a finding): year 1 to 9999, the
#: month's days, 29 February of the leap years of the Gregorian calendar
_DAY31, _DAY30, _DAY28 = "(?:0[1-9]|[12][0-9]|3[01])", "(?:0[1-9]|[12][0-9]|30)", "(?:0[1-9]|1[0-9]|2[0-8])"
REAL_DATE = (
    f"(?:(?!0000)[0-9]{{4}}(?:(?:0[13578]|1[02]){_DAY31}|(?:0[469]|11){_DAY30}|02{_DAY28})"
    "|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)0229)"
)

_ZEROS = str.maketrans("123456789", "000000000")
#: the claim payments are scanned a block of about this many characters at a time
BLOCK = 1 << 20


def _body_clean(text: str, start: int, end: int, term: str, p: _Patterns, known: dict[str, Any]) -> bool:
    """Whether the claim payments of an 835 (``text[start:end]``, from its first CLP) raise no finding.

    Their order raises none once the first is a CLP, so each distinct *shape* of segment (every
    digit read as 0: amounts, quantities and ids keep their form) is checked once against the
    pattern, and what a shape hides (CLP02 and CLP06 codes, DTM02 dates, CAS reason codes) is
    checked on the original text by one search for a value the typed reader would flag."""
    shapes: set[str] = set()
    # a block of about BLOCK characters at a time, cut after a terminator: memory stays bounded
    i, n = start, end
    while i < n:
        j = text.find(term, i + BLOCK, n) + 1 if i + BLOCK < n else 0
        block = text[i : j or n]
        parts = block.translate(_ZEROS).split(term)
        # after the block's last terminator: nothing, or the white space before the tail
        if parts.pop().strip(_WS):
            return False
        # an empty or blank segment inside ("" or a line break alone) has no shape: not vouched for
        shapes.update(parts)
        i = j or n
    if p.shapes.fullmatch(term.join(shapes) + term) is None:
        return False
    return all(bad.search(text, start, end) is None for bad in p.bad_values)


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
    p = _patterns(d, tuple((name, frozenset(known[name])) for name in ("CAS01", "CLP02", "filing indicator", "CARC")))
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


#: the service-line segment of each 837 guide (another one in a claim is a TYPE_MISMATCH)
_SERVICE = {"837P": "SV1", "837I": "SV2", "837D": "SV3"}


class _Patterns837:
    """The compiled patterns of the 837 fast scan for one set of delimiters, line break and guide."""

    __slots__ = ("shapes", "wrong")

    def __init__(self, d: Delimiters, nl: str, kind: str, known: dict[str, frozenset[str]]):
        t, e, ch, el = _atoms(d)
        s = t + re.escape(nl)  # what comes before every segment of the body
        amt, num, one_of = _AMOUNT, _NUMBER, _one_of

        def codes(name: str) -> str:
            return one_of(known[name])

        def elements(*parts: str) -> str:
            """Elements each present only if the previous one is, the first one required: ``*a(*b(*c)?)?``."""
            out = ""
            for p in reversed(parts[1:]):
                out = f"(?:{e}{p}{out})?"
            return f"{e}{parts[0]}{out}"

        rest = f"(?:{e}{el})*"
        am, nm = f"(?:{amt})?", f"(?:{num})?"
        triple = f"{e}{el}{e}{am}{e}{nm}"
        last = f"(?:{e}{el}(?:{e}{am}(?:{e}{nm})?)?)?"
        service = {
            "837P": elements(el, am, el, nm + rest),  # SV101 procedure, SV102 charge, SV103 basis, SV104 units
            "837I": elements(el, el, am, el, nm + rest),  # SV201 revenue code, SV202 procedure, SV203 charge, SV205 units
            "837D": elements(el, am, el, el, el, nm + rest),  # SV301 procedure, SV302 charge, SV306 units
        }[kind]
        checked = "CLM|LX|SV0|SVD|CAS|AMT|DTP|DMG|SBR|HL|BHT|SE|ST|GS|GE|IEA|ISA"
        # the segments as shapes: every digit read as 0 (codes and dates: checked on the original text)
        segs = "|".join(
            (
                f"CLM{e}[^ \\x00-\\x1f\\x7f-\\xff{e}{t}]{ch}{{0,37}}{e}{amt}{rest}",  # CLM01 1-38 characters, CLM02 an amount
                f"LX{e}{el}{rest}",
                f"SV0{service}",
                f"SVD{elements(el, am, el, el, nm + rest)}",  # SVD02 paid, SVD05 units
                f"CAS{e}{codes('CAS01')}?(?:{triple}){{0,5}}{last}",
                f"AMT{elements(el, am + rest)}",
                f"DTP{e}{el}{e}(?:D0{e}0{{8}}|RD0{e}0{{8}}-0{{8}})",  # D8 or RD8 (any digit: read the same)
                f"DMG{e}D0{e}0{{8}}{rest}",
                f"(?:SBR|HL){e}{el}{rest}",
                f"(?!(?:{checked})[{e}{t}])[A-Z0]{{2,3}}{rest}",  # segments the 837 reader reads without a check
            )
        )
        # each segment after its line break, at most LONG_SEGMENT bytes (no element-length check applies)
        seg = f"{re.escape(nl)}(?=[^\\x00-\\x1f\\x7f-\\xff{t}]{{0,{LONG_SEGMENT}}}{t})(?:{segs}){t}"
        self.shapes = re.compile(f"(?:{seg})*")
        x = f"[^{e}{t}]*"
        end = f"[{e}{t}]"
        c = re.escape(d.component)
        xc = f"[^{e}{t}{c}]*"
        # on the original text, a value a shape hides that the reader would flag: a DTP03 or DMG02
        # date, the frequency code (CLM05-3), an SBR09 code, a CAS reason code (CAS02, 05, ... 17)
        bad_values = (
            f"DTP{e}{x}{e}{x}{e}(?!{REAL_DATE}(?:-{REAL_DATE})?{end})",
            f"DMG{e}{x}{e}(?!{REAL_DATE}{end})",
            f"CLM(?:{e}{x}){{4}}{e}{xc}{c}{xc}{c}(?!{one_of(known['frequency'])}(?:{end}|{c})|{end}|{c})",
            f"SBR(?:{e}{x}){{8}}{e}(?!{one_of(known['filing indicator'])}{end}|{end})",
            f"CAS{e}{x}(?:{e}{x}{e}{x}{e}{x}){{0,5}}{e}(?!{one_of(known['CARC'])}{end}|{end})",
        )
        # the order of the segments, as the 837 reader's state sees it (each a finding when found):
        sv = _SERVICE[kind]
        rest_of = f"[^{t}]*+{t}{re.escape(nl)}"  # the rest of a segment, its terminator and line break

        def until(ids: str) -> str:
            """The segments up to the first of ``ids`` (or the end)."""
            return f"(?:(?!(?:{ids}){e}){rest_of})*+"

        wrong_order = (
            # an LX not followed at once by its service segment (MISSING_SEGMENT)
            f"LX{e}{rest_of}(?!{sv}{e})",
            # a service segment of another guide (TYPE_MISMATCH)
            f"SV(?!{sv[2]})[0-9]{e}",
            # between an HL and the next CLM (no claim): LX, SV1/SV2/SV3/SVD or CAS (ORPHAN_SEGMENT)
            f"HL{e}{rest_of}{until('CLM|HL|LX|SV.|CAS')}(?:LX|SV.|CAS){e}",
            # in a claim before its first LX: SVD (no line), CAS before an SBR (no other payer); after its SBR: SVD
            f"CLM{e}{rest_of}{until('CLM|HL|LX|SBR|CAS|SVD')}(?:CAS{e}|SVD{e}|SBR{e}{rest_of}{until('CLM|HL|LX|SVD')}SVD{e})",
            # in a service line: CAS before an SVD (no line adjudication)
            f"LX{e}{rest_of}{until('CLM|HL|LX|SVD|CAS')}CAS{e}",
        )
        # one search for all: it stops at every segment of the body (a terminator and line break)
        # and tries the alternatives there, cheaper than a search for each
        self.wrong = re.compile(f"{s}(?:{'|'.join(bad_values + wrong_order)})")


@lru_cache(maxsize=16)
def _patterns_837(d: Delimiters, nl: str, kind: str, known_key: tuple[tuple[str, frozenset[str]], ...]) -> _Patterns837:
    return _Patterns837(d, nl, kind, dict(known_key))


def _se_start(text: str, term: str, elem: str) -> int:
    """Where the SE segment that ends ``text`` starts; -1 when the text does not end with SE and its terminator."""
    last = len(text)
    while last and text[last - 1] in _WS:
        last -= 1
    base = max(0, last - MAX_SEGMENT)
    stripped = text[base:last]
    if not stripped.endswith(term):
        return -1
    k = stripped.rfind(term, 0, len(stripped) - 1) + 1
    if k == 0:
        return -1
    se_at = base + k + len(stripped[k:]) - len(stripped[k:].lstrip(_WS))
    return se_at if text.startswith("SE" + elem, se_at) else -1


def _fast_837(ts: TransactionSet, v: Values, kind: str, summary: FileSummary) -> bool:
    """Count an 837 transaction set without building its claims; False (nothing done) when the
    fast scan cannot vouch for it and the typed path must read it whole.

    The header (ST up to the first HL) and SE are read by the typed reader.  The body (the first HL
    up to SE) must be laid out regularly (every segment after the same terminator and line break),
    each distinct shape of its segments must match a pattern of what the 837 reader reads without
    a finding, and one search looks for a value a shape hides that the reader would flag (a date,
    a frequency or filing-indicator code, a CAS reason) or an order of segments its states would
    flag: an LX, service segment, SVD or CAS outside the loop that reads it, an LX not followed at
    once by the guide's service segment; and there must be as many of these as LXs."""
    sv = _SERVICE.get(kind)
    d = ts.delimiters
    term, elem = d.segment, d.element
    if sv is None or term in _WS or elem in _WS or not term or not elem or len(term) != 1 or len(elem) != 1:
        return False
    text = ts._text
    se_at = _se_start(text, term, elem)
    if se_at < 0:
        return False
    known = v._known
    if any(not c.isalpha() for c in known["CAS01"]):
        return False  # the shapes keep CAS01 as it is only when no group code has a digit
    m = re.compile(f"{re.escape(term)}(\\r\\n|\\n)?HL{re.escape(elem)}").search(text, 0, se_at)
    if m is None:
        return False
    nl = m.group(1) or ""
    s = term + nl
    lo, b0, last = m.start(), m.start() + len(s), se_at - len(s)  # the terminators before the body's first segment and after its last
    if last < b0 or not text.startswith(s, last):
        return False
    # the header: no claim (it would run into the body) and no SBR (its SBR09 is checked at each CLM)
    head_text = text[:b0]
    if re.search(f"(?:\\A|{re.escape(term)})[{_WS}]*(?:CLM|SBR){re.escape(elem)}", head_text):
        return False
    if len(d.component) != 1 or d.component in (term, elem):
        return False
    p = _patterns_837(d, nl, kind, tuple((name, frozenset(known[name])) for name in ("CAS01", "frequency", "filing indicator", "CARC")))
    if not _body_clean_837(text, lo, last, term, p):
        return False
    hi = se_at
    if p.wrong.search(text, lo, hi) is not None:
        return False
    lines = text.count(s + sv + elem, lo, hi)
    if lines != text.count(s + "LX" + elem, lo, hi):
        return False
    claims = text.count(s + "CLM" + elem, lo, hi)
    # the header (ST to the first HL) and SE are read by the typed reader
    reader = ts._reader
    header_segments = _count_segments(head_text, term)
    body_segments = text.count(term, b0, se_at)
    head = TransactionSet(ts.envelope, ts.interchange, ts.group, ts.st, ts.source, ts.trusted, [], head_text, ts._base, ts._first_segment, reader)
    for _ in _counted(read_837(head, v, kind), summary):
        pass
    summary.claims += claims
    summary.service_lines += lines
    tail = TransactionSet(
        ts.envelope,
        ts.interchange,
        ts.group,
        ts.st,
        ts.source,
        ts.trusted,
        [],
        text[se_at:],
        ts._base + se_at,
        ts._first_segment + header_segments + body_segments,
        reader,
    )
    for _ in _counted(read_837(tail, v, kind), summary):
        pass
    return True


def _body_clean_837(text: str, lo: int, hi: int, term: str, p: _Patterns837) -> bool:
    """Whether every segment of an 837 body (``text[lo:hi + 1]``, from the terminator before its
    first segment to the one of its last) has a shape the 837 reader reads without a finding (the
    values a shape hides and the order: ``_Patterns837.wrong``)."""
    shapes: set[str] = set()
    # a block of about BLOCK characters at a time, each from a terminator: memory stays bounded
    i = lo
    while i < hi:
        j = text.find(term, i + BLOCK, hi) if i + BLOCK < hi else -1
        if j < 0:
            j = hi
        parts = text[i + 1 : j + 1].translate(_ZEROS).split(term)
        parts.pop()  # after the block's last terminator ("" inside: an empty segment, no shape)
        shapes.update(parts)
        i = j
    return p.shapes.fullmatch(term.join(shapes) + term) is not None
