"""Bad input: one small realistic file per class of damage, each next to its expected findings.

Every file in ``tests/fixtures/bad/`` is a sample_edi file damaged by hand in one way (or, for the
empty/whitespace/CSV/binary classes, something that is not X12 at all).  Next to it,
``<name>.expected.json`` holds what the parser must make of it:

* ``findings``: every finding as ``code``, ``severity``, ``segment`` (1-based segment number, 0 when
  the finding is about no segment), ``offset`` (byte offset), ``at`` (the bytes the file has at that
  offset, read as latin-1) and, for byte-level findings, ``byte_offset`` (the offending byte);
* ``transaction_sets``, ``claims``, ``claim_payments``, ``provider_adjustments``: the summary counts;
* ``records``: every record in file order with its key (patient control number, or PLB reason), its
  ``trusted`` flag, its position and ``at`` bytes, and optionally ``fields``: dotted paths into
  :func:`parsers.serialize.record_dict` and the JSON values expected there.
"""

from __future__ import annotations

import functools
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES

from edirecon import parsers
from edirecon.parsers.serialize import record_dict

BAD = FIXTURES / "bad"
CASES = sorted(p for p in BAD.iterdir() if p.is_file() and not p.name.endswith(".expected.json"))
WHITE = b" \t\r\n"


def expected_of(path: Path) -> dict[str, Any]:
    """The reviewed expectation stored next to a fixture."""
    return json.loads(Path(f"{path}.expected.json").read_text(encoding="utf-8"))


def parse(path: Path) -> tuple[list[parsers.Record], parsers.FileSummary]:
    """Parse a fixture with its bare name as display name (stable ``source.file``)."""
    return parsers.parse_file(path, display_name=path.name)


def finding_row(f: parsers.Finding) -> dict[str, Any]:
    """A finding in the form the expected files use."""
    return {"code": f.code, "severity": f.severity.value, "segment": f.source.segment, "offset": f.source.offset}


def segment_starts(data: bytes) -> list[int]:
    """Byte offset of every segment, counted independently of the parser (index 0 unused).

    Each interchange's terminator is the byte after ISA16, at the fixed position 105 of the
    106-byte ISA header; bytes left after the last terminator count as one more segment.
    """
    starts = [-1]
    term = b"~"
    pos, n = 0, len(data)
    while True:
        while pos < n and data[pos] in WHITE:
            pos += 1
        if pos >= n:
            return starts
        starts.append(pos)
        if data.startswith(b"ISA", pos) and pos + 106 <= n:
            term = data[pos + 105 : pos + 106]
            end = pos + 105
        else:
            end = data.find(term, pos)
        if end < 0:
            return starts
        pos = end + 1


def dotted(obj: Any, path: str) -> Any:
    """The value at a dotted path (``services.0.paid``) of a record's JSON form."""
    for key in path.split("."):
        obj = obj[int(key)] if isinstance(obj, list) else obj[key]
    return obj


def test_every_fixture_has_its_expected_output() -> None:
    """Each bad-input fixture has an .expected.json, and each .expected.json has its fixture."""
    assert len(CASES) >= 20
    missing = [p.name for p in CASES if not Path(f"{p}.expected.json").is_file()]
    orphans = [p.name for p in BAD.glob("*.expected.json") if not p.with_name(p.name[: -len(".expected.json")]).is_file()]
    assert (missing, orphans) == ([], [])


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_findings_are_the_expected_ones(path: Path) -> None:
    """The file's findings (code, severity, segment number, offset) are exactly the reviewed ones."""
    _, summary = parse(path)
    actual = sorted((finding_row(f) for f in summary.findings), key=lambda e: (e["offset"], e["segment"], e["code"]))
    expected = [{k: e[k] for k in ("code", "severity", "segment", "offset")} for e in expected_of(path)["findings"]]
    assert actual == expected


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_counts_are_the_expected_ones(path: Path) -> None:
    """Transaction sets, claims, claim payments and provider adjustments are counted as expected."""
    records, summary = parse(path)
    expected = expected_of(path)
    keys = ("transaction_sets", "claims", "claim_payments", "provider_adjustments")
    assert {k: getattr(summary, k) for k in keys} == {k: expected[k] for k in keys}
    # the summary counts what was handed out
    by_kind = {kind: sum(1 for r in records if r.record == kind) for kind in ("claim", "claim_payment", "provider_adjustment")}
    assert by_kind == {"claim": summary.claims, "claim_payment": summary.claim_payments, "provider_adjustment": summary.provider_adjustments}


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_records_trust_and_fields_are_the_expected_ones(path: Path) -> None:
    """Records come back in file order with the expected key, trusted flag, position and field values."""
    records, _ = parse(path)
    expected = expected_of(path)["records"]
    actual = []
    for rec in records:
        d = record_dict(rec)
        row = {
            "record": rec.record,
            "id": d.get("patient_control_number") or d.get("reason"),
            "trusted": rec.trusted,
            "segment": rec.source.segment,
            "offset": rec.source.offset,
        }
        want = expected[len(actual)] if len(actual) < len(expected) else {}
        for field in want.get("fields", {}):
            row.setdefault("fields", {})[field] = dotted(d, field)
        actual.append(row)
    assert actual == [{k: v for k, v in e.items() if k != "at"} for e in expected]


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_positions_point_at_the_first_byte_of_their_segment(path: Path) -> None:
    """Every finding's and record's offset starts its segment, and its segment number counts right."""
    data = path.read_bytes()
    records, summary = parse(path)
    starts = segment_starts(data)
    expected = expected_of(path)
    places = [(f"finding {e['code']}", e) for e in expected["findings"]] + [(f"record {e['id']}", e) for e in expected["records"]]
    for what, e in places:
        offset = e["offset"]
        assert data[offset : offset + len(e["at"])] == e["at"].encode("latin-1"), what
        if e["segment"] > 0:
            assert starts[e["segment"]] == offset, f"{what}: segment {e['segment']} starts at {starts[e['segment']]}"
    for f in summary.findings:
        if f.source.segment > 0:
            assert 0 < f.source.segment < len(starts) and starts[f.source.segment] == f.source.offset, str(f)
        else:
            assert f.source.offset == len(data) - len(data.lstrip(WHITE)) or f.source.offset == 0, str(f)
    for rec in records:
        assert starts[rec.source.segment] == rec.source.offset, rec.source
        assert data.startswith(b"CLP" if rec.record == "claim_payment" else b"CLM" if rec.record == "claim" else b"PLB", rec.source.offset)


@pytest.mark.parametrize("path", [p for p in CASES if any("byte_offset" in e for e in expected_of(p)["findings"])], ids=lambda p: p.name)
def test_byte_findings_name_the_offending_byte(path: Path) -> None:
    """NON_ASCII_BYTE and CONTROL_CHARACTER name the absolute offset of the first offending byte."""
    data = path.read_bytes()
    _, summary = parse(path)
    for e in expected_of(path)["findings"]:
        if "byte_offset" not in e:
            continue
        (f,) = [f for f in summary.findings if f.code == e["code"] and f.source.offset == e["offset"]]
        assert f"at offset {e['byte_offset']} " in f.message
        byte = data[e["byte_offset"]]
        assert byte >= 0x80 if f.code == "NON_ASCII_BYTE" else byte < 0x20 or byte == 0x7F
        segment = data[e["offset"] : e["byte_offset"]]
        assert all(b < 0x80 for b in segment) if f.code == "NON_ASCII_BYTE" else all(0x20 <= b < 0x7F or b in WHITE for b in segment)


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_streaming_and_tiny_chunks_agree_with_parse_file(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading 7 bytes at a time gives the same records and findings as one whole-file read."""
    records, summary = parse(path)
    monkeypatch.setattr(parsers.document, "X12Reader", functools.partial(parsers.X12Reader, chunk_size=7))
    small_records, small_summary = parse(path)
    assert [record_dict(r) for r in small_records] == [record_dict(r) for r in records]
    assert [f.as_dict() for f in small_summary.findings] == [f.as_dict() for f in summary.findings]


def test_half_written_last_segment_is_not_read_as_complete() -> None:
    """A file cut inside 'CAS*PR*3*30.00~' must not yield a PR-3 adjustment of 3.00 (it was 30.00)."""
    path = BAD / "truncated-mid-segment.835"
    data = path.read_bytes()
    cut = data.rindex(b"CAS*PR*3*3")
    assert data.endswith(b"CAS*PR*3*3")
    records, _ = parse(path)
    cut_claim = records[-1]
    assert (cut_claim.trusted, cut_claim.source.st02) == (False, "35002")
    from_cut = [a for s in cut_claim.services for a in s.adjustments if a.source.offset == cut]
    assert from_cut == []


def test_unknown_codes_are_kept_as_sent() -> None:
    """CLP02 '99', CAS reason 'ZZZ9' and PLB reason 'QQ' are kept on the records, each flagged once."""
    path = BAD / "unknown-codes-clp02-cas-plb.835"
    records, summary = parse(path)
    payment, plb = records
    assert payment.status == "99"
    assert [(a.group, a.reason) for a in payment.services[0].adjustments] == [("CO", "45"), ("CO", "253"), ("PR", "ZZZ9")]
    assert (plb.reason, plb.amount) == ("QQ", Decimal("99.96"))
    flagged = [f for f in summary.findings if f.code == "UNKNOWN_CODE"]
    assert [f.source.offset for f in flagged] == [payment.source.offset, payment.services[0].adjustments[2].source.offset, plb.source.offset]
    assert all(f"'{code}'" in f.message for f, code in zip(flagged, ("99", "ZZZ9", "QQ")))


def test_malformed_amount_and_date_become_none_with_the_rest_kept() -> None:
    """CLP04 '12.3.4' and DTM*232 '20261345' become None; the other amounts stay exact Decimals."""
    records, _ = parse(BAD / "malformed-amount-and-date.835")
    payment = records[0]
    assert (payment.paid, payment.statement_from) == (None, None)
    assert (payment.charge, payment.patient_responsibility) == (Decimal("205.00"), Decimal("30.00"))
    assert all(type(s.paid) is Decimal for s in payment.services)


def test_non_ascii_name_is_read_as_utf8() -> None:
    """Regression (issue 12): the UTF-8 bytes of 'ZOÉ' are read as 'ZOÉ', not 'ZOÃ\x89'; offsets stay bytes."""
    path = BAD / "non-ascii-utf8-name.835"
    records, summary = parse(path)
    assert records[1].patient is not None
    assert records[1].patient.first_name == "ZOÉ"
    data = path.read_bytes()
    assert data.startswith(b"NM1*QC*1*DOE*ZO\xc3\x89", records[1].patient.source.offset)
    encoding = [f for f in summary.findings if f.code == "TEXT_ENCODING"]
    assert [(f.severity.value, f.source.segment, "UTF-8" in f.message) for f in encoding] == [("info", 1, True)]
