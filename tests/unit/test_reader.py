"""The X12 reader's layout tolerance and positions, on real sample files rewritten in memory.

Every sample_edi X12 file is rewritten to tmp_path with other line breaks, indentation, a BOM,
leading blank lines and other delimiters; each variant must give the records of the file as sent
(positions aside) and the same findings.  The rewriter below knows where it put every segment, so
positions (byte offset, 1-based segment number, ISA13/GS06/ST02) are checked against an account
kept independently of the parser.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, SAMPLE_EDI

from edirecon import parsers
from edirecon.parsers.delimiters import collision
from edirecon.parsers.model import Party
from edirecon.parsers.serialize import record_dict
from edirecon.parsers.source import Envelope
from edirecon.parsers.values import Values, element, nm1_party

SAMPLES = sorted(p for p in SAMPLE_EDI.rglob("*") if p.suffix in {".835", ".837"})
CLEAN = [p for p in SAMPLES if p.parent.name != "broken-file"]
RECORD_IDS = {"claim": "CLM", "claim_payment": "CLP", "provider_adjustment": "PLB"}


@dataclass(frozen=True)
class Layout:
    """How to write a file: delimiters, what follows each terminator, what comes first."""

    element: str = "*"
    component: str = ":"
    repetition: str = "^"  # ISA11 in 5010; ISA11 is "U" (no repetition separator) in 4010
    terminator: str = "~"
    newline: str = "\n"
    indent: str = ""
    isa12: str = "00501"
    prefix: bytes = b""


@dataclass(frozen=True)
class Placed:
    """One segment as the rewriter placed it: where, and inside which envelopes."""

    number: int
    offset: int
    sid: str
    isa13: str
    gs06: str
    st02: str


def segments_of(path: Path) -> tuple[list[list[str]], bool]:
    """A sample's segments as element lists (components still joined by ':'), and whether the
    last one had its terminator."""
    text = path.read_bytes().decode("ascii")
    pieces = text.split("~")
    complete = not pieces[-1].strip()
    return [p.strip().split("*") for p in pieces if p.strip()], complete


def write(segments: list[list[str]], layout: Layout, complete: bool = True) -> tuple[bytes, list[Placed]]:
    """The segments written with ``layout``, and where each one went."""
    out = bytearray(layout.prefix)
    placed: list[Placed] = []
    isa13 = gs06 = st02 = ""
    for i, els in enumerate(segments):
        sid = els[0]
        if sid == "ISA":
            els = [*els[:11], layout.repetition if layout.isa12 >= "00501" else "U", layout.isa12, *els[13:16], layout.component]
            assert len(els) == 17 and all(layout.element not in e for e in els)
            isa13, gs06, st02 = els[13], "", ""
        else:
            table = str.maketrans({":": layout.component, "^": layout.repetition})
            els = [e.translate(table) for e in els]
            if sid == "GS":
                gs06, st02 = els[6], ""
            elif sid == "ST":
                st02 = els[2]
        if i:
            out += layout.indent.encode()
        placed.append(Placed(i + 1, len(out), sid, isa13, gs06, st02))
        text = layout.element.join(els)
        for ch in {layout.terminator, layout.element} - {""}:
            assert ch not in "".join(els), (ch, text)
        out += text.encode("ascii")
        if complete or i < len(segments) - 1:
            out += (layout.terminator + layout.newline).encode()
        if sid == "SE":
            st02 = ""
        elif sid == "GE":
            gs06 = ""
    return bytes(out), placed


LAYOUTS = {
    "lf": Layout(),
    "cr": Layout(newline="\r"),
    "crlf": Layout(newline="\r\n"),
    "no-line-breaks": Layout(newline=""),
    "indented": Layout(newline="\n", indent="    "),
    "indented-tabs-crlf": Layout(newline="\r\n", indent="\t\t"),
    "utf8-bom": Layout(prefix=b"\xef\xbb\xbf"),
    "blank-lines-before-isa": Layout(prefix=b"\n\n   \r\n\t\n"),
    "bom-then-blank-lines": Layout(prefix=b"\xef\xbb\xbf\r\n\r\n"),
    "pipe-gt": Layout(element="|", component=">", repetition="^"),
    "pipe-caret": Layout(element="|", component="^", repetition="{", newline="\r\n"),
    "newline-terminator": Layout(terminator="\n", newline=""),
    "cr-terminator-crlf": Layout(terminator="\r", newline="\n"),
    "apostrophe-terminator": Layout(terminator="'", newline=""),
    "apostrophe-plus-lf": Layout(element="+", component=">", terminator="'", newline="\n"),
    "isa11-bang-5010": Layout(repetition="!"),
    "isa11-u-4010": Layout(isa12="00401"),
}


def without_positions(obj: Any) -> Any:
    """A record's JSON with every source's file and byte offset removed (segment numbers kept)."""
    if isinstance(obj, dict):
        drop = {"file", "offset"} if {"file", "segment", "offset"} <= obj.keys() else set()
        return {k: without_positions(v) for k, v in obj.items() if k not in drop}
    if isinstance(obj, list):
        return [without_positions(v) for v in obj]
    return obj


def sources_in(obj: Any) -> list[dict]:
    """Every source object nested anywhere in a record's JSON."""
    if isinstance(obj, dict):
        found = [obj] if {"file", "segment", "offset"} <= obj.keys() else []
        return found + [s for v in obj.values() for s in sources_in(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in sources_in(v)]
    return []


def read(path: Path) -> tuple[list[parsers.Record], parsers.FileSummary]:
    """parse_file with a fixed display name, so variants of one sample compare equal."""
    return parsers.parse_file(path, display_name="x.edi")


def finding_key(f: parsers.Finding) -> tuple:
    """A finding minus its byte offset (which moves with the layout)."""
    s = f.source
    return f.code, f.severity, s.segment, s.isa13, s.gs06, s.st02, s.loop


def assert_positions(data: bytes, placed: list[Placed], records: list[parsers.Record], summary: parsers.FileSummary) -> None:
    """Every record (and every source nested in it) names its segment's offset, number and envelope."""
    by_number = {p.number: p for p in placed}
    for rec in records:
        p = by_number[rec.source.segment]
        element = chr(data[rec.source.offset + 3])
        assert (rec.source.offset, p.sid) == (p.offset, RECORD_IDS[rec.record]), rec.source
        assert data[rec.source.offset : rec.source.offset + 4] == (RECORD_IDS[rec.record] + element).encode(), rec.source
        assert (rec.source.isa13, rec.source.gs06, rec.source.st02) == (p.isa13, p.gs06, p.st02), rec.source
        for src in sources_in(record_dict(rec)):
            q = by_number[src["segment"]]
            assert (src["offset"], src["isa13"], src["gs06"], src["st02"]) == (q.offset, q.isa13, q.gs06, q.st02), src
    for f in summary.findings:
        if f.source.segment > 0 and f.source.segment in by_number:
            assert f.source.offset == by_number[f.source.segment].offset, f


@pytest.mark.parametrize("layout", list(LAYOUTS), ids=list(LAYOUTS))
@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.relative_to(SAMPLE_EDI).as_posix())
def test_layout_variant_gives_the_same_records_and_findings(sample: Path, layout: str, tmp_path: Path) -> None:
    """A sample rewritten with another layout gives the same records and findings as sent."""
    original, original_summary = read(sample)
    segments, complete = segments_of(sample)
    data, placed = write(segments, LAYOUTS[layout], complete)
    path = tmp_path / "variant.edi"
    path.write_bytes(data)
    records, summary = read(path)
    assert [without_positions(record_dict(r)) for r in records] == [without_positions(record_dict(r)) for r in original]
    assert [finding_key(f) for f in summary.findings] == [finding_key(f) for f in original_summary.findings]
    if sample in CLEAN:
        assert records and not summary.has_errors
    assert summary.segments == original_summary.segments
    assert_positions(data, placed, records, summary)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.relative_to(SAMPLE_EDI).as_posix())
def test_positions_of_the_file_as_sent(sample: Path) -> None:
    """In each sample as sent, every record's offset, segment number and envelope ids are right."""
    segments, complete = segments_of(sample)
    data, placed = write(segments, Layout(), complete)
    assert data == sample.read_bytes()  # the rewriter reproduces the file byte for byte
    records, summary = read(sample)
    assert records
    assert_positions(data, placed, records, summary)


@pytest.mark.parametrize(
    ("isa11", "isa12", "expected"),
    [("^", "00501", "^"), ("!", "00501", "!"), ("U", "00401", ""), ("^", "00401", ""), (" ", "00501", "")],
    ids=["5010-caret", "5010-bang", "4010-U", "4010-caret-ignored", "5010-space-is-no-separator"],
)
def test_repetition_separator_comes_from_isa11_in_5010_only(isa11: str, isa12: str, expected: str, tmp_path: Path) -> None:
    """ISA11 is the repetition separator from 00501 on; before that it is a standards id, never a delimiter."""
    segments, _ = segments_of(SAMPLE_EDI / "clean-payment" / "claims.837")
    data, _ = write(segments, Layout(repetition=isa11, isa12=isa12) if isa12 >= "00501" else Layout(isa12=isa12))
    if isa12 < "00501":
        data = data[:82] + isa11.encode() + data[83:]
    assert data[82:83] == isa11.encode() and data[84:89] == isa12.encode()
    path = tmp_path / "claims.837"
    path.write_bytes(data)
    reader = parsers.X12Reader(path)
    delimiters = [ts.delimiters for ts in reader]
    assert delimiters == [parsers.x12.Delimiters("*", expected, ":", "~")]


def test_repeated_hi_codes_are_split_on_isa11(tmp_path: Path) -> None:
    """An HI element with repeats ('ABK:E119!ABF:I10', ISA11 '!') reads like two HI elements."""
    sample = SAMPLE_EDI / "clean-payment" / "claims.837"
    segments, _ = segments_of(sample)
    assert ["HI", "ABK:E119", "ABF:I10"] in segments
    joined = [["HI", "ABK:E119^ABF:I10"] if s == ["HI", "ABK:E119", "ABF:I10"] else s for s in segments]
    data, _ = write(joined, Layout(repetition="!"))
    path = tmp_path / "claims.837"
    path.write_bytes(data)
    records, summary = read(path)
    original, _ = read(sample)
    assert records[0].diagnosis_codes == original[0].diagnosis_codes == [("ABK", "E119"), ("ABF", "I10")]
    assert summary.findings == []


def test_4010_isa11_u_does_not_split_elements_on_u(tmp_path: Path) -> None:
    """In 4010 (ISA11 = 'U') a 'U' inside an HI code or a name is data, not a repetition separator."""
    segments, _ = segments_of(SAMPLE_EDI / "clean-payment" / "claims.837")
    changed = [["HI", "ABK:U071", "ABF:I10"] if s == ["HI", "ABK:E119", "ABF:I10"] else s for s in segments]
    data, _ = write(changed, Layout(isa12="00401"))
    assert data[82:83] == b"U"
    path = tmp_path / "claims.837"
    path.write_bytes(data)
    records, summary = read(path)
    assert records[0].diagnosis_codes == [("ABK", "U071"), ("ABF", "I10")]
    assert records[0].subscriber is not None and records[0].subscriber.name == "SMITH"
    assert not summary.has_errors


# -- delimiters that collide ----------------------------------------------------------------------


def test_isa16_equal_to_element_separator_is_not_read_silently(in_repo: Path) -> None:
    """Regression (issue 13.6): ISA16 = '*' parsed clean (exit 0) with SVC charges read from the procedure codes; now exit 1, untrusted."""
    from typer.testing import CliRunner

    from edirecon.cli import app

    path = FIXTURES / "bad" / "isa16-equals-element-separator-then-clean-interchange.835"
    assert path.read_bytes()[103:106] == b"**~" and b"SVC*HC*99214*180.00*100.00~" in path.read_bytes()
    result = CliRunner().invoke(app, ["parse", str(path.relative_to(in_repo))])
    assert result.exit_code == 1
    codes = [line.split(" ")[1] for line in result.stderr.splitlines()]
    assert codes == ["DELIMITER_COLLISION", "TRANSACTION_NOT_POSTABLE"]
    records, _ = read(path)
    assert [(r.source.isa13, r.trusted) for r in records] == [("000620315", False), ("000620315", False), ("000621388", True)]


def test_fixed_width_isa_reads_isa11_equal_to_element_separator_at_its_offset() -> None:
    """ISA11 = '*' in a 106-byte ISA: ISA11 to ISA16 keep their places (ISA13 stays 000001101), the collision is named."""
    reader = parsers.X12Reader(FIXTURES / "bad" / "isa11-equals-element-separator.837")
    (ts,) = list(reader)
    assert ts.delimiters == parsers.x12.Delimiters("*", "*", ":", "~")
    assert (len(ts.interchange.isa), ts.interchange.isa[11], ts.interchange.control_number) == (17, "*", "000001101")
    assert ts.trusted is False
    assert [f.code for f in reader.findings] == ["DELIMITER_COLLISION", "TRANSACTION_NOT_POSTABLE"]


def test_variable_width_isa_with_isa16_equal_to_element_separator_is_a_collision(tmp_path: Path) -> None:
    """An ISA without padding whose ISA16 is '*' is found by counting separators and flagged the same way."""
    segments, _ = segments_of(SAMPLE_EDI / "clean-payment" / "remit.835")
    segments[0] = [e.strip() for e in segments[0]]
    data, _ = write(segments, Layout())
    data = data.replace(b"*P*:~", b"*P**~", 1).replace(b"SVC*HC:", b"SVC*HC*")
    assert data.index(b"~") < 100
    path = tmp_path / "remit.835"
    path.write_bytes(data)
    records, summary = read(path)
    assert [f.code for f in summary.findings] == ["DELIMITER_COLLISION", "TRANSACTION_NOT_POSTABLE"]
    assert "component separator (ISA16) is '*'" in summary.findings[0].message
    assert [r.trusted for r in records] == [False, False]


def test_isa16_letter_collides_with_data(tmp_path: Path) -> None:
    """ISA16 = 'A' would split 'HC:99214' nowhere and 'AMT' everywhere: a DELIMITER_COLLISION, records untrusted."""
    data = (SAMPLE_EDI / "clean-payment" / "remit.835").read_bytes()
    assert data[103:106] == b"*:~"
    path = tmp_path / "remit.835"
    path.write_bytes(data[:104] + b"A" + data[105:])
    records, summary = read(path)
    assert [f.code for f in summary.findings] == ["DELIMITER_COLLISION", "TRANSACTION_NOT_POSTABLE"]
    assert "'A', a character that occurs in data" in summary.findings[0].message
    assert [r.trusted for r in records] == [False, False]


@pytest.mark.parametrize(
    ("delimiters", "expected"),
    [
        (("*", "^", ":", "~"), ""),
        (("*", "", ":", "~"), ""),
        (("*", "^", "*", "~"), "the component separator (ISA16) is '*', the same character as the element separator"),
        (("*", "^", "~", "~"), "the component separator (ISA16) is '~', the same character as the segment terminator"),
        (("*", "*", ":", "~"), "the repetition separator (ISA11) is '*', the same character as the element separator"),
        (("*", "^", "^", "~"), "the component separator (ISA16) is '^', the same character as the repetition separator (ISA11)"),
        (("*", "^", ":", "*"), "the segment terminator is '*', the same character as the element separator"),
        (("|", "", " ", "~"), "the component separator (ISA16) is ' ', a character that occurs in data"),
    ],
    ids=["none", "none-4010", "isa16-element", "isa16-terminator", "isa11-element", "isa11-isa16", "terminator-element", "isa16-space"],
)
def test_collision_names_what_collides(delimiters: tuple[str, str, str, str], expected: str) -> None:
    """Each pair of equal delimiters is named once, with the character; distinct punctuation collides with nothing."""
    assert collision(*delimiters) == expected


# -- several interchanges, groups and transaction sets in one file ------------------------------


def transaction(path: Path, st02: str) -> list[list[str]]:
    """The first ST..SE of a sample, renumbered to ST02 ``st02`` (SE01 recounted)."""
    segments, _ = segments_of(path)
    start = next(i for i, s in enumerate(segments) if s[0] == "ST")
    end = next(i for i, s in enumerate(segments) if s[0] == "SE")
    body = [list(s) for s in segments[start : end + 1]]
    body[0][2] = st02
    body[-1] = ["SE", str(len(body)), st02]
    return body


def envelope(sample: Path, isa13: str, groups: list[tuple[str, list[list[list[str]]]]]) -> list[list[str]]:
    """An interchange ISA13 ``isa13`` (ISA/GS copied from ``sample``) holding the given groups."""
    segments, _ = segments_of(sample)
    isa, gs = list(segments[0]), segments[1]
    isa[13] = isa13
    out = [isa]
    for gs06, sets in groups:
        out.append([*gs[:6], gs06, *gs[7:]])
        for body in sets:
            out += body
        out.append(["GE", str(len(sets)), gs06])
    out.append(["IEA", str(len(groups)), isa13])
    return out


def test_several_isa_gs_and_st_are_all_counted(tmp_path: Path) -> None:
    """Two ISA (different delimiters), three GS, seven ST: every one counted, every record placed."""
    remit = SAMPLE_EDI / "plb-recoupment-settles-refund" / "remit-3.835"
    remit2 = SAMPLE_EDI / "clean-payment" / "remit.835"
    claims = SAMPLE_EDI / "clean-payment" / "claims.837"
    first = envelope(remit, "000000701", [("701", [transaction(remit, "7001"), transaction(remit2, "7002")])])
    # interchange 1 also carries an 837 group, so GS06 must come from the 837 sample's GS
    claims_ic = envelope(claims, "000000701", [("702", [transaction(claims, "7003"), transaction(claims, "7004")])])
    interchange1 = first[:-1] + claims_ic[1:-1] + [["IEA", "2", "000000701"]]
    interchange2 = envelope(remit2, "000000702", [("703", [transaction(remit2, f"800{i}") for i in range(1, 4)])])
    data1, placed1 = write(interchange1, Layout())
    data2, placed2 = write(interchange2, Layout(element="|", component=">", terminator="'", newline="\r\n"))
    data = data1 + data2
    placed = placed1 + [replace(p, number=p.number + len(placed1), offset=p.offset + len(data1)) for p in placed2]
    path = tmp_path / "several.edi"
    path.write_bytes(data)
    records, summary = read(path)
    assert summary.findings == []
    assert (summary.interchanges, summary.functional_groups, summary.transaction_sets) == (2, 3, 7)
    assert dict(summary.transaction_types) == {"835": 5, "837P": 2}
    assert (summary.claims, summary.claim_payments, summary.provider_adjustments) == (4, 1 + 2 + 3 * 2, 1)
    assert [r.source.st02 for r in records if r.record == "claim"] == ["7003", "7003", "7004", "7004"]
    assert sorted({(r.source.isa13, r.source.gs06) for r in records}) == [("000000701", "701"), ("000000701", "702"), ("000000702", "703")]
    assert all(r.trusted for r in records)
    assert_positions(data, placed, records, summary)
    assert all(data.startswith(b"CLP|", r.source.offset) for r in records if r.source.isa13 == "000000702")


def test_summary_counts_every_segment_of_the_file() -> None:
    """FileSummary.segments is the number of segments in the file, ISA to IEA (a half-written last one aside)."""
    actual, expected = [], []
    for sample in SAMPLES:
        segments, complete = segments_of(sample)
        expected.append((sample.name, len(segments) - (not complete)))
        actual.append((sample.name, read(sample)[1].segments))
    assert actual == expected


def test_segment_numbers_count_every_segment_from_isa(tmp_path: Path) -> None:
    """source.segment is the 1-based number of the segment in the file, ISA being 1."""
    sample = SAMPLE_EDI / "clean-payment" / "remit.835"
    lines = sample.read_bytes().decode("ascii").split("~\n")
    records, _ = read(sample)
    for rec in records:
        line = lines[rec.source.segment - 1]
        assert line.startswith("CLP*" + rec.patient_control_number + "*")  # type: ignore[union-attr]
    assert [r.source.segment for r in records] == [i + 1 for i, line in enumerate(lines) if line.startswith("CLP*")]


# -- chunked reading of large files -------------------------------------------------------------


SETS = 75


def big_file(layout: Layout, sets: int = SETS) -> tuple[bytes, list[Placed]]:
    """A 835 of ``sets`` copies of a sample transaction set (well past the reader's 64 KiB look-ahead)."""
    remit = SAMPLE_EDI / "clean-payment" / "remit.835"
    ic = envelope(remit, "000000900", [("900", [transaction(remit, f"{9000 + i}") for i in range(sets)])])
    return write(ic, layout)


@pytest.mark.parametrize("chunk_size", [7, 16, 1000, 4096])
@pytest.mark.parametrize(
    "layout",
    ["lf", "crlf", "no-line-breaks", "indented", "newline-terminator", "padded-80-columns"],
)
def test_large_file_reads_the_same_in_any_chunk_size(layout: str, chunk_size: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 835 past 64 KiB gives the same trusted records in small chunks as in one read, whatever its layout."""
    if layout == "padded-80-columns":
        # fixed 80-byte records: each segment padded with blanks after its terminator (mainframe exports)
        data, _ = big_file(Layout(newline="\n"))
        data = b"\r\n".join(line.ljust(80) for line in data.split(b"\n")[:-1]) + b"\r\n"
        placed = None
    else:
        data, placed = big_file(LAYOUTS[layout])
    assert len(data) > 64 * 1024 + 4096
    path = tmp_path / "big.835"
    path.write_bytes(data)
    whole, whole_summary = read(path)
    assert (len(whole), whole_summary.findings, whole_summary.transaction_sets) == (2 * SETS, [], SETS)
    monkeypatch.setattr(parsers.document, "X12Reader", functools.partial(parsers.X12Reader, chunk_size=chunk_size))
    records, summary = read(path)
    assert [f.as_dict() for f in summary.findings] == []
    assert records == whole and all(r.trusted for r in records)
    if placed is not None:
        assert_positions(data, placed, records, summary)


@pytest.mark.parametrize(
    "els",
    [
        ["NM1", "85", "2", "RIVERBEND FAMILY MEDICINE", "", "", "", "", "XX", "1467523894"],
        ["NM1", "IL", "1", "DOE", "JANE", "Q", "", "JR", "MI", "W123"],
        ["NM1", "PE", "2", "BILLING CO", "", "", "", "", "FI", "376012345"],
        ["NM1", "QC", "1", "DOE", "JOHN", "", "", "", "34", "123456789", "extra"],
        ["NM1", "PR", "2", "PAYER"],
    ],
)
def test_nm1_party_of_the_usual_shape_is_the_party_read_field_by_field(els: list[str]) -> None:
    """The positional fast path of ``nm1_party`` (10 elements or more) builds the same Party as
    the element-by-element reading, its TIN from NM109 when NM108 is a tax-id qualifier."""
    v = Values(Envelope("f", "1", "2", "3"), [])
    qual, ident = element(els, 8), element(els, 9)
    expected = Party(
        entity=element(els, 1),
        name=element(els, 3),
        first_name=element(els, 4),
        middle_name=element(els, 5),
        suffix=element(els, 7),
        id_qualifier=qual,
        id=ident,
        tin=ident if qual in ("24", "34", "FI") else "",
        source=v.at(7, 70, "2010AA"),
    )
    assert nm1_party(els, v, 7, 70, "2010AA") == expected


@pytest.mark.parametrize(
    "delimiters",
    [("*", "^", ":", "~"), ("|", "", ">", "\n"), ("\x1d", "\x1f", "\x1e", "\x1c"), ("\x07", "^", ":", "\x0b")],
    ids=["usual", "newline-terminator", "control-bytes", "bell-and-vertical-tab"],
)
def test_the_quick_control_byte_test_finds_what_the_pattern_finds(delimiters: tuple[str, str, str, str]) -> None:
    """A regular block is told clean by deleting every allowed byte (``_allowed_bytes``), the
    careful path reports by the pattern (``_control_pattern``): the two agree on every byte, a
    delimiter that is itself a control byte allowed by both."""
    from edirecon.parsers.x12 import Delimiters, _allowed_bytes, _control_pattern  # deferred: private helpers of the reader

    d = Delimiters(*delimiters)
    pattern, allowed = _control_pattern(d), _allowed_bytes(d)
    for b in range(128):
        text = f"CLP*1{chr(b)}*2"
        assert bool(text.encode("ascii").translate(None, allowed)) == (pattern.search(text) is not None), hex(b)
