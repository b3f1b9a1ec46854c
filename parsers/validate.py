"""Implementation-guide validation with pyx12, and 999/TA1 acknowledgments.

pyx12 walks each file against its XML implementation-guide map.  Its errors become findings with
positions (segment numbers from pyx12, byte offsets and envelope ids from our own reader).  pyx12
raises or logs on some inputs (a missing map, an 835 with no ST03 ...): that is a finding
(``IG_VALIDATOR_FAILED`` / ``IG_NO_MAP``), never a crash.  A file with no X12 in it (empty, white
space only, or not starting with ISA) gets the same ``EMPTY_FILE`` / ``NOT_X12`` finding as from
``parse``, and pyx12 is not run on it.

Element values are never repeated in findings: pyx12's ``(value ...)`` and the value inside its
message are left out (the element may be a patient's name, id or birth date); the finding names the
element, the 999 IK403 code and pyx12's rule, and its position points at the value in the file.

Acknowledgments for 837s: ``<name>.999`` (005010; ``.997`` for 004010) written by pyx12, and
``<name>.ta1`` when the interchange envelope is broken or ISA14 asks for one.
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict

from .findings import Finding
from .source import Source
from .x12 import X12Reader

#: our envelope findings -> TA1 interchange note code (TA105), most telling first: when several
#: are found, the TA1 carries the first of this order (a file cut short is 023, not 024)
TA1_NOTE_CODES = {
    "SEGMENT_TERMINATOR_NOT_FOUND": "004",  # segment terminator is invalid
    "ISA_MALFORMED": "026",  # invalid data element separator / unreadable header
    "DELIMITER_COLLISION": "027",  # invalid component element separator (ISA16 is the one usually at fault)
    "MISSING_IEA": "023",  # improper (premature) end-of-file
    "IEA_CONTROL_MISMATCH": "001",  # ISA13 and IEA02 do not match
    "IEA_COUNT_MISMATCH": "021",  # invalid number of included groups
    "MISSING_GE": "024",  # invalid interchange content
    "MISSING_GS": "024",
}


#: our reader's findings for a file that holds no X12 at all: pyx12 is not run on it
NOT_X12_CODES = ("EMPTY_FILE", "NOT_X12")


@dataclass
class ValidationResult:
    file: str
    valid: bool
    findings: list[Finding] = field(default_factory=list)
    acknowledgments: list[Path] = field(default_factory=list)
    validated: bool = True  # False when pyx12 has no map for the file's guide

    @property
    def verdict(self) -> str:
        if not self.validated:
            return "not validated (pyx12 has no map for its guide)"
        return "valid" if self.valid else "invalid"


class _Collect(logging.Handler):
    """Keeps pyx12's own error log records, which it writes instead of raising."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            msg += f": {type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        self.messages.append(msg)


class _Header(TypedDict):
    """What our reader saw of one transaction set: its interchange header, code and version."""

    isa: list[str]
    code: str
    version: str


def _index(path: str | os.PathLike[str]) -> tuple[X12Reader, dict[int, Source], list[_Header]]:
    """Our own read of the file: segment number -> source, plus envelope facts for a TA1."""
    reader = X12Reader(path)
    where: dict[int, Source] = {}
    headers: list[_Header] = []
    for ts in reader:
        headers.append({"isa": ts.interchange.isa, "code": ts.code, "version": ts.version})
        for seg, off, _els in ts.segments():
            where[seg] = ts.envelope.at(seg, off)
    for seg, src in reader.envelope_sources.items():
        where.setdefault(seg, src)
    return reader, where, headers


def validate_file(path: str | os.PathLike[str], ack_dir: Path | None = None, ack_name: str | None = None) -> ValidationResult:
    """Validate one file with pyx12; write its acknowledgments into ``ack_dir`` when given.

    Acknowledgments are named after the file (``ack_name``, default its file name) plus ``.999``,
    ``.997`` or ``.ta1``.
    """
    # deferred: pyx12 and its implementation-guide maps load only when a file is validated
    import pyx12.params
    import pyx12.x12n_document

    name = os.fspath(path)
    result = ValidationResult(name, True)
    reader, where, headers = _index(path)
    envelope_findings = sorted((f for f in reader.findings if f.code in TA1_NOTE_CODES), key=lambda f: list(TA1_NOTE_CODES).index(f.code))

    unreadable = [f for f in reader.findings if f.code in NOT_X12_CODES]
    if unreadable:  # nothing for pyx12 to read: the parser's own positioned finding, as `parse` gives it
        result.valid = False
        result.findings.extend(unreadable)
        return result

    def at(seg: int | None) -> Source:
        return where.get(seg or 0) or Source(name, seg or 0, -1)

    # pyx12 reads colliding delimiters as they come (shifted values, or an ISA it cannot count):
    # our reader's finding says what is wrong
    result.findings.extend(f for f in reader.findings if f.code == "DELIMITER_COLLISION")

    ack = io.StringIO()
    errors = io.StringIO()
    handler = _Collect()
    logger = logging.getLogger("pyx12")
    logger.addHandler(handler)
    old_propagate = logger.propagate
    logger.propagate = False
    try:
        # a 999 is only wanted for claims: pyx12's 999 writer fails on 835s without ST03
        wants_ack = any(h["code"] == "837" for h in headers)
        with open(name, "rb") as fh:  # pyx12 fails on a UTF-8 byte order mark: hand it the text without
            source = io.StringIO(fh.read().decode("latin-1").removeprefix("\xef\xbb\xbf"))
        ok = pyx12.x12n_document.x12n_document(pyx12.params.params(), source, ack if wants_ack else None, None, None, fd_json=errors)
    except Exception as exc:  # pyx12 raises on inputs it has no map for, and on some valid ones
        ok = False
        kind = "IG_NO_MAP" if "Map not found" in str(exc) else "IG_VALIDATOR_FAILED"
        result.validated = kind != "IG_NO_MAP"
        result.findings.append(Finding.make(kind, f"pyx12: {type(exc).__name__}: {exc}", at(1)))
    finally:
        logger.removeHandler(handler)
        logger.propagate = old_propagate
    for msg in handler.messages:
        if "does not look like an X12 data file" in msg:
            result.findings.append(Finding.make("IG_VALIDATOR_FAILED", f"pyx12: {msg}", at(0)))
        elif "Failed to" in msg or "failed" in msg:
            result.findings.append(Finding.make("IG_VALIDATOR_FAILED", f"pyx12: {msg}", at(1)))
    if errors.getvalue():
        result.findings.extend(_pyx12_findings(json.loads(errors.getvalue()), at))
    result.valid = bool(ok) and not result.findings and not reader.findings
    if ack_dir is None:
        return result
    stem = ack_name or Path(name).name
    if any(h["code"] == "837" for h in headers):
        text = ack.getvalue()
        ack_failed = any("Failed to create" in m for m in handler.messages)
        if text.strip() and not ack_failed:  # never hand out a half-written acknowledgment
            is_4010 = any(str(h["version"]).startswith("004010") for h in headers)
            target = ack_dir / f"{stem}.{'997' if is_4010 else '999'}"
            _write_atomically(target, text)
            result.acknowledgments.append(target)
    # a TA1 answers an interchange: for claim files, and for files too broken to say what they hold
    isa = reader.interchange_headers[0] if reader.interchange_headers else None
    carries_claims = any(h["code"] == "837" for h in headers) or not headers
    if isa is not None and carries_claims and (envelope_findings or (len(isa) > 14 and isa[14].strip() == "1")):
        target = ack_dir / f"{stem}.ta1"
        _write_atomically(target, ta1(isa, envelope_findings))
        result.acknowledgments.append(target)
    return result


def _write_atomically(target: Path, text: str) -> None:
    """Write under a temporary name, then rename: a reader never sees half an acknowledgment."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text, encoding="latin-1")
    os.replace(tmp, target)


def _pyx12_findings(doc: dict[str, Any], at: Callable[[int | None], Source]) -> list[Finding]:
    """Findings from pyx12's JSON error document (``doc``, untyped: pyx12's own nested dicts)."""
    out: list[Finding] = []
    for isa in doc.get("interchanges", []):
        for err in isa.get("errors", []):
            out.append(Finding.make("IG_INTERCHANGE_ERROR", f"TA1 {err['err_cde']}: {err['err_str']}", at(isa.get("cur_line"))))
        for gs in isa.get("groups", []):
            for err in gs.get("errors", []):
                out.append(Finding.make("IG_GROUP_ERROR", f"AK9 {err['err_cde']}: {err['err_str']}", at(gs.get("cur_line"))))
            for st in gs.get("transactions", []):
                for err in st.get("errors", []):
                    out.append(Finding.make("IG_TRANSACTION_ERROR", f"IK5 {err['err_cde']}: {err['err_str']}", at(st.get("cur_line"))))
                for seg in st.get("segments", []):
                    where = at(seg.get("cur_line"))
                    loop = seg.get("ls_id") or ""
                    if loop:
                        where = where._replace(loop=loop)
                    for err in seg.get("errors", []):
                        out.append(Finding.make("IG_SEGMENT_ERROR", f"IK304={err['err_cde']} {seg.get('seg_id')}: {err['err_str']}", where))
                    for ele in seg.get("elements", []):
                        for err in ele.get("errors", []):
                            pos = f"{seg.get('seg_id')}{int(ele.get('ele_pos') or 0):02d}"
                            message = _without_value(str(err["err_str"]), str(err.get("err_val") or ""))
                            out.append(Finding.make("IG_ELEMENT_ERROR", f"IK403={err['err_cde']} {pos}: {message}", where))
    return out


def _without_value(message: str, value: str) -> str:
    """pyx12's message with the element's value left out: pyx12 quotes it as ``("value")`` or
    ``(value)``, and the element may be a patient's name, id or birth date."""
    if not value:
        return message
    for quoted in (f'"{value}"', f"({value})"):
        message = message.replace(quoted, '"…"' if quoted[0] == '"' else "(…)")
    return message


def ta1(isa: list[str], envelope_findings: list[Finding], now: datetime | None = None) -> str:
    """A TA1 interchange acknowledgment for the interchange whose ISA is given.

    TA104 is A (accepted) when our reader found no envelope error, R (rejected) otherwise, with the
    note code (TA105) of the most telling error.  The TA1's own interchange control number is
    taken from the clock (day of year and time, nine digits), as pyx12 does for its 999s.
    """
    now = now or datetime.now()
    note = TA1_NOTE_CODES[envelope_findings[0].code] if envelope_findings else "000"
    status = "R" if envelope_findings else "A"
    elem, term = "*", "~"

    def pad(value: str, width: int) -> str:
        return value.strip()[:width].ljust(width)

    own = now.strftime("%j%H%M%S")

    def get(i: int) -> str:
        return isa[i] if len(isa) > i else ""

    header = [
        "ISA",
        "00",
        " " * 10,
        "00",
        " " * 10,
        pad(get(7) or "ZZ", 2),
        pad(get(8), 15),
        pad(get(5) or "ZZ", 2),
        pad(get(6), 15),
        now.strftime("%y%m%d"),
        now.strftime("%H%M"),
        "^" if get(12).strip() >= "00501" else "U",
        pad(get(12) or "00501", 5),
        own,
        "0",
        pad(get(15) or "P", 1),
        ":",
    ]
    ta1_seg = ["TA1", pad(get(13), 9), get(9).strip(), get(10).strip(), status, note]
    iea = ["IEA", "0", own]
    return term.join([elem.join(header), elem.join(ta1_seg), elem.join(iea)]) + term + "\n"
