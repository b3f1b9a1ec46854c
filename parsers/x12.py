"""The X12 reader: bytes in, position-aware segments out, one transaction set at a time.

It reads delimiters from each ISA header, checks envelopes (ISA/IEA, GS/GE, ST/SE), and hands out
:class:`TransactionSet` objects whose segments are tokenised lazily.  Memory is bounded by the
largest transaction set: the reader keeps only the raw text of the transaction set in hand (as a
latin-1 string, one character per byte, so string offsets are byte offsets) and never a list of
every segment.  Text elements are decoded when their segment is split: UTF-8 when every byte of the
interchange's transaction sets is valid UTF-8, Windows-1252 otherwise (decided once per interchange,
see :mod:`parsers.encoding`); positions stay byte offsets.  A bare ``ST..SE`` transaction set without
ISA/GS takes its delimiters from its ST segment.  Before a transaction set is handed out its SE
trailer has been located and checked, so ``TransactionSet.trusted`` is known before its first
record is built.

The reader never judges content and never raises on bad input: problems become
:class:`~parsers.findings.Finding` objects in ``X12Reader.findings``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import BinaryIO, NamedTuple

from edirecon.errors import InputError
from edirecon.mappings import element_max_lengths

from . import encoding
from .delimiters import ISA_LENGTH, NEXT_ISA, collision, fixed_isa
from .findings import Finding
from .source import Envelope, Source

CHUNK_SIZE = 1 << 20
#: a transaction set's text is split into segments a block of about this many characters at a time
TOKEN_BLOCK = 1 << 20
MAX_SEGMENT = 64 * 1024
#: segments longer than this have every element checked against its X12 maximum length; shorter
#: ones only their key identifiers (CLM01, CLP01), which the transaction-set readers check
LONG_SEGMENT = 80
_BOM = "\xef\xbb\xbf"  # UTF-8 byte order mark, read as latin-1
#: white space tolerated between segments (line breaks, indentation); other control bytes are data
_WS = " \t\r\n"
_ENVELOPE_IDS = ("SE", "ST", "GE", "GS", "IEA", "ISA")
_SEGMENT_ID = re.compile(r"[A-Z0-9]{2,3}\Z")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
#: a bare transaction set: ST, a punctuation element separator, ST01, ST02 (ST03), the terminator
_BARE_ST = re.compile(r"ST([^A-Za-z0-9 \t\r\n])[0-9]{3}\1[A-Za-z0-9]{1,9}(?:\1[A-Za-z0-9]{1,35})?([^A-Za-z0-9 ])")

#: a segment as the reader hands it out: (1-based number in file, byte offset, elements)
RawSegment = tuple[int, int, list[str]]


class Delimiters(NamedTuple):
    """The four delimiters an ISA header declares."""

    element: str
    repetition: str
    component: str
    segment: str


@dataclass(slots=True)
class Interchange:
    """The ISA header of the interchange being read."""

    isa: list[str]
    delimiters: Delimiters
    source: Source
    #: how its text elements are decoded: "" while all text met is ASCII, then "utf-8" or "windows-1252"
    encoding: str = ""
    #: a bare ST..SE transaction set read without ISA/GS (no interchange header at all)
    bare: bool = False
    #: what collides among its delimiters ("" when nothing does): its transaction sets are untrusted
    collision: str = ""

    @property
    def control_number(self) -> str:
        return self.isa[13].strip() if len(self.isa) > 13 else ""

    @property
    def version(self) -> str:
        return self.isa[12].strip() if len(self.isa) > 12 else ""

    @property
    def sender(self) -> str:
        return self.isa[6].strip() if len(self.isa) > 6 else ""

    @property
    def receiver(self) -> str:
        return self.isa[8].strip() if len(self.isa) > 8 else ""


@dataclass(slots=True)
class Group:
    """The GS header of the functional group being read."""

    gs: list[str]
    source: Source
    transaction_count: int = 0

    def get(self, i: int) -> str:
        return self.gs[i] if len(self.gs) > i else ""


@dataclass(slots=True)
class TransactionSet:
    """One ST..SE transaction set, with its envelope checked and its segments read lazily."""

    envelope: Envelope
    interchange: Interchange
    group: Group | None
    st: list[str]
    source: Source
    trusted: bool
    findings: list[Finding]
    _text: str
    _base: int
    _first_segment: int
    _reader: X12Reader
    segment_count: int = 0

    @property
    def code(self) -> str:
        """ST01, e.g. ``835`` or ``837``."""
        return self.st[1] if len(self.st) > 1 else ""

    @property
    def control_number(self) -> str:
        return self.envelope.st02

    @property
    def version(self) -> str:
        """The implementation-guide version: ST03 (5010), else GS08."""
        if len(self.st) > 3 and self.st[3]:
            return self.st[3]
        return self.group.get(8) if self.group else ""

    @property
    def delimiters(self) -> Delimiters:
        return self.interchange.delimiters

    def segments(self) -> Iterator[RawSegment]:
        """Every segment from ST to SE (or to where the transaction set was cut off)."""
        return self._reader._tokenize(self)


def _at(path: str, segment: int, offset: int, isa13: str = "", gs06: str = "", st02: str = "") -> Source:
    return Source(path, segment, offset, isa13, gs06, st02)


class X12Reader:
    """Stream the transaction sets of one X12 file.

    >>> reader = X12Reader("remit.835")
    >>> for ts in reader:
    ...     for number, offset, elements in ts.segments():
    ...         ...
    >>> reader.findings  # every problem met, with positions

    A :class:`TransactionSet` must be consumed before the next one is requested (like
    ``itertools.groupby``); its text is released when the reader moves on.
    """

    def __init__(self, path: str | os.PathLike[str], chunk_size: int | None = None, display_name: str | None = None):
        self.path = os.fspath(path)
        self.name = display_name or self.path
        self.chunk_size = chunk_size or CHUNK_SIZE
        self.findings: list[Finding] = []
        self.interchanges = 0
        self.groups = 0
        self.transaction_sets = 0
        self.segment_count = 0
        self._fh: BinaryIO | None = None
        self._buf = ""
        self._base = 0  # absolute byte offset of _buf[0]
        self._pos = 0  # index into _buf of the next unread character
        self._eof = False
        self._seg_no = 0
        self._lengths: dict[str, tuple[int | None, ...]] | None = None
        self._valid_ids: set[str] = set()
        #: segment number -> source of every segment read between transaction sets (ISA, GS, GE, IEA ...)
        self.envelope_sources: dict[int, Source] = {}
        #: the ISA header of every interchange met (for TA1 acknowledgments)
        self.interchange_headers: list[list[str]] = []

    # -- findings -----------------------------------------------------------------
    def _find(self, code: str, message: str, source: Source) -> Finding:
        f = Finding.make(code, message, source)
        self.findings.append(f)
        return f

    # -- buffer -------------------------------------------------------------------
    def _read_chunk(self) -> str:
        assert self._fh is not None
        data = self._fh.read(self.chunk_size)
        if not data:
            self._eof = True
            return ""
        return data.decode("latin-1")

    def _fill(self) -> bool:
        """Append one more chunk to the buffer; False at end of file."""
        if self._eof:
            return False
        if self._pos > 0:
            self._base += self._pos
            self._buf = self._buf[self._pos :]
            self._pos = 0
        chunk = self._read_chunk()
        if not chunk:
            return False
        self._buf += chunk
        return True

    def _skip_space(self) -> bool:
        """Advance past white space; False when only white space is left."""
        while True:
            buf, pos = self._buf, self._pos
            n = len(buf)
            while pos < n and buf[pos] in _WS:
                pos += 1
            self._pos = pos
            if pos < n:
                return True
            if not self._fill():
                return False

    def _ensure(self, n: int) -> bool:
        """Make sure at least ``n`` characters are buffered after the position."""
        while len(self._buf) - self._pos < n:
            if not self._fill():
                return False
        return True

    # -- reading -------------------------------------------------------------------
    def __iter__(self) -> Iterator[TransactionSet]:
        try:
            fh = open(self.path, "rb")
        except IsADirectoryError as exc:
            raise InputError(f"{self.name}: is a directory, not a file") from exc
        except OSError as exc:
            raise InputError(f"{self.name}: cannot be read ({exc.strerror})") from exc
        with fh:
            self._fh = fh
            try:
                yield from self._read_file()
            finally:
                self.segment_count = self._seg_no

    def _read_file(self) -> Iterator[TransactionSet]:
        self._fill()
        if self._buf.startswith(_BOM):
            self._pos = len(_BOM)
        if not self._skip_space():
            self._find("EMPTY_FILE", "the file is empty (expected an ISA interchange header)", _at(self.name, 0, 0))
            return
        first = True
        while self._skip_space():
            self._ensure(3)
            if self._buf.startswith("ISA", self._pos):
                yield from self._read_interchange()
                first = False
                continue
            if first and self._buf.startswith("ST", self._pos):
                self._ensure(64)  # the whole ST segment, whose bytes give the delimiters
                if _BARE_ST.match(self._buf, self._pos):
                    yield from self._read_bare()
                    first = False
                    continue
            self._ensure(20)
            offset = self._base + self._pos
            found = _kind_of(self._buf[self._pos : self._pos + 20])
            if first:
                self._find("NOT_X12", f"expected 'ISA' at the start of the file, found {found}", _at(self.name, 0, offset))
            else:
                self._find(
                    "DATA_AFTER_INTERCHANGE",
                    f"expected 'ISA' or end of file after IEA, found {found}",
                    _at(self.name, self._seg_no + 1, offset),
                )
            return

    def _read_isa(self) -> Interchange | None:
        """Read the ISA header at the current position and derive the delimiters."""
        offset = self._base + self._pos
        self._ensure(200)
        buf, pos = self._buf, self._pos
        elem = buf[pos + 3] if len(buf) > pos + 3 else ""
        src = _at(self.name, self._seg_no + 1, offset)
        if not elem or elem.isalnum() or elem <= " ":
            self._find("ISA_MALFORMED", f"ISA element separator (4th byte) is {elem!r}; expected a punctuation character", src)
            return None
        # ISA has 16 elements: the component separator is the one character after the 16th
        # element separator and the segment terminator the character after that.  A fixed-width
        # header is cut at its fixed offsets (right even when ISA11 or ISA16 is the element separator).
        isa = fixed_isa(buf[pos : pos + ISA_LENGTH])
        p = pos + ISA_LENGTH - 3
        if isa is None:
            p = pos
            for _ in range(16):
                p = buf.find(elem, p + 1, pos + 200)
                if p < 0:
                    self._find("ISA_MALFORMED", "ISA header is cut short: fewer than 16 elements", src)
                    return None
            if p + 2 >= len(buf):
                self._find("ISA_MALFORMED", "ISA header is cut short before ISA16 and the segment terminator", src)
                return None
            isa = buf[pos : p + 2].split(elem)
        component, term = buf[p + 1], buf[p + 2]
        if term.isalnum() or term == " ":
            self._find("ISA_MALFORMED", f"the segment terminator after ISA16 is {term!r}; expected a punctuation or line-break character", src)
            return None
        # ISA11 from 00501 on; a letter, a digit or a space there is a code ('U'), not a separator
        rep = isa[11] if isa[12][:5] >= "00501" and len(isa[11]) == 1 and not isa[11].isalnum() and isa[11] != " " else ""
        self._seg_no += 1
        self.envelope_sources[self._seg_no] = src._replace(isa13=isa[13].strip(), loop="ISA")
        self.interchange_headers.append(isa)
        self._pos = p + 3
        if term == "\r" and self._ensure(1) and self._buf[self._pos] == "\n":
            self._pos += 1
        ic = Interchange(isa, Delimiters(elem, rep, component, term), src._replace(isa13=isa[13].strip(), loop="ISA"))
        ic.collision = collision(elem, rep, component, term)
        return ic

    def _read_bare(self) -> Iterator[TransactionSet]:
        """Bare ST..SE transaction sets (no ISA/GS), as some payer portals hand out a remittance:
        the element separator is the byte after ST, the terminator the byte that ends the ST
        segment, the component separator the one SVC01 or PLB03 uses (``:`` when none does)."""
        self._ensure(MAX_SEGMENT)
        offset = self._base + self._pos
        m = _BARE_ST.match(self._buf, self._pos)
        assert m is not None
        elem, term = m.group(1), m.group(2)
        if term == "\r" and self._buf.startswith("\n", m.end()):
            term = "\n"  # CR LF after each segment: the LF ends it, the CR is stripped
        window = self._buf[self._pos : self._pos + MAX_SEGMENT]
        comp = re.search(
            re.escape(term)
            + r"[ \t\r\n]*(?:SVC|PLB"
            + re.escape(elem)
            + r"[^"
            + re.escape(elem + term)
            + r"]*"
            + re.escape(elem)
            + r"[0-9]{8})"
            + re.escape(elem)
            + r"[A-Z0-9]{2}([^A-Za-z0-9 \t\r\n])",
            window,
        )
        component = comp.group(1) if comp is not None and comp.group(1) not in (elem, term) else ":"
        src = _at(self.name, self._seg_no + 1, offset)
        ic = Interchange([], Delimiters(elem, "", component, term), src._replace(loop="ST"), bare=True)
        # SVC01 is a composite whose procedure code is required: a bare qualifier followed by the
        # element separator shows that the component separator is the element separator
        svc = re.search(re.escape(term) + r"[ \t\r\n]*SVC" + re.escape(elem) + r"([A-Z0-9]{2})" + re.escape(elem), window)
        if term == elem:
            ic.collision = f"the segment terminator (the byte that ends ST) is {term!r}, the same character as the element separator"
        elif svc is not None:
            ic.collision = (
                f"SVC01 is the bare qualifier {svc.group(1)!r} followed by {elem!r}: the component separator is the same character as the element separator"
            )
        if self._collided(ic, "the transaction set without ISA/GS"):
            return
        while True:
            nxt = self._next_segment(term, elem)
            if nxt is None:
                return
            seg_offset, els = nxt
            if els == ["\x00"]:
                self._find(
                    "SEGMENT_TOO_LONG",
                    f"no segment terminator {term!r} within 64 KiB; the rest of the file is skipped",
                    _at(self.name, self._seg_no + 1, seg_offset),
                )
                self._pos = len(self._buf)
                self._eof = True
                return
            sid = els[0]
            seg_src = Source(self.name, self._seg_no, seg_offset, loop=sid if sid in _ENVELOPE_IDS else "")
            self.envelope_sources[self._seg_no] = seg_src
            if sid == "ST":
                st02 = els[2] if len(els) > 2 else ""
                self._find(
                    "NO_ENVELOPE",
                    f"transaction set ST02={st02} has no ISA/GS envelope; read with element separator {elem!r}, "
                    f"segment terminator {term!r} and component separator {component!r}",
                    seg_src._replace(st02=st02),
                )
                yield self._transaction(ic, None, els, seg_offset)
            elif sid == "ISA":
                # an interchange follows the bare sets: give the ISA back to the file loop
                self._seg_no -= 1
                self._pos = seg_offset - self._base
                return
            elif sid == "SE":
                self._find("UNEXPECTED_TRAILER", "SE without an open ST transaction set", seg_src)
            else:
                self._find("SEGMENT_OUTSIDE_TRANSACTION", f"segment {_named(sid)} outside any ST/SE transaction set", seg_src)

    def _next_segment(self, term: str, elem: str) -> tuple[int, list[str]] | None:
        """The next segment at envelope level (between transaction sets): (offset, elements)."""
        if not self._skip_space():
            return None
        while True:
            end = self._buf.find(term, self._pos)
            if end >= 0:
                break
            if len(self._buf) - self._pos > MAX_SEGMENT or not self._fill():
                end = -1
                break
        offset = self._base + self._pos
        if end < 0:
            text = self._buf[self._pos : self._pos + MAX_SEGMENT]
            if len(text) >= MAX_SEGMENT:
                return offset, ["\x00"]  # signals a missing terminator to the caller
            self._pos = len(self._buf)
            self._seg_no += 1
            text = text.rstrip()
            self._find(
                "MISSING_SEGMENT_TERMINATOR",
                f"the last segment {_named(text)} ends the file without the terminator {term!r}",
                _at(self.name, self._seg_no, offset),
            )
            return offset, text.split(elem)
        text = self._buf[self._pos : end]
        self._pos = end + 1
        self._seg_no += 1
        if term == "\n":
            text = text.rstrip("\r")
        return offset, text.split(elem)

    def _read_interchange(self) -> Iterator[TransactionSet]:
        ic = self._read_isa()
        if ic is None:
            self._pos = len(self._buf)
            self._eof = True
            return
        self.interchanges += 1
        isa13 = ic.control_number
        d = ic.delimiters
        if self._collided(ic, f"interchange ISA13={isa13}"):
            return
        # a wrong terminator: the declared one does not occur within the next 64 KiB
        self._ensure(MAX_SEGMENT + 1)
        if d.segment not in self._buf[self._pos : self._pos + MAX_SEGMENT] and self._buf[self._pos :].strip(_WS):
            self._find(
                "SEGMENT_TERMINATOR_NOT_FOUND",
                f"ISA declares segment terminator {d.segment!r} (byte after ISA16) but none follows within 64 KiB",
                ic.source,
            )
            self._pos = len(self._buf)
            self._eof = True
            return
        group: Group | None = None
        group_count = 0
        while True:
            seg_start = self._seg_no
            nxt = self._next_segment(d.segment, d.element)
            if nxt is None:
                if group is not None:
                    self._find("MISSING_GE", f"functional group GS06={group.get(6)} ends at end of file without GE", group.source)
                self._find("MISSING_IEA", f"interchange ISA13={isa13} ends at end of file without IEA", ic.source)
                return
            offset, els = nxt
            if els == ["\x00"]:
                self._find(
                    "SEGMENT_TOO_LONG",
                    f"no segment terminator {d.segment!r} within 64 KiB; the rest of the interchange is skipped",
                    _at(self.name, seg_start + 1, offset, isa13),
                )
                self._pos = len(self._buf)
                self._eof = True
                return
            sid = els[0]
            gs06 = els[6] if sid == "GS" and len(els) > 6 else group.get(6) if group is not None else ""
            src = Source(self.name, self._seg_no, offset, isa13, gs06, "", sid if sid in _ENVELOPE_IDS else "")
            self.envelope_sources[self._seg_no] = src
            if sid == "ST":
                if group is None:
                    self._find("MISSING_GS", "transaction set ST without a GS functional group header", src)
                else:
                    group.transaction_count += 1
                yield self._transaction(ic, group, els, offset)
            elif sid == "GS":
                if group is not None:
                    self._find("MISSING_GE", f"functional group GS06={group.get(6)} ends without GE (a new GS starts)", group.source)
                group = Group(els, src._replace(gs06=els[6] if len(els) > 6 else "", loop="GS"))
                group_count += 1
                self.groups += 1
            elif sid == "GE":
                if group is None:
                    self._find("UNEXPECTED_TRAILER", "GE without an open GS functional group", src)
                    continue
                self._check_count("GE_COUNT_MISMATCH", "GE01", els, 1, group.transaction_count, "transaction sets", src)
                self._check_control("GE_CONTROL_MISMATCH", "GE02", els, 2, "GS06", group.get(6), src)
                group = None
            elif sid == "IEA":
                if group is not None:
                    self._find("MISSING_GE", f"functional group GS06={group.get(6)} ends without GE (IEA follows)", group.source)
                self._check_count("IEA_COUNT_MISMATCH", "IEA01", els, 1, group_count, "functional groups", src)
                self._check_control("IEA_CONTROL_MISMATCH", "IEA02", els, 2, "ISA13", isa13, src)
                return
            elif sid == "ISA":
                # a new interchange starts without IEA: give the ISA back to the file loop
                self._find("MISSING_IEA", f"interchange ISA13={isa13} ends without IEA (a new ISA starts)", ic.source)
                self._seg_no -= 1
                self._pos = offset - self._base
                return
            elif sid in ("SE",):
                self._find("UNEXPECTED_TRAILER", "SE without an open ST transaction set", src)
            else:
                self._find("SEGMENT_OUTSIDE_TRANSACTION", f"segment {_named(sid)} outside any ST/SE transaction set", src)

    def _collided(self, ic: Interchange, what: str) -> bool:
        """Report a delimiter collision; True when the segments cannot be told apart at all
        (terminator = element separator), after skipping to the next ISA header or end of file."""
        if not ic.collision:
            return False
        d = ic.delimiters
        unreadable = d.segment == d.element
        outcome = (
            "its segments cannot be told apart: skipped to the next ISA header or end of file"
            if unreadable
            else "its transaction sets are read but marked trusted=false (values split on it may be shifted)"
        )
        self._find("DELIMITER_COLLISION", f"{what}: {ic.collision}; {outcome}", ic.source)
        if unreadable:
            self._skip_interchange(d.segment)
        return unreadable

    def _skip_interchange(self, term: str) -> None:
        """Move to the next ISA header (or the end of the file), a chunk at a time; every
        terminator skipped ends a segment, and so does text left after the last one."""
        open_segment = False
        start = self._pos
        while True:
            m = NEXT_ISA.search(self._buf, start)
            if m is None and not self._eof:
                end = max(start, len(self._buf) - 8)  # keep an ISA header the chunk end may cut
            else:
                end = m.start() if m is not None else len(self._buf)
            skipped = self._buf[start:end]
            k = skipped.rfind(term)
            self._seg_no += skipped.count(term)
            open_segment = bool(skipped[k + 1 :].strip(_WS)) if k >= 0 else open_segment or bool(skipped.strip(_WS))
            if m is not None or self._eof:
                self._pos = end
                break
            # keep the byte before ``end`` buffered: NEXT_ISA looks behind "ISA" (an ISA glued to
            # data, "4ISA*00*", is no header), whatever the chunk size
            self._pos = max(end - 1, 0)
            base = self._base
            self._fill()
            start = end - (self._base - base)
        self._seg_no += open_segment
        self.segment_count = self._seg_no

    def _check_count(self, code: str, name: str, els: list[str], i: int, actual: int, what: str, src: Source) -> bool:
        declared = els[i].strip() if len(els) > i else ""
        if declared.isdigit() and int(declared) == actual:
            return True
        self._find(code, f"{name} is {declared!r}; expected {actual} ({what} counted)", src)
        return False

    def _check_control(self, code: str, name: str, els: list[str], i: int, other: str, expected: str, src: Source) -> bool:
        declared = els[i].strip() if len(els) > i else ""
        if declared == expected.strip():
            return True
        self._find(code, f"{name} is {declared!r}; expected {expected!r} ({other})", src)
        return False

    # -- transaction sets ----------------------------------------------------------
    def _transaction(self, ic: Interchange, group: Group | None, st: list[str], offset: int) -> TransactionSet:
        """Locate the end of the transaction set that starts at the ST just read, and check SE."""
        d = ic.delimiters
        term = d.segment
        st_no = self._seg_no
        st02 = st[2] if len(st) > 2 else ""
        env = Envelope(self.name, ic.control_number, group.get(6) if group else "", st02)
        src = env.at(st_no, offset, "ST")
        self.transaction_sets += 1
        start = self._pos  # first character after the ST terminator
        kind, mstart, mend = self._find_envelope(d, start - 1)
        findings: list[Finding] = []
        has_se = kind == "SE"
        if has_se:
            se_term = self._buf.find(term, mend)
            while se_term < 0 and self._fill_keep():
                se_term = self._buf.find(term, mend)
            end = len(self._buf) if se_term < 0 else se_term + 1
        else:
            # no SE: the transaction set runs to the next envelope segment or to end of file
            end = mstart + 1 if kind else len(self._buf)
            found = repr(kind) if kind else "end of file"
            findings.append(Finding.make("MISSING_SE", f"transaction set ST02={st02} ends without SE (found {found} instead)", src))
        text = self._buf[start:end]
        base = self._base + start
        if not kind and not text.rstrip().endswith(term):
            # the file ends inside a segment: the half-written segment is not read
            cut = text.rfind(term) + 1
            partial = text[cut:]
            stripped = partial.lstrip(_WS)
            if stripped.strip(_WS):
                seg_at = st_no + 1 + _count_segments(text[:cut], term)
                findings.append(
                    Finding.make(
                        "TRUNCATED_SEGMENT",
                        f"the file ends inside segment {_named(stripped)} (no terminator {term!r}); the partial segment is not read",
                        env.at(seg_at, base + cut + len(partial) - len(stripped)),
                    )
                )
            text = text[:cut]
        # release the transaction text from the reader's buffer: only the TransactionSet holds it
        self._buf = self._buf[end:]
        self._base += end
        self._pos = 0
        body = text[:-1] if text.endswith(term) else text
        # segments counted at C speed; an exact recount only when SE disagrees or SE is missing
        count = 2 + body.count(term) if has_se else 1 + _count_segments(text, term)
        trusted = has_se and (group is not None or ic.bare) and not ic.collision
        if has_se:
            k = body.rfind(term) + 1
            se_raw = body[k:]
            se_text = se_raw.lstrip(_WS)
            if term == "\n":
                se_text = se_text.rstrip("\r")
            se = se_text.split(d.element)
            declared = se[1].strip() if len(se) > 1 else ""
            if declared != str(count):
                count = 1 + _count_segments(text, term)
            se_src = env.at(st_no + count - 1, base + k + len(se_raw) - len(se_text), "SE")
            if not (declared.isdigit() and int(declared) == count):
                findings.append(Finding.make("SE_COUNT_MISMATCH", f"SE01 is {declared!r}; expected {count} (segments counted from ST to SE)", se_src))
                trusted = False
            se02 = se[2].strip() if len(se) > 2 else ""
            if se02 != st02.strip():
                findings.append(Finding.make("SE_CONTROL_MISMATCH", f"SE02 is {se02!r}; expected {st02!r} (ST02)", se_src))
                trusted = False
        if not trusted:
            code = st[1] if len(st) > 1 else "?"
            findings.append(
                Finding.make(
                    "TRANSACTION_NOT_POSTABLE",
                    f"transaction set {code} ST02={st02} has envelope errors; its records are marked trusted=false",
                    src,
                )
            )
        self._seg_no = st_no + count - 1
        self.segment_count = self._seg_no
        if not ic.encoding and not text.isascii():
            ic.encoding, why = encoding.detect(self.path, base, d.element, d.segment, self.chunk_size)
            isa13 = f"ISA13={ic.control_number}" if not ic.bare else "without ISA"
            self._find("TEXT_ENCODING", f"the text of interchange {isa13} is read as {ic.encoding.upper()}: {why}", ic.source)
        self.findings.extend(findings)
        ts = TransactionSet(env, ic, group, st, src, trusted, findings, text, base, st_no, self)
        ts.segment_count = count
        return ts

    def _find_envelope(self, d: Delimiters, search_from: int) -> tuple[str, int, int]:
        """Find the next envelope segment (SE, ST, GE, GS, IEA, ISA) after ``search_from``.

        Reads more of the file as needed, joining the chunks once (no quadratic re-copying).
        Returns (segment id or "" at end of file, index of its preceding terminator, index after
        its element separator), as indexes into the reader's buffer.
        """
        # possessive (``*+``): white space is never given back to try a segment id (none starts
        # with it), so each terminator costs one attempt, not one per white space character
        marker = re.compile(re.escape(d.segment) + r"[ \t\r\n]*+(SE|ST|GE|GS|IEA|ISA)" + re.escape(d.element))
        m = marker.search(self._buf, search_from)
        if m is not None:
            return m.group(1), m.start(), m.end()
        pieces = [self._buf]
        total = len(self._buf)
        # a marker starts with a terminator: carry the text from the last terminator seen, so a
        # marker (and any white space in it) split across chunks of any size is still found
        k = self._buf.rfind(d.segment, max(search_from, 0))
        carry = self._buf[k:] if k >= 0 else ""
        hit = -1
        while True:
            chunk = self._read_chunk()
            if not chunk:
                break
            window = carry + chunk
            m = marker.search(window)
            pieces.append(chunk)
            if m is not None:
                hit = total - len(carry) + m.start()
                total += len(chunk)
                break
            total += len(chunk)
            k = window.rfind(d.segment)
            carry = window[k:] if k >= 0 else ""
        if len(pieces) > 1:
            self._buf = "".join(pieces)
        del pieces
        if hit < 0:
            return "", len(self._buf), len(self._buf)
        m = marker.match(self._buf, hit)
        assert m is not None
        return m.group(1), m.start(), m.end()

    def _fill_keep(self) -> bool:
        """Append one more chunk without dropping anything already buffered."""
        if self._eof:
            return False
        chunk = self._read_chunk()
        if not chunk:
            return False
        self._buf += chunk
        return True

    def _tokenize(self, ts: TransactionSet) -> Iterator[RawSegment]:
        """Split the transaction text into segments and elements, with numbers and offsets.

        The text is cut into blocks of about 1 MiB at segment boundaries.  A block whose layout is
        regular (ASCII, no control bytes, the same line break after every terminator) is split on
        terminator-plus-line-break in one C call; any other block takes the careful path, which
        strips stray white space and reports odd bytes segment by segment.
        """
        d = ts.delimiters
        term, elem = d.segment, d.element
        text = ts._text
        env = ts.envelope
        yield ts._first_segment, ts.source.offset, ts.st
        seg_no = ts._first_segment
        n = len(text)
        block = TOKEN_BLOCK
        valid_ids = self._valid_ids
        control = _control_pattern(d)
        allowed = _allowed_bytes(d)
        lengths = self._lengths
        if lengths is None:
            lengths = self._lengths = element_max_lengths()
        i = 0
        while i < n and text[i] in _WS:
            i += 1
        while i < n:
            j = text.find(term, i + block) if i + block < n else -1
            if j < 0:
                j = n
            else:
                j += 1
                while j < n and text[j] in _WS:
                    j += 1
            chunk = text[i:j]
            base = ts._base + i
            # ASCII text without control bytes: the bytes left once every allowed one is deleted
            # (one C pass; the pattern's search took five times as long)
            nl = _layout(chunk, term) if chunk.isascii() and not chunk.encode("ascii").translate(None, allowed) else None
            if nl is None:
                # the careful path returns the last segment number it used (skipped segments count)
                seg_no = yield from self._careful(chunk, base, seg_no, d, env, control, lengths, ts.interchange.encoding)
                i = j
                continue
            sep = term + nl
            k = len(sep)
            parts = chunk.split(sep)
            last = parts[-1]
            if last.endswith(term):
                parts[-1] = last[:-1]
            off = base
            for s in parts:
                size = len(s)
                if not size:
                    off += k
                    continue
                seg_no += 1
                els = s.split(elem)
                if size > LONG_SEGMENT:
                    if size > MAX_SEGMENT:
                        self._find("SEGMENT_TOO_LONG", f"segment {_named(s)} is {size} bytes long (limit 65536); skipped", env.at(seg_no, off))
                        off += size + k
                        continue
                    self._check_lengths(els, lengths, env.at(seg_no, off))
                sid = els[0]
                if sid not in valid_ids:
                    if _SEGMENT_ID.match(sid):
                        valid_ids.add(sid)
                    else:
                        self._bad_segment_id(sid, env.at(seg_no, off))
                        off += size + k
                        continue
                yield seg_no, off, els
                off += size + k
            i = j

    def _careful(
        self,
        chunk: str,
        base: int,
        seg_no: int,
        d: Delimiters,
        env: Envelope,
        control: re.Pattern[str],
        lengths: dict[str, tuple[int | None, ...]],
        text_encoding: str,
    ) -> Generator[RawSegment, None, int]:
        """Segments of an irregular block: stray white space stripped, odd bytes reported, text
        outside ASCII decoded.  Returns the number of the block's last segment, skipped ones included."""
        term, elem = d.segment, d.element
        strip_cr = term == "\n"
        valid_ids = self._valid_ids
        off = base
        for part in chunk.split(term):
            size = len(part)
            s = part.strip(_WS)
            seg_off = off + (size - len(part.lstrip(_WS)))
            off += size + 1
            if not s:
                continue
            if strip_cr:
                s = s.rstrip("\r")
            seg_no += 1
            if len(s) > MAX_SEGMENT:
                self._find("SEGMENT_TOO_LONG", f"segment {_named(s)} is {len(s)} bytes long (limit 65536); skipped", env.at(seg_no, seg_off))
                continue
            els = s.split(elem)
            m = _NON_ASCII.search(s)
            if m is not None:
                self._find(
                    "NON_ASCII_BYTE",
                    f"byte 0x{ord(m.group()):02X} at offset {seg_off + m.start()} in segment {_named(els[0])} is not ASCII",
                    env.at(seg_no, seg_off),
                )
                # elements are split on the raw bytes (ASCII delimiters), then decoded: lengths in characters
                els = [encoding.decode(e, text_encoding) if not e.isascii() else e for e in els]
            if len(s) > LONG_SEGMENT:
                self._check_lengths(els, lengths, env.at(seg_no, seg_off))
            m = control.search(s)
            if m is not None:
                self._find(
                    "CONTROL_CHARACTER",
                    f"control byte 0x{ord(m.group()):02X} at offset {seg_off + m.start()} in segment {_named(els[0])}",
                    env.at(seg_no, seg_off),
                )
            sid = els[0]
            if sid not in valid_ids:
                if _SEGMENT_ID.match(sid):
                    valid_ids.add(sid)
                else:
                    self._bad_segment_id(sid, env.at(seg_no, seg_off))
                    continue
            yield seg_no, seg_off, els
        return seg_no

    def _bad_segment_id(self, sid: str, src: Source) -> None:
        self._find(
            "INVALID_SEGMENT_ID",
            f"expected a segment id of 2-3 upper-case letters or digits, found {_kind_of(sid[:20])}; the segment is skipped",
            src,
        )

    def _check_lengths(self, els: list[str], lengths: dict[str, tuple[int | None, ...]], src: Source) -> None:
        maxima = lengths.get(els[0])
        if maxima is None:
            return
        for pos in range(1, min(len(els), len(maxima))):
            limit = maxima[pos]
            if limit is not None and len(els[pos]) > limit:
                self._find(
                    "ELEMENT_TOO_LONG",
                    f"{els[0]}{pos:02d} is {len(els[pos])} characters long; the X12 maximum is {limit}",
                    src,
                )


#: a segment id at the start of a segment's text: 2-3 upper-case letters or digits, then a separator or the end
_ID_PREFIX = re.compile(r"[A-Z0-9]{2,3}(?![A-Za-z0-9])")


def _named(text: str) -> str:
    """The segment a finding names, from the start of its text: its id quoted when it has one,
    else described by kind, since it may be the start of patient data (a lost terminator)."""
    m = _ID_PREFIX.match(text)
    return repr(m.group()) if m else f"starting with {_kind_of(text[:20])}"


def _kind_of(text: str) -> str:
    """What some unexpected text is, without repeating it: it may be patient data (a name, a
    member id), and the finding's position says where to look (docs/findings.md)."""
    raw = text.encode("latin-1", "replace")
    bad = next((b for b in raw if not (32 <= b < 127 or b in (9, 10, 13))), None)
    if not raw:
        return "nothing"
    return "other text" if bad is None else f"binary data (byte 0x{bad:02X})"


def _count_segments(text: str, term: str) -> int:
    """The exact number of non-blank segments in ``text``."""
    return sum(1 for part in text.split(term) if part.strip(_WS))


def _control_pattern(d: Delimiters) -> re.Pattern[str]:
    """Control bytes other than line breaks, tabs and the interchange's own delimiters."""
    allowed = set(d)
    chars = "".join(chr(c) for c in [*range(0, 9), 11, 12, *range(14, 32), 127] if chr(c) not in allowed)
    return re.compile("[" + re.escape(chars) + "]")


@lru_cache(maxsize=64)
def _allowed_bytes(d: Delimiters) -> bytes:
    """Every byte but those ``_control_pattern`` finds: what ``bytes.translate`` deletes to leave
    only control bytes."""
    control = _control_pattern(d)
    return bytes(b for b in range(256) if control.match(chr(b)) is None)


def _layout(chunk: str, term: str) -> str | None:
    """The line break that follows every segment terminator of a block ("", "\\n" or "\\r\\n"),
    or None when the layout is irregular (indentation, blank lines, mixed breaks)."""
    count = chunk.count(term)
    first = chunk.find(term)
    for nl in ("\r\n", "\n"):
        if nl.startswith(term) or term in nl:
            continue
        if not chunk.startswith(nl, first + len(term)):  # the first terminator says which it can be: no count of the other
            continue
        sep = term + nl
        seps = chunk.count(sep)
        if seps and (seps == count or (seps == count - 1 and chunk.endswith(term))):
            if chunk.count(nl) != seps or (sep + " ") in chunk or (sep + "\t") in chunk:
                return None
            return nl
    if term == "\n":
        return "" if "\r" not in chunk and "\n\n" not in chunk and "\n " not in chunk and "\n\t" not in chunk else None
    if "\n" in chunk or "\r" in chunk or (term + " ") in chunk or (term + "\t") in chunk:
        return None
    return ""


def segment_length(els: list[str]) -> int:
    """The length of a segment given its elements (the separators included)."""
    return sum(map(len, els)) + len(els) - 1
