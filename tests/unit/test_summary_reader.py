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
    ("CLP06 unknown", b"*30.00*12*BRH2603030041", b"*30.00*QQ*BRH2603030041", "UNKNOWN_CODE"),
    ("CLP06 empty", b"*30.00*12*BRH2603030041", b"*30.00**BRH2603030041", None),
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
    ("PLB after a lost terminator", b"AMT*B6*95.00~\nSE*39", b"AMT*B6*95.00\nPLB*1467523894*20261231*WO:X1*1.00~\nSE*40", None),
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


# ---------------------------------------------------------------- the 837 fast scan
CLEAN_837 = SAMPLE_EDI / "clean-payment" / "claims.837"
SAMPLE_837S = [CLEAN_837, SAMPLE_EDI / "institutional-and-dental" / "claims-institutional.837", SAMPLE_EDI / "institutional-and-dental" / "claims-dental.837"]


@pytest.fixture
def typed_837_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The text of every transaction set (or part of one) the typed 837 reader is handed."""
    seen: list[str] = []
    real = summary_mod.read_837

    def spy(ts: Any, v: Any, kind: str) -> Iterator[Any]:
        seen.append(ts._text)
        return real(ts, v, kind)

    monkeypatch.setattr(summary_mod, "read_837", spy)
    return seen


@pytest.mark.parametrize("path", SAMPLE_837S, ids=lambda p: p.name)
def test_clean_837_claims_are_not_built(path: Path, typed_837_reads: list[str]) -> None:
    s = assert_same(path)
    assert s.claims > 0 and s.service_lines > 0
    assert typed_837_reads, "the header and SE are read by the typed reader"
    assert not any("CLM*" in text for text in typed_837_reads)


@pytest.mark.parametrize("block", [summary_mod.BLOCK, 64, 1])
def test_generated_837_takes_the_fast_path(tmp_path: Path, typed_837_reads: list[str], monkeypatch: pytest.MonkeyPatch, block: int) -> None:
    monkeypatch.setattr(summary_mod, "BLOCK", block)  # the body scanned in blocks of any size
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from generate import generate
    finally:
        sys.path.pop(0)
    path = tmp_path / "claims.837"
    generate("837p", str(path), 300, seed=3, claims_per_transaction=100)
    s = assert_same(path)
    assert s.claims == 300 and s.transaction_sets == 3
    assert not any("CLM*" in text for text in typed_837_reads)
    # one bad date in the last claim: the whole transaction set is read by the typed path
    data = path.read_bytes()
    at = data.rindex(b"DTP*472*D8*") + 11
    path.write_bytes(data[:at] + b"20241340" + data[at + 8 :])
    typed_837_reads.clear()
    s = assert_same(path)
    assert s.findings.counts["INVALID_DATE"] == 1
    assert sum("CLM*" in text for text in typed_837_reads) == 1


def damaged_837(tmp_path: Path, old: bytes, new: bytes, source: Path = CLEAN_837) -> Path:
    data = source.read_bytes()
    assert old in data, old
    path = tmp_path / "damaged.837"
    path.write_bytes(data.replace(old, new, 1))
    return path


_COB = b"HI*ABK:J069~\nSBR*S*18*******CI~\n"  # a 2320 other payer in the second claim
_SVD = b"REF*6R*RFM2601002L1~\nSVD*87726*100.00*HC:99213**1~\n"  # a 2430 line adjudication on its line
# (what is damaged, bytes found, bytes put instead, a finding code the file must then have or None)
DAMAGE_837 = [
    ("CLM01 empty", b"CLM*RFM2601001*", b"CLM**", "MISSING_ELEMENT"),
    ("CLM01 too long", b"CLM*RFM2601001*", b"CLM*" + b"R" * 39 + b"*", "ELEMENT_TOO_LONG"),
    ("CLM01 38 characters", b"CLM*RFM2601001*", b"CLM*" + b"R" * 38 + b"*", None),
    ("CLM02 empty", b"*205.00***", b"****", "MISSING_ELEMENT"),
    ("CLM02 not an amount", b"*205.00***", b"*2O5.00***", "INVALID_AMOUNT"),
    ("CLM02 three decimals", b"*205.00***", b"*205.001***", "AMOUNT_PRECISION"),
    ("CLM05 frequency unknown", b"*11:B:1*Y*A*Y*Y~\nHI*ABK:J069", b"*11:B:Q*Y*A*Y*Y~\nHI*ABK:J069", "UNKNOWN_CODE"),
    ("SBR09 unknown", b"SBR*P**BRH00417******CI~", b"SBR*P**BRH00417******QQ~", "UNKNOWN_CODE"),
    ("SV102 not an amount", b"SV1*HC:36415*25.00*", b"SV1*HC:36415*2S.00*", "INVALID_AMOUNT"),
    ("SV104 units", b"SV1*HC:36415*25.00*UN*1*", b"SV1*HC:36415*25.00*UN*1.x*", "INVALID_NUMBER"),
    ("SV1 short", b"SV1*HC:36415*25.00*UN*1***1~", b"SV1*HC:36415~", None),
    ("DTP not a date", b"DTP*472*D8*20260212", b"DTP*472*D8*20261312", "INVALID_DATE"),
    ("DTP 29 February of a leap year", b"DTP*472*D8*20260212", b"DTP*472*D8*20240229", None),
    ("DTP 29 February of a common year", b"DTP*472*D8*20260212", b"DTP*472*D8*20250229", "INVALID_DATE"),
    ("DTP 29 February 1900", b"DTP*472*D8*20260212", b"DTP*472*D8*19000229", "INVALID_DATE"),
    ("DTP 29 February 2000", b"DTP*472*D8*20260212", b"DTP*472*D8*20000229", None),
    ("DTP range", b"DTP*472*D8*20260212", b"DTP*472*RD8*20260201-20260212", None),
    ("DTP range with a bad end", b"DTP*472*D8*20260212", b"DTP*472*RD8*20260201-20260232", "INVALID_DATE"),
    ("DTP unknown format", b"DTP*472*D8*20260212", b"DTP*472*XX*202602", "INVALID_DATE"),
    ("DTP other format, eight digits", b"DTP*472*D8*20260212", b"DTP*472*D6*20260212", None),
    ("DTP without a date", b"DTP*472*D8*20260212", b"DTP*472", None),
    ("DMG not a date", b"DMG*D8*20150704", b"DMG*D8*20150732", "INVALID_DATE"),
    ("BHT04 not a date (header)", b"BHT*0019*00*RFM260213A*20260213", b"BHT*0019*00*RFM260213A*20261313", "INVALID_DATE"),
    ("LX without its SV1", b"SV1*HC:36415*25.00*UN*1***1~", b"NTE*ADD*X~", "MISSING_SEGMENT"),
    ("SV1 without its LX", b"LX*2~", b"NTE*ADD*X~", "MISSING_SEGMENT"),
    ("LX last before SE", b"REF*6R*RFM2601002L1~", b"REF*6R*RFM2601002L1~\nLX*2~", "MISSING_SEGMENT"),
    (
        "LX without SV1, then a line of two",
        b"LX*1~\nSV1*HC:99213*140.00*UN*1***1~",
        b"LX*1~\nNTE*ADD*X~\nLX*2~\nSV1*HC:99213*140.00*UN*1***1~\nSV1*HC:1*1.00~",
        "MISSING_SEGMENT",
    ),
    ("SV2 after the SV1 of a line", b"SV1*HC:36415*25.00*UN*1***1~", b"SV1*HC:36415*25.00*UN*1***1~\nSV2*HC:1*1.00~", "MISSING_SEGMENT"),
    ("HL without elements before a line", b"LX*2~", b"HL~\nLX*2~", "ORPHAN_SEGMENT"),
    ("LX apart from its SV1", b"LX*2~", b"LX*2~\nNTE*ADD*X~", None),
    ("two SV1 in one service line", b"LX*2~", b"SV1*HC:99999*1.00~", "MISSING_SEGMENT"),
    ("LX before the claim", b"HL*2*1*22*0~\n", b"HL*2*1*22*0~\nLX*9~\n", "ORPHAN_SEGMENT"),
    ("LX and SV1 before the claim", b"HL*2*1*22*0~\n", b"HL*2*1*22*0~\nLX*9~\nSV1*HC:1*1.00~\n", "ORPHAN_SEGMENT"),
    ("LX in the header", b"BHT*0019*00*RFM260213A*20260213*1015*CH~\n", b"BHT*0019*00*RFM260213A*20260213*1015*CH~\nLX*9~\n", "ORPHAN_SEGMENT"),
    ("CLM in the header", b"BHT*0019*00*RFM260213A*20260213*1015*CH~\n", b"BHT*0019*00*RFM260213A*20260213*1015*CH~\nCLM*X*1.00~\n", None),
    ("SBR in the header", b"BHT*0019*00*RFM260213A*20260213*1015*CH~\n", b"BHT*0019*00*RFM260213A*20260213*1015*CH~\nSBR*P*18*******QQ~\n", None),
    ("SV2 in an 837P", b"SV1*HC:36415*25.00*UN*1***1", b"SV2*0300*HC:36415*25.00*UN*1", "TYPE_MISMATCH"),
    ("CAS in a claim without other payer", b"HI*ABK:J069~\n", b"HI*ABK:J069~\nCAS*CO*45*1.00~\n", "ORPHAN_SEGMENT"),
    ("CAS in the hierarchy", b"DMG*D8*20150704*F~\n", b"DMG*D8*20150704*F~\nCAS*CO*45*1.00~\n", "ORPHAN_SEGMENT"),
    ("other payer with CAS and AMT", b"HI*ABK:J069~\n", _COB + b"CAS*CO*45*1.00~\nAMT*D*10.00~\n", None),
    ("other payer CAS reason unknown", b"HI*ABK:J069~\n", _COB + b"CAS*CO*Q9*1.00~\n", "UNKNOWN_CODE"),
    ("other payer CAS group unknown", b"HI*ABK:J069~\n", _COB + b"CAS*XX*45*1.00~\n", "UNKNOWN_CODE"),
    ("other payer CAS quantity", b"HI*ABK:J069~\n", _COB + b"CAS*CO*45*1.00*x~\n", "INVALID_NUMBER"),
    ("other payer AMT not an amount", b"HI*ABK:J069~\n", _COB + b"AMT*D*1O.00~\n", "INVALID_AMOUNT"),
    ("other payer SBR09 unknown", b"HI*ABK:J069~\n", b"HI*ABK:J069~\nSBR*S*18*******QQ~\n", "UNKNOWN_CODE"),
    ("SVD outside a service line", b"HI*ABK:J069~\n", b"HI*ABK:J069~\nSVD*87726*1.00*HC:1**1~\n", "ORPHAN_SEGMENT"),
    ("SVD after the other payer, outside a line", b"HI*ABK:J069~\n", _COB + b"SVD*87726*1.00*HC:1**1~\n", "ORPHAN_SEGMENT"),
    ("SVD with CAS on its line", b"REF*6R*RFM2601002L1~\n", _SVD + b"CAS*CO*45*40.00~\nDTP*573*D8*20260220~\n", None),
    ("SVD units", b"REF*6R*RFM2601002L1~\n", b"REF*6R*RFM2601002L1~\nSVD*87726*100.00*HC:99213**x~\n", "INVALID_NUMBER"),
    ("SVD paid not an amount", b"REF*6R*RFM2601002L1~\n", b"REF*6R*RFM2601002L1~\nSVD*87726*1OO*HC:99213**1~\n", "INVALID_AMOUNT"),
    ("CAS on a line without SVD", b"REF*6R*RFM2601002L1~\n", b"REF*6R*RFM2601002L1~\nCAS*CO*45*40.00~\n", "ORPHAN_SEGMENT"),
    ("CAS after the next LX", b"REF*6R*RFM2601001L1~\n", b"REF*6R*RFM2601001L1~\nSVD*87726*1.00*HC:1**1~\n", None),
    ("segment over 80 bytes", b"REF*6R*RFM2601001L1", b"REF*6R*" + b"9" * 80, "ELEMENT_TOO_LONG"),
    ("NM1 long", b"NM1*QC*1*DOE*EMMA", b"NM1*QC*1*DOE*EMMA****MI*" + b"X" * 40 + b"*Y*Z", None),
    ("control byte", b"REF*6R*RFM2601001L1", b"REF*6R*RFM26\x0101L1", "CONTROL_CHARACTER"),
    ("non-ASCII byte", b"NM1*QC*1*DOE*EMMA", b"NM1*QC*1*DO\xc9*EMMA", "NON_ASCII_BYTE"),
    ("bad segment id", b"REF*6R*RFM2601001L1", b"rEF*6R*RFM2601001L1", "INVALID_SEGMENT_ID"),
    ("HL without elements", b"HL*3*1*22*1~", b"HL~", None),
    ("LX without elements", b"LX*2~", b"LX~", None),
    ("empty segment", b"HI*ABK:J069~\n", b"HI*ABK:J069~~\n", None),
    ("blank line", b"HI*ABK:J069~\n", b"HI*ABK:J069~\n\n", None),
    ("indented segment", b"HI*ABK:J069~\n", b"HI*ABK:J069~\n  ", None),
]


@pytest.mark.parametrize(("old", "new", "code"), [d[1:] for d in DAMAGE_837], ids=[d[0] for d in DAMAGE_837])
def test_same_summary_on_damaged_claims(tmp_path: Path, old: bytes, new: bytes, code: str | None) -> None:
    s = assert_same(damaged_837(tmp_path, old, new))
    if code is not None:
        assert code in s.findings.counts
    assert s.claims == 2 or new.startswith(b"HL~") or b"CLM*X" in new


def test_header_sbr_reaches_the_first_claim(tmp_path: Path) -> None:
    """An SBR in the header is the first claim's when no 2000A/2000B level comes before it: its
    SBR09 is checked at that CLM (the fast scan leaves such a header to the typed path)."""
    data = CLEAN_837.read_bytes()
    data = data.replace(b"CH~\n", b"CH~\nSBR*P*18*******QQ~\n", 1).replace(b"HL*1**20*1~", b"HL*1**23*1~")
    data = data.replace(b"HL*2*1*22*0~\nSBR*P*18*BRH00417******CI~\n", b"")
    path = tmp_path / "header-sbr.837"
    path.write_bytes(data)
    assert "UNKNOWN_CODE" in assert_same(path).findings.counts


def test_institutional_line_in_a_dental_guide(tmp_path: Path) -> None:
    dental = SAMPLE_837S[2]
    data = dental.read_bytes()
    assert b"SV3*" in data
    path = damaged_837(tmp_path, b"SV3*", b"SV2*0300*", dental)
    assert "TYPE_MISMATCH" in assert_same(path).findings.counts


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("missing IEA", lambda b: b[: b.rindex(b"IEA*")]),
        ("truncated inside a claim", lambda b: b[: b.index(b"SV1*HC:99213") + 5]),
        ("truncated without SE", lambda b: b[: b.index(b"SE*")]),
        ("segment terminator changed", lambda b: b.replace(b"~", b"!")),
        ("line breaks CR LF", lambda b: b.replace(b"~\n", b"~\r\n")),
        ("no line breaks", lambda b: b.replace(b"~\n", b"~")),
        ("line break as terminator", lambda b: b.replace(b"~\n", b"\n")),
        ("two interchanges", lambda b: b + b),
        ("unknown version", lambda b: b.replace(b"005010X222A1", b"005010X999")),
        ("no HL", lambda b: b.replace(b"HL*", b"NTE*")),
    ],
)
def test_same_summary_on_broken_claim_files(tmp_path: Path, name: str, data: Any) -> None:
    path = tmp_path / "broken.837"
    path.write_bytes(data(CLEAN_837.read_bytes()))
    assert_same(path)


@pytest.mark.parametrize("layout", [b"~", b"~\r\n"], ids=["no line breaks", "CRLF"])
def test_837_layouts_take_the_fast_path(tmp_path: Path, typed_837_reads: list[str], layout: bytes) -> None:
    path = tmp_path / "claims.837"
    path.write_bytes(CLEAN_837.read_bytes().replace(b"~\n", layout))
    assert assert_same(path).claims == 2
    assert not any("CLM*" in text for text in typed_837_reads)


@pytest.mark.parametrize("past", [0, 1, -2000], ids=["at-the-limit", "one-past", "far-below"])
def test_stretch_check_on_a_large_837(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, past: int) -> None:
    """The stretch check's shortcut (a boundary in every window of limit/4 characters) and its exact
    scan agree at the limit: one claim made the longest stretch of a 200-claim 837."""
    from edirecon.parsers import limits

    sys.path.insert(0, str(REPO / "bench"))
    try:
        from generate import generate
    finally:
        sys.path.pop(0)
    path = tmp_path / "claims.837"
    generate("837p", str(path), 200, seed=3)
    data = path.read_bytes()
    clm = data.index(b"CLM*", len(data) // 2)
    at = data.index(b"HI*", clm)
    data = data[:at] + b"NTE*ADD*X~\n" * 30 + data[at:]
    path.write_bytes(data)
    longest = data.count(b"~", clm, data.index(b"~\nHL*", clm) + 1)  # CLM to the next HL
    monkeypatch.setattr(limits, "MAX_STRETCH_SEGMENTS", longest - past if past >= 0 else -past)
    shortcuts: list[bool] = []
    real = limits._markers_everywhere
    monkeypatch.setattr(limits, "_markers_everywhere", lambda *a: shortcuts.append(real(*a)) or shortcuts[-1])
    s = assert_same(path)
    assert ("TRANSACTION_TOO_LARGE" in s.findings.counts) is (past > 0)
    assert shortcuts and all(shortcuts) is (past < 0)  # far below the limit: no exact scan at all
