"""The summary reader (``parsers.summary.summarize``, behind ``edirecon parse --summary``) gives
the very same summary as reading every typed record: counts, and every finding with its code,
message, position and severity, in the same order -- on every sample file, test fixture and corpus
file, and on hand-damaged copies of a clean remittance.  And it really skips building the claim
payments of a clean 835 (otherwise it would only be the typed path under another name)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, REPO, SAMPLE_EDI, corpus_files

from edirecon.parsers import summary as summary_mod
from edirecon.parsers.document import FileSummary
from edirecon.parsers.summary import summarize, typed_summary

CLEAN_835 = SAMPLE_EDI / "clean-payment" / "remit.835"


def key(s: FileSummary) -> tuple[Any, ...]:
    return (
        s.file,
        s.interchanges,
        s.functional_groups,
        s.transaction_sets,
        s.segments,
        s.claims,
        s.claim_payments,
        s.service_lines,
        s.provider_adjustments,
        dict(s.transaction_types),
        [(f.code, f.message, tuple(f.source), f.severity) for f in s.findings],
        dict(s.findings.counts),
    )


def assert_same(path: Path) -> FileSummary:
    fast = summarize(path, display_name=str(path))
    typed = typed_summary(path, display_name=str(path))
    assert key(fast) == key(typed)
    return fast


def x12_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith((".md", ".json")))


@pytest.mark.parametrize("path", x12_files(SAMPLE_EDI) + x12_files(FIXTURES), ids=lambda p: str(p.relative_to(REPO)))
def test_same_summary_on_samples_and_fixtures(path: Path) -> None:
    assert_same(path)


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name[-60:])
def test_same_summary_on_the_corpus(path: Path, corpus: Path) -> None:
    assert_same(path)


@pytest.fixture
def typed_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The text of every transaction set (or part of one) the typed 835 reader is handed."""
    seen: list[str] = []
    real = summary_mod.read_835

    def spy(ts: Any, v: Any) -> Iterator[Any]:
        seen.append(ts._text)
        return real(ts, v)

    monkeypatch.setattr(summary_mod, "read_835", spy)
    return seen


def test_clean_835_claim_payments_are_not_built(typed_reads: list[str]) -> None:
    s = assert_same(CLEAN_835)
    assert s.claim_payments > 0 and s.service_lines > 0
    assert typed_reads, "the header is read by the typed reader"
    assert not any("CLP*" in text for text in typed_reads)


@pytest.mark.parametrize("block", [summary_mod.BLOCK, 64, 1])
def test_generated_remittance_takes_the_fast_path(tmp_path: Path, typed_reads: list[str], monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    monkeypatch.setattr(summary_mod, "BLOCK", block)  # claim payments scanned in blocks of any size
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from generate import generate
    finally:
        sys.path.pop(0)
    path = tmp_path / "remit.835"
    generate("835", str(path), 300, seed=3, claims_per_transaction=100)
    s = assert_same(path)
    assert s.claim_payments == 300 and s.transaction_sets == 3
    assert not any("CLP*" in text for text in typed_reads)
    # one bad date in the last claim payment: the whole transaction set is read by the typed path
    data = path.read_bytes()
    at = data.rindex(b"DTM*472*") + 8
    path.write_bytes(data[:at] + b"20241340" + data[at + 8 :])
    typed_reads.clear()
    s = assert_same(path)
    assert s.findings.counts["INVALID_DATE"] == 1
    assert sum("CLP*" in text for text in typed_reads) == 1


def damaged(tmp_path: Path, old: bytes, new: bytes, count: int = 1) -> Path:
    data = CLEAN_835.read_bytes()
    assert data.count(old) >= count, old
    path = tmp_path / "damaged.835"
    path.write_bytes(data.replace(old, new, count))
    return path


# (what is damaged, bytes found, bytes put instead, a finding code the file must then have or None)
DAMAGE = [
    ("SE01 count", b"SE*", b"SE*9", "SE_COUNT_MISMATCH"),
    ("SE02 control number", b"*35001~\nGE", b"*35009~\nGE", "SE_CONTROL_MISMATCH"),
    ("GE02 control number", b"GE*1*620315", b"GE*1*620316", "GE_CONTROL_MISMATCH"),
    ("IEA02 control number", b"IEA*1*000620315", b"IEA*1*000620316", "IEA_CONTROL_MISMATCH"),
    ("CLP charge not an amount", b"CLP*RFM2601001*1*205.00", b"CLP*RFM2601001*1*2O5.00", "INVALID_AMOUNT"),
    ("CLP paid with three decimals", b"*110.00*30.00", b"*110.005*30.00", "AMOUNT_PRECISION"),
    ("CLP02 unknown", b"CLP*RFM2601001*1*", b"CLP*RFM2601001*77*", "UNKNOWN_CODE"),
    ("CLP01 empty", b"CLP*RFM2601001*", b"CLP**", "MISSING_ELEMENT"),
    ("CLP01 too long", b"CLP*RFM2601001*", b"CLP*" + b"R" * 39 + b"*", "ELEMENT_TOO_LONG"),
    ("CAS reason unknown", b"CAS*CO*45*50.00", b"CAS*CO*Q9*50.00", "UNKNOWN_CODE"),
    ("CAS group unknown", b"CAS*CO*45*50.00", b"CAS*XX*45*50.00", "UNKNOWN_CODE"),
    ("CAS quantity", b"CAS*CO*45*50.00", b"CAS*CO*45*50.00*x", "INVALID_NUMBER"),
    ("SVC units", b"SVC*HC:99214*180.00*100.00", b"SVC*HC:99214*180.00*100.00**1.x", "INVALID_NUMBER"),
    ("AMT amount", b"AMT*B6*130.00", b"AMT*B6*13O.00", "INVALID_AMOUNT"),
    ("DTM not a date", b"DTM*472*20260210", b"DTM*472*20261310", "INVALID_DATE"),
    ("DTM 29 February of a leap year", b"DTM*472*20260210", b"DTM*472*20240229", None),
    ("DTM 29 February of a common year", b"DTM*472*20260210", b"DTM*472*20250229", "INVALID_DATE"),
    ("NM1 long", b"NM1*QC*1*SMITH*JOHN****MI*BRH123456701", b"NM1*QC*1*SMITH*JOHN****MI*BRH123456701*X*Y", None),
    ("segment over 80 bytes", b"REF*6R*RFM2601001L1", b"REF*6R*" + b"9" * 80, "ELEMENT_TOO_LONG"),
    ("control byte", b"REF*6R*RFM2601001L1", b"REF*6R*RFM26\x0101L1", "CONTROL_CHARACTER"),
    ("non-ASCII byte", b"NM1*QC*1*SMITH", b"NM1*QC*1*SM\xc9TH", "NON_ASCII_BYTE"),
    ("bad segment id", b"REF*6R*RFM2601001L1", b"rEF*6R*RFM2601001L1", "INVALID_SEGMENT_ID"),
    ("LX between claim payments", b"~\nCLP*RFM2601002", b"~\nLX*2~\nCLP*RFM2601002", None),
    ("unexpected segment in a claim payment", b"AMT*B6*130.00~", b"AMT*B6*130.00~\nN3*X~", None),
    ("PLB clean", b"SE*39", b"PLB*1467523894*20261231*WO:X1*-12.00*L6*5.00~\nSE*40", None),
    ("PLB bad amount", b"SE*39", b"PLB*1467523894*20261231*WO:X1*1.2.3~\nSE*40", "INVALID_AMOUNT"),
    ("PLB bad date and code", b"SE*39", b"PLB*1467523894*20261331*ZZZ:X1*1.00~\nSE*40", "INVALID_DATE"),
    ("PLB then another claim payment", b"SE*39", b"PLB*1467523894*20261231*WO:X1*1.00~\nCLP*X*1*1*1*0*12~\nSE*41", None),
    ("blank lines", b"~\nCAS*CO*45*50.00", b"~\n\n  CAS*CO*45*50.00", None),
]


@pytest.mark.parametrize(("old", "new", "code"), [d[1:] for d in DAMAGE], ids=[d[0] for d in DAMAGE])
def test_same_summary_on_damaged_remittances(tmp_path: Path, old: bytes, new: bytes, code: str | None) -> None:
    s = assert_same(damaged(tmp_path, old, new))
    if code is not None:
        assert code in s.findings.counts


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("missing IEA", lambda b: b[: b.rindex(b"IEA*")]),
        ("truncated inside a claim payment", lambda b: b[: b.index(b"CAS*PR*3") + 5]),
        ("truncated without SE", lambda b: b[: b.index(b"SE*")]),
        ("segment terminator changed", lambda b: b.replace(b"~", b"!")),
        ("terminator declared wrong", lambda b: b[:105] + b"|" + b[106:]),
        ("element separator is the terminator", lambda b: b[:3] + b"~" + b[4:]),
        ("not X12 at all", lambda b: b"patient,amount\nx,1.00\n"),
        ("binary", lambda b: bytes(range(256)) * 4),
        ("two interchanges", lambda b: b + b),
        ("line breaks CR LF", lambda b: b.replace(b"~\n", b"~\r\n")),
        ("no line breaks", lambda b: b.replace(b"~\n", b"~")),
    ],
)
def test_same_summary_on_broken_files(tmp_path: Path, name: str, data: Any) -> None:
    path = tmp_path / "broken.835"
    path.write_bytes(data(CLEAN_835.read_bytes()))
    assert_same(path)


def test_same_summary_on_a_bad_count_837() -> None:
    # 837s are read by the typed path: the same summary by construction, checked all the same
    assert_same(SAMPLE_EDI / "broken-file" / "claims-bad-counts.837")


@pytest.mark.parametrize("gap", [b"~", b"~\n", b"~\r\n", b"~ "], ids=["empty", "LF", "CRLF", "space"])
def test_empty_segment_in_claim_payments_keeps_later_positions(tmp_path: Path, gap: bytes) -> None:
    """An empty segment between claim payments is not numbered: the PLB findings after it keep
    the typed path's segment numbers (regression: the fast scan counted it)."""
    data = CLEAN_835.read_bytes()
    data = data.replace(b"~\nCAS*CO*45*50.00", b"~" + gap + b"\nCAS*CO*45*50.00", 1)
    data = data.replace(b"SE*39", b"PLB*1467523894*20261331*WO:X1*1.00~\nSE*40", 1)
    path = tmp_path / "gap.835"
    path.write_bytes(data)
    s = assert_same(path)
    assert "INVALID_DATE" in s.findings.counts


@pytest.mark.parametrize(("limit", "refused"), [(5, True), (30, False)])
def test_same_summary_past_the_stretch_limit(monkeypatch: pytest.MonkeyPatch, limit: int, refused: bool) -> None:
    from edirecon.parsers import limits

    monkeypatch.setattr(limits, "MAX_STRETCH_SEGMENTS", limit)  # the remittance: 39 segments, claim payments of 13-15
    s = assert_same(CLEAN_835)
    assert ("TRANSACTION_TOO_LARGE" in s.findings.counts) is refused
    assert s.claim_payments == (0 if refused else 2)
