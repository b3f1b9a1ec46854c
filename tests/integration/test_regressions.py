"""Regression tests, one per bug fixed after it was found."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import SAMPLE_EDI

from edirecon import parsers
from edirecon.parsers.serialize import record_dict


def _segment_numbers(data: bytes) -> dict[int, bytes]:
    """Independently: 1-based segment number -> the segment's first bytes (blank segments not counted)."""
    text = data.decode("latin-1")
    term = text[105]
    out: dict[int, bytes] = {}
    number = 0
    for part in text.split(term):
        seg = part.strip(" \t\r\n")
        if seg:
            number += 1
            out[number] = seg[:14].encode("latin-1")
    return out


@pytest.mark.parametrize("block", [40, 97, 256, 1 << 20])
def test_segment_numbers_stay_right_after_a_skipped_segment_at_a_block_end(block: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An invalid segment skipped at the end of a tokenizer block does not shift the numbers of later segments.

    (Bug: the careful path handed back only the last *yielded* number, so a block ending in a
    skipped segment made every later segment number one too small.)
    """
    raw = (SAMPLE_EDI / "clean-payment" / "remit.835").read_bytes()
    # indentation makes every block take the careful path; 'nx' is a segment id it must skip
    broken = raw.replace(b"~\nLX*1~", b"~\n  nx*BAD~\n  LX*1~").replace(b"~\nCLP*", b"~\n CLP*")
    se = re.search(rb"~\nSE\*(\d+)\*", broken)
    assert se is not None  # the skipped segment still counts in SE01
    broken = broken[: se.start(1)] + str(int(se.group(1)) + 1).encode() + broken[se.end(1) :]
    path = tmp_path / "indented-with-bad-id.835"
    path.write_bytes(broken)
    monkeypatch.setattr("edirecon.parsers.x12.TOKEN_BLOCK", block)
    records, summary = parsers.parse_file(path)
    numbers = _segment_numbers(broken)
    assert [f.code for f in summary.findings] == ["INVALID_SEGMENT_ID"]
    payments = [r for r in records if isinstance(r, parsers.ClaimPayment)]
    assert len(payments) == 2
    for p in payments:
        assert p.source is not None and numbers[p.source.segment].startswith(b"CLP*" + p.patient_control_number.encode())
        for s in p.services:
            assert s.source is not None and numbers[s.source.segment].startswith(b"SVC*")


def test_a_file_given_twice_is_ingested_once_by_parallel_workers(tmp_path: Path, in_repo: Path) -> None:
    """Regression: the same path named twice (or named and inside a folder given) went to two pool
    processes at once, which both resumed it and collided on its transaction sets."""
    from datetime import date

    from edirecon.engine.config import Config
    from edirecon.engine.run import run

    remit = Path("sample_edi/duplicate-payment")
    files = sorted(p for p in remit.iterdir() if p.suffix in (".835", ".837"))
    result = run([remit, *files, *files], f"sqlite:///{tmp_path}/s.db", tmp_path / "out", date(2026, 11, 27), Config(), workers=3)
    assert result.report.files_seen == result.report.files_ingested == len(files)
    assert [r["reason"] for r in result.outputs["refund_requests"]] == ["DUPLICATE_PAYMENT"]


def test_one_remittance_in_many_files_ingested_side_by_side_on_postgresql(tmp_path: Path, in_repo: Path, pg_url: str) -> None:
    """Regression: pool processes on PostgreSQL checked for a known file or remittance, then
    inserted, and a concurrent twin failed on the unique key instead of being a DUPLICATE_FILE."""
    from datetime import date

    import sqlalchemy

    from edirecon.engine.config import Config
    from edirecon.engine.run import run

    original = Path("sample_edi/duplicate-payment/remit-1.835").read_text(encoding="latin-1")
    isa13 = original.split("*")[13]
    for i in range(6):  # the same remittance (payer + TRN02) in six files that differ in ISA13
        (tmp_path / f"resent-{i}.835").write_text(original.replace(isa13, f"{900000000 + i:09d}"), encoding="latin-1")
    for i in range(3):  # and the same bytes three times
        (tmp_path / f"copy-{i}.835").write_text(original, encoding="latin-1")
    inputs = sorted(tmp_path.glob("*.835"))
    result = run(inputs, pg_url, tmp_path / "out", date(2026, 11, 27), Config(), workers=4)
    assert result.report.files_seen == 9
    engine = sqlalchemy.create_engine(pg_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM remittances").scalar_one() == 1
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM files").scalar_one() == 7
    engine.dispose()
    duplicates = [x for x in result.outputs["exceptions"] if x["kind"] == "DUPLICATE_FILE"]
    assert len(duplicates) == 8  # five resent remittances and two copies of the same bytes


# -- rule 5 (docs/rules.md) / issue 12: an unbilled payer, an appeal, a void re-billed ----------------------------


def _run(folder: Path, url: str, out: Path) -> dict[str, list[dict[str, object]]]:
    from datetime import date

    from edirecon.engine.config import Config
    from edirecon.engine.run import run

    return run([folder], url, out, date(2026, 11, 27), Config()).outputs  # type: ignore[return-value]


def test_an_unbilled_payer_refund_says_why_in_its_evidence(tmp_path: Path) -> None:
    """The whole payment of a payer no claim names is a PAYER_OVERPAYMENT whose evidence says the payer was not billed."""
    import json

    from conftest import FIXTURES

    _run(FIXTURES / "engine" / "unbilled-payer-paid-as-primary", f"sqlite:///{tmp_path}/s.db", tmp_path / "out")
    rows = [json.loads(line) for line in (tmp_path / "out" / "refund_requests.jsonl").read_text(encoding="utf-8").splitlines()]
    unbilled = [r for r in rows if r["patient_control_number"] == "RFM2801001"]
    assert [(r["reason"], r["payer_id"], r["amount"]) for r in unbilled] == [("PAYER_OVERPAYMENT", "64157", "96.00")]
    assert [(ev["role"], ev["payer_claim_control_number"], ev["paid"]) for ev in unbilled[0]["evidence"]] == [("payer not billed", "HSA26279004417", "96.00")]
    assert all("role" not in ev for r in rows if r["patient_control_number"] != "RFM2801001" for ev in r["evidence"])


def test_claims_stored_before_other_payers_were_kept_are_not_judged_unbilled(tmp_path: Path) -> None:
    """A store upgraded from the revision before 0006 has claims without their 2330B payers: the unbilled-payer rule leaves them as before."""
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from conftest import FIXTURES
    from sqlalchemy import text

    from edirecon.engine.store.connection import MIGRATIONS, Store

    url = f"sqlite:///{tmp_path}/s.db"
    folder = FIXTURES / "engine" / "unbilled-payer-paid-as-primary"
    _run(folder, url, tmp_path / "out-1")
    store = Store(url)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:  # back to the schema before revision 0006, with its claims in it
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006-1")
        assert "other_payer_ids" not in {r[1] for r in conn.execute(text("PRAGMA table_info(claims)"))}
    store.dispose()
    outputs = _run(folder, url, tmp_path / "out-2")  # upgrades the store; every file is already ingested
    with Store(url).engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM claims WHERE other_payer_ids IS NULL")).scalar() == 3
    got = sorted((r["patient_control_number"], r["reason"], r["payer_id"], str(r["amount"])) for r in outputs["refund_requests"])
    assert got == [
        ("RFM2801001", "COB_OVERPAYMENT", "64157", "69.00"),
        ("RFM2801002", "COB_OVERPAYMENT", "77099", "22.80"),
        ("RFM2801003", "COB_OVERPAYMENT", "64157", "43.00"),
    ]


def test_a_crossover_carrier_named_by_nm1_tt_is_billed_and_older_payments_are_not_judged(tmp_path: Path) -> None:
    """The Medigap plan Medicare names in NM1*TT for RFM2730001 is billed (no refund); in a store upgraded from revision 0006, whose
    claim payments have no NM1*TT kept, the unbilled-payer rule judges neither encounter."""
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from conftest import FIXTURES
    from sqlalchemy import text

    from edirecon.engine.store.connection import MIGRATIONS, Store

    url = f"sqlite:///{tmp_path}/s.db"
    folder = FIXTURES / "engine" / "crossover-carrier-named-by-nm1-tt"
    outputs = _run(folder, url, tmp_path / "out-1")
    assert [(r["patient_control_number"], r["reason"], r["payer_id"], str(r["amount"])) for r in outputs["refund_requests"]] == [
        ("RFM2730002", "PAYER_OVERPAYMENT", "61190", "28.00")
    ]
    store = Store(url)
    with store.engine.connect() as conn:
        kept = conn.execute(
            text("SELECT patient_control_number, payer_claim_control_number, crossover_carrier_id FROM claim_payments ORDER BY payer_claim_control_number")
        ).all()
    assert [tuple(r) for r in kept] == [
        ("RFM2730001", "MCR26280130041", "61190"),
        ("RFM2730002", "MCR26280130042", ""),
        ("RFM2730001", "PSM2629400815", ""),
        ("RFM2730002", "PSM2629400816", ""),
    ]
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:  # back to the schema of revision 0006, with its claim payments in it
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
        assert "crossover_carrier_id" not in {r[1] for r in conn.execute(text("PRAGMA table_info(claim_payments)"))}
    store.dispose()
    outputs = _run(folder, url, tmp_path / "out-2")  # upgrades the store; every file is already ingested
    with Store(url).engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM claim_payments WHERE crossover_carrier_id IS NULL")).scalar() == 4
    assert outputs["refund_requests"] == []  # the Medigap's payments count (rule 5 before the store kept NM1*TT: not judged)


def test_a_void_rebilled_is_one_refund_whichever_payment_came_first(tmp_path: Path) -> None:
    """The re-bill paid before the voided claim's payment still gives one PAYER_OVERPAYMENT on the voided encounter, no duplicate."""
    import shutil

    from conftest import FIXTURES

    folder = tmp_path / "in"
    shutil.copytree(FIXTURES / "engine" / "void-rebilled-under-new-claim-number", folder)
    for name, paid_on in (("remit-1.835", "20260911"), ("remit-2.835", "20260814")):  # BPR16: the re-bill is now paid first
        path = folder / name
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"(BPR\*[^~]*\*)\d{8}~", rf"\g<1>{paid_on}~", text, count=1), encoding="utf-8")
    outputs = _run(folder, f"sqlite:///{tmp_path}/s.db", tmp_path / "out")
    assert [(r["reason"], r["patient_control_number"], r["payer_claim_control_number"], str(r["amount"])) for r in outputs["refund_requests"]] == [
        ("PAYER_OVERPAYMENT", "RFM2803001", "BRH2620700418", "120.00")
    ]
    assert [(b["patient_control_number"], str(b["balance"])) for b in outputs["credit_balances"]] == [("RFM2803001", "-120.00")]


def test_two_identical_lines_of_one_claim_payment_each_write_off(tmp_path: Path) -> None:
    """Two billed lines alike (same procedure and date, no REF*6R) paid in one claim payment: both write off their CO-45, neither is a duplicate."""
    from conftest import FIXTURES

    source = FIXTURES / "engine" / "line-denied-then-paid-on-appeal"
    folder = tmp_path / "in"
    folder.mkdir()
    claims = (source / "claims.837").read_text(encoding="utf-8")
    claims = claims.replace("CLM*RFM2802001*240.00", "CLM*RFM2802001*360.00").replace("SV1*HC:93000*60.00", "SV1*HC:99214*180.00")
    (folder / "claims.837").write_text(re.sub(r"REF\*6R\*RFM2802001L\d", "NTE*ADD*SECOND VISIT SAME DAY", claims), encoding="utf-8")
    remit = (source / "remit-denial.835").read_text(encoding="utf-8")
    remit = remit.replace("BPR*I*104.00", "BPR*I*208.00").replace("CLP*RFM2802001*1*240.00*104.00*26.00", "CLP*RFM2802001*1*360.00*208.00*52.00")
    remit = remit.replace("SVC*HC:93000*60.00*0~", "SVC*HC:99214*180.00*104.00~").replace("CAS*CO*50*60.00~", "CAS*CO*45*50.00~")
    remit = remit.replace("AMT*B6*0~", "AMT*B6*130.00~").replace("LQ*HE*N115~", "CAS*PR*2*26.00~")
    (folder / "remit.835").write_text(re.sub(r"REF\*6R\*RFM2802001L\d", "REF*LU*11", remit), encoding="utf-8")
    outputs = _run(folder, f"sqlite:///{tmp_path}/s.db", tmp_path / "out")
    assert [r["kind"] for r in outputs["exceptions"]] == []
    assert [(str(b["write_offs"]), str(b["balance"])) for b in outputs["credit_balances"]] == [("100.00", "52.00")]
    assert list(outputs["refund_requests"]) == []


def test_bytes_where_x12_was_expected_are_described_not_repeated(tmp_path: Path) -> None:
    """A patient list handed in as an 835, and a name where a segment id was expected (a lost
    terminator), give NOT_X12 / SEGMENT_OUTSIDE_TRANSACTION / INVALID_SEGMENT_ID findings that
    never repeat the name (issue 13, item 11): findings end up in logs."""
    listing = tmp_path / "patients.835"
    listing.write_bytes(b"GARCIA,MARIA,1977-04-13,BRH555077104\n")
    isa = b"ISA*00*          *00*          *ZZ*SUBMITTER      *ZZ*RECEIVER       *260101*1200*^*00501*000000001*0*P*:~"
    lost = tmp_path / "lost-terminator.835"
    lost.write_bytes(isa + b"GARCIA*MARIA~garcia*maria~IEA*0*000000001~")
    messages = []
    for path in (listing, lost):
        _, summary = parsers.parse_file(path)
        messages += [(f.code, f.message) for f in summary.findings]
    codes = {code for code, _ in messages}
    assert "NOT_X12" in codes and "SEGMENT_OUTSIDE_TRANSACTION" in codes
    for _, message in messages:
        assert "GARCIA" not in message.upper() and "MARIA" not in message.upper(), message
    assert ("NOT_X12", "expected 'ISA' at the start of the file, found other text") in messages


def test_a_72_smaller_than_the_reversal_it_offsets_leaves_the_rest_a_recoupment(tmp_path: Path) -> None:
    """refund-check-booked-as-claim-reversal with `72:5011*-100.00` (BPR02 39.50): 100.00 of the 155.50 reversal is the check's booking, 55.50 is a CLAIM_REVERSAL."""
    import shutil

    from conftest import FIXTURES

    folder = tmp_path / "in"
    shutil.copytree(FIXTURES / "engine" / "refund-check-booked-as-claim-reversal", folder)
    remit = folder / "remit-3.835"
    text = remit.read_text(encoding="ascii")
    for old, new in (("BPR*I*95.00*", "BPR*I*39.50*"), ("72:5011*-155.50", "72:5011*-100.00")):
        assert text.count(old) == 1
        text = text.replace(old, new)
    remit.write_text(text, encoding="ascii")
    outputs = _run(folder, f"sqlite:///{tmp_path}/s.db", tmp_path / "out")
    (refund,) = outputs["refund_requests"]
    assert (refund["patient_control_number"], str(refund["amount"]), refund["status"]) == ("RFM2728001", "155.50", "acknowledged")
    assert [(r["kind"], r["trace_number"], str(r["amount"]), r["refund_id"]) for r in outputs["recoupments"]] == [
        ("CLAIM_REVERSAL", "0009272803", "55.50", refund["refund_id"])
    ]
    assert {b["patient_control_number"]: str(b["balance"]) for b in outputs["credit_balances"]}["RFM2728001"] == "25.00"
    assert outputs["exceptions"] == []


def test_a_name_where_a_segment_was_cut_short_is_described_not_repeated(tmp_path: Path) -> None:
    """A file that ends inside a name (no terminator) says which kind of text it ends in, never the
    name itself (issue 13, item 11); a real segment id is still quoted (the broken-file golden)."""
    isa = b"ISA*00*          *00*          *ZZ*SUBMITTER      *ZZ*RECEIVER       *260101*1200*^*00501*000000001*0*P*:~"
    cut = tmp_path / "cut-in-a-name.835"
    cut.write_bytes(isa + b"GS*HP*SUBMITTER*RECEIVER*20260101*1200*1*X*005010X221A1~GARCIA MARIA")
    _, summary = parsers.parse_file(cut)
    messages = [f.message for f in summary.findings]
    assert any(f.code == "MISSING_SEGMENT_TERMINATOR" for f in summary.findings), messages
    assert all("GARCIA" not in m and "GAR" not in m for m in messages), messages


def _colliding_copies(glue: bytes) -> bytes:
    """remit-truncated.835 with a '*' inserted into ISA13, so the byte after ISA16 (the segment
    terminator) is '*', the element separator, repeated past the reader's 64 KiB look-ahead with
    ``glue`` between the copies (each copy ends inside a segment: "CAS*CO*4")."""
    raw = (SAMPLE_EDI / "broken-file" / "remit-truncated.835").read_bytes()
    assert raw.endswith(b"CAS*CO*4")
    one = raw[:98] + b"*" + raw[98:]
    return glue.join([one] * 33)


@pytest.mark.parametrize("size", [1, 7, 4096, 1 << 20])
@pytest.mark.parametrize("glue", [b"", b"\n"], ids=["glued-to-data", "after-a-line-break"])
def test_skipping_an_unreadable_interchange_finds_the_same_next_isa_at_any_chunk_size(glue: bytes, size: int, tmp_path: Path) -> None:
    """An interchange whose terminator is its element separator is skipped to the next ISA header;
    which ISA counts as a header does not depend on where the chunks end.

    (Bug, found by tests/test_properties.py: "ISA" glued to data, as in "CAS*CO*4ISA*00*", is no
    header (NEXT_ISA's look-behind), but when a chunk ended just before it the '4' was already
    dropped from the buffer: read 1 byte at a time the file gave 33 DELIMITER_COLLISION findings,
    read whole it gave 1.  The reader without a collision reads such a file as one interchange too.)
    """
    data = _colliding_copies(glue)
    path = tmp_path / "colliding.835"
    path.write_bytes(data)
    reader = parsers.X12Reader(path, chunk_size=size)
    assert list(reader) == []
    copies = 1 if glue == b"" else 33
    assert [(f.code, f.source.offset) for f in reader.findings] == [("DELIMITER_COLLISION", k * (len(data) + len(glue)) // 33) for k in range(copies)]
    assert reader.interchanges == copies
    # each skipped interchange: its ISA, every '*' after the ISA header's 17 ends a segment, and the
    # cut "4" at its end is one more
    assert reader.segment_count == copies * (data.count(b"*") // copies - 17 + 2)


def _with_se01_recounted(data: bytes) -> bytes:
    """An 837 of one transaction set whose SE01 is set to its real segment count (ST..SE)."""
    segments = [s.strip() for s in data.split(b"~")]
    st, se = next(i for i, s in enumerate(segments) if s.startswith(b"ST*")), next(i for i, s in enumerate(segments) if s.startswith(b"SE*"))
    return re.sub(rb"SE\*\d+\*", b"SE*%d*" % (se - st + 1), data, count=1)


_CLAIM_3 = b"CLM*RFM2601003*140.00***11:B:1*Y*A*Y*Y~\nHI*ABK:J069~\nLX*1~\nSV1*HC:99213*140.00*UN*1***1~\nDTP*472*D8*20260212~\n"


@pytest.mark.parametrize(
    ("before", "inserted"),
    [
        (b"LX*1~\nSV1*HC:99214", b"LX*1~\n"),  # a duplicated LX (the property test's example): the next LX ends it
        (b"HL*3*1*22*1~", b"LX*3~\nDTP*472*D8*20260210~\n"),  # the next HL ends it
        (b"SE*", b"LX*2~\nREF*6R*RFM2601002L2~\n" + _CLAIM_3),  # the next CLM ends it
        (b"SE*", b"LX*2~\n"),  # the end of the transaction set ends it
    ],
    ids=["next-lx", "next-hl", "next-clm", "end-of-set"],
)
def test_an_lx_without_sv1_is_a_finding_not_a_service_line(before: bytes, inserted: bytes, tmp_path: Path) -> None:
    """An LX (loop 2400) with no SV1/SV2/SV3 gives a MISSING_SEGMENT finding at the LX and no service line; the good lines stay.

    (Bug, found by tests/test_properties.py: claims-bad-counts.837 with its 'LX*1' duplicated read
    as a claim of 3 service lines out of 2 SV1 segments; the empty line had no procedure nor charge.)
    """
    raw = (SAMPLE_EDI / "clean-payment" / "claims.837").read_bytes()
    good, _ = parsers.parse_file(SAMPLE_EDI / "clean-payment" / "claims.837")
    at = raw.index(before)
    data = _with_se01_recounted(raw[:at] + inserted + raw[at:])
    path = tmp_path / "lx-without-sv1.837"
    path.write_bytes(data)
    records, summary = parsers.parse_file(path)
    assert [(f.code, f.severity.value, f.source.offset, f.source.loop) for f in summary.findings] == [("MISSING_SEGMENT", "error", at, "2400")]
    assert data.startswith(b"LX*", summary.findings[0].source.offset)
    claims = [r for r in records if isinstance(r, parsers.Claim)]
    assert all(c.trusted for c in claims)
    lines = [[(line.number, line.kind, line.procedure_code, line.charge) for line in c.lines] for c in claims]
    good_lines = [[(line.number, line.kind, line.procedure_code, line.charge) for line in c.lines] for c in good if isinstance(c, parsers.Claim)]
    if b"CLM*" in inserted:
        good_lines.append([("1", "SV1", "99213", Decimal("140.00"))])
    assert lines == good_lines
    assert summary.service_lines == data.count(b"SV1*")


def _without_sources(value: object) -> object:
    """A record's JSON form without its positions (they move when bytes are removed before them)."""
    if isinstance(value, dict):
        return {k: _without_sources(v) for k, v in value.items() if k != "source" and not k.endswith("_source")}
    if isinstance(value, list):
        return [_without_sources(v) for v in value]
    return value


def _claims_without_line_at(claims: list[parsers.Record], offset: int) -> list[object]:
    """The claims' JSON forms, positions left out, without the service line whose LX is at ``offset``."""
    out = []
    for c in claims:
        assert isinstance(c, parsers.Claim)
        d = record_dict(c)
        lines = d["lines"]
        assert isinstance(lines, list)
        d["lines"] = [ld for line, ld in zip(c.lines, lines, strict=True) if line.source is None or line.source.offset != offset]
        out.append(_without_sources(d))
    return out


@pytest.mark.parametrize(
    ("sample", "lx"),
    [
        # a second service segment in one 2400 loop (its own LX dropped): it overwrote the first line
        ("clean-payment/claims.837", b"LX*2~\n"),
        ("institutional-and-dental/claims-institutional.837", b"LX*3~\n"),
        ("institutional-and-dental/claims-dental.837", b"LX*2~\n"),
        ("secondary-overpaid/claims-secondary.837", b"LX*2~\n"),  # after line 1's 2430 (SVD, CAS, DTP*573)
        # a claim's first service segment with no LX before it: it made a line numbered ''
        ("clean-payment/claims.837", b"LX*1~\n"),
        ("institutional-and-dental/claims-institutional.837", b"LX*1~\n"),  # after a 2310 NM1*71
        ("secondary-overpaid/claims-secondary.837", b"LX*1~\n"),  # after 2320/2330: its SVD and CAS
    ],
    ids=["sv1-second", "sv2-second", "sv3-second", "sv1-second-after-2430", "sv1-first", "sv2-first", "sv1-first-after-2330"],
)
def test_a_service_segment_without_its_own_lx_is_a_finding_and_no_line_is_lost_or_invented(sample: str, lx: bytes, tmp_path: Path) -> None:
    """An SV1/SV2/SV3 with no LX of its own gives MISSING_SEGMENT at that segment; its loop is not
    read, and every other line (the one before it in full: charge, DTP*472, REF*6R, 2430) is kept.

    (Bugs: 'LX*1~SV1*A~SV1*B~' read B over A, so line 1's charge was lost without a finding, and
    B's DTP/REF/SVD landed on it too; an SV1 with no LX before it made a line with an empty line
    number, and no finding.)
    """
    raw = (SAMPLE_EDI / sample).read_bytes()
    good, good_summary = parsers.parse_file(SAMPLE_EDI / sample)
    at = raw.index(lx)
    data = _with_se01_recounted(raw[:at] + raw[at + len(lx) :])
    path = tmp_path / "service-segment-without-lx.837"
    path.write_bytes(data)
    records, summary = parsers.parse_file(path)
    assert [(f.code, f.severity.value, f.source.offset, f.source.loop) for f in summary.findings] == [("MISSING_SEGMENT", "error", at, "2400")]
    kind = data[at : at + 3].decode()
    assert kind in ("SV1", "SV2", "SV3") and "LX" in summary.findings[0].message and kind in summary.findings[0].message
    assert all(r.trusted for r in records)
    assert _claims_without_line_at(records, -1) == _claims_without_line_at(good, at)
    assert summary.service_lines == good_summary.service_lines - 1


def test_a_repeated_service_segment_is_read_once(tmp_path: Path) -> None:
    """'SV1*A~SV1*A~SV1*A~DTP~REF~' in one 2400 loop: one line with A's charge, a MISSING_SEGMENT at
    each copy. What follows the last copy is that copy's loop, so it is not read onto line 1 either
    (a wrong date or REF*6R on a line would be worse than none; the findings point at the copies)."""
    raw = (SAMPLE_EDI / "clean-payment" / "claims.837").read_bytes()
    good, _ = parsers.parse_file(SAMPLE_EDI / "clean-payment" / "claims.837")
    sv1 = b"SV1*HC:99214*180.00*UN*1***1:2~\n"
    first = raw.index(sv1)
    data = _with_se01_recounted(raw[:first] + sv1 * 3 + raw[first + len(sv1) :])
    path = tmp_path / "sv1-repeated.837"
    path.write_bytes(data)
    records, summary = parsers.parse_file(path)
    copies = [first + len(sv1), first + 2 * len(sv1)]
    assert [(f.code, f.source.offset) for f in summary.findings] == [("MISSING_SEGMENT", at) for at in copies]
    claim, good_claim = records[0], good[0]
    assert isinstance(claim, parsers.Claim) and isinstance(good_claim, parsers.Claim)
    assert [(line.number, line.procedure_code, line.charge, line.service_date, line.line_item_control_number) for line in claim.lines] == [
        ("1", "99214", Decimal("180.00"), None, ""),
        ("2", "36415", Decimal("25.00"), good_claim.lines[1].service_date, "RFM2601001L2"),
    ]
    assert sum((line.charge or Decimal(0) for line in claim.lines), Decimal(0)) == claim.total_charge == Decimal("205.00")
    assert _claims_without_line_at(records[1:], -1) == _claims_without_line_at(good[1:], -1)
