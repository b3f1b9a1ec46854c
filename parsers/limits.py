"""Limits on what one transaction set may hold, checked before any of its records is built.

The readers hand out each claim (837) and claim payment (835) as soon as it is complete, so memory
follows the largest record, not the transaction set.  A record is built whole, though: one claim
payment of a million CAS segments holds a million adjustments.  So no stretch of a transaction set
between two record boundaries (a claim, a claim payment, a header loop: see ``BOUNDARIES``) may
hold more than ``MAX_STRETCH_SEGMENTS`` segments; a transaction set that has one is refused whole
with ``TRANSACTION_TOO_LARGE`` (no record of it is read or posted), and the rest of the file is read.

The check costs nothing for a transaction set of fewer segments than the limit (the reader has
counted them); a larger one is scanned once with a regular expression, at C speed.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .values import Values
from .x12 import TransactionSet

#: the most segments from one record boundary to the next.  The implementation guides allow 999
#: service lines per claim payment (2110) or claim (837I 2400) and 99 CAS per loop; the largest
#: real records hold a few thousand segments.
MAX_STRETCH_SEGMENTS = 50_000

#: ST01 -> the segments where the transaction-set reader hands out the record in hand
BOUNDARIES = {"835": ("CLP", "LX", "TS3", "TS2", "PLB"), "837": ("CLM", "HL")}

_NAMES = {"CLP": "claim payment", "CLM": "claim", "HL": "hierarchical level", "LX": "header number", "PLB": "provider adjustment"}


def oversized(ts: TransactionSet) -> tuple[int, str, int] | None:
    """The first stretch of ``ts`` with more than ``MAX_STRETCH_SEGMENTS`` segments, as (byte
    offset of its first segment, the id of the segment that opens it, its number of segments);
    None when there is none."""
    ids = BOUNDARIES.get(ts.code)
    if ids is None or ts.segment_count <= MAX_STRETCH_SEGMENTS:
        return None
    term, elem = ts.delimiters.segment, ts.delimiters.element
    text = ts._text  # the raw text after ST (package-internal: see parsers.x12)
    marker = _marker(term, elem, ids)
    if _markers_everywhere(text, marker):
        return None
    start, opener = 0, "ST"
    for m in marker.finditer(text):
        stop = m.start() + len(term)
        # a stretch holds at most one terminator per character: counted only when it could be past the limit
        if stop - start > MAX_STRETCH_SEGMENTS and text.count(term, start, stop) > MAX_STRETCH_SEGMENTS:
            break
        start, opener = m.start() + len(term), m.group(1)
    else:
        if text.count(term, start) <= MAX_STRETCH_SEGMENTS:
            return None
    lead = text[start : start + 64]
    start += len(lead) - len(lead.lstrip(" \t\r\n"))
    end = marker.search(text, start + 1)
    count = text.count(term, start, end.start() + len(term) if end else len(text))
    return ts._base + start, opener, count


@lru_cache(maxsize=32)
def _marker(term: str, elem: str, ids: tuple[str, ...]) -> re.Pattern[str]:
    """A record boundary: the terminator before it, white space, its segment id and separator."""
    return re.compile(re.escape(term) + r"[ \t\r\n]*(" + "|".join(ids) + ")" + re.escape(elem))


def _markers_everywhere(text: str, marker: re.Pattern[str]) -> bool:
    """True when every whole window of ``MAX_STRETCH_SEGMENTS // 4`` characters of ``text`` holds
    the start of a record boundary: then boundaries (and the start and end of the text) are less
    than half the limit apart in characters, so no stretch can hold more segments than the limit
    (a segment is at least its terminator).  A few hundred searches that each stop at the first
    boundary instead of visiting every one; False (the exact scan decides) otherwise."""
    window = max(1, MAX_STRETCH_SEGMENTS // 4)
    n = len(text)
    search = marker.search
    for at in range(0, n - window + 1, window):
        m = search(text, at)
        if m is None or m.start() >= at + window:
            return False
    return True


def refuse_oversized(ts: TransactionSet, v: Values) -> bool:
    """Refuse ``ts`` (a ``TRANSACTION_TOO_LARGE`` finding at its ST, and ``trusted`` false, so
    nothing of it is posted) when a stretch of it is past the limit; False when it is not."""
    found = oversized(ts)
    if found is None:
        return False
    offset, opener, count = found
    what = f"the {_NAMES.get(opener, opener)} {opener} at byte {offset}" if opener != "ST" else f"the header from byte {offset}"
    v.find(
        "TRANSACTION_TOO_LARGE",
        f"transaction set {ts.code} ST02={ts.control_number[:20]}: {what} runs {count} segments to the next "
        f"{'/'.join(BOUNDARIES[ts.code])} or to SE (limit {MAX_STRETCH_SEGMENTS}); the transaction set is not read",
        ts.source.segment,
        ts.source.offset,
        "ST",
    )
    ts.trusted = False
    return True
