"""Implementation-guide validation (``parsers.validate``, ``edirecon validate --ack-dir``).

The acknowledgments edirecon writes are read back by pyx12 itself: its X12Reader (envelope
counts and controls) and, for a 999, its full validator against the 005010X231 map.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pytest
import pyx12.params
import pyx12.x12file
import pyx12.x12n_document
from conftest import FIXTURES, REPO, SAMPLE_EDI
from typer.testing import CliRunner

from edirecon import parsers
from edirecon.cli import app
from edirecon.parsers.validate import validate_file

CLEAN_CLAIMS = SAMPLE_EDI / "clean-payment" / "claims.837"
CLEAN_REMIT = SAMPLE_EDI / "clean-payment" / "remit.835"
BAD_COUNTS = SAMPLE_EDI / "broken-file" / "claims-bad-counts.837"
TRUNCATED_REMIT = SAMPLE_EDI / "broken-file" / "remit-truncated.835"
DENTAL = SAMPLE_EDI / "institutional-and-dental" / "claims-dental.837"
SAMPLE_837 = sorted(SAMPLE_EDI.rglob("*.837"))
#: the 837P/837I samples pyx12 has maps for (the dental one has none; broken-file is broken on purpose)
PROFESSIONAL_AND_INSTITUTIONAL = [
    p for p in SAMPLE_837 if p.parent.name != "broken-file" and set(parsers.parse_file(p)[1].transaction_types) <= {"837P", "837I"}
]
REMITS = sorted(SAMPLE_EDI.rglob("*.835"))
BAD = FIXTURES / "bad"
DMG02_NOT_A_DATE = BAD / "dmg02-birth-date-not-a-date.837"


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def raw_segments(path: Path) -> list[list[str]]:
    """The segments of a sample file (``*`` elements, ``~`` terminator), split without edirecon."""
    text = path.read_text(encoding="latin-1")
    return [s.strip().split("*") for s in text.split("~") if s.strip()]


def pyx12_read(path: Path) -> tuple[list[list[str]], list[Any]]:
    """pyx12's X12Reader on a file: its segments as [id, element 1, ...] and its envelope errors."""
    with open(path, encoding="latin-1") as fh:
        reader = pyx12.x12file.X12Reader(fh)
        segments = [[seg.get_seg_id()] + [seg.get_value(f"{i:02d}") or "" for i in range(1, len(seg) + 1)] for seg in reader]
        reader.cleanup()
        return segments, list(reader.err_list)


def pyx12_accepts(path: Path) -> bool:
    """pyx12's full validation of a file against its implementation-guide map."""
    return bool(pyx12.x12n_document.x12n_document(pyx12.params.params(), str(path), io.StringIO(), None, None))


def first(segments: list[list[str]], sid: str) -> list[str]:
    """The first segment with the given id."""
    return next(s for s in segments if s[0] == sid)


def run(*args: str) -> Any:
    """Invoke the app with stdout and stderr captured separately."""
    return CliRunner().invoke(app, list(args))


def copy_with(tmp_path: Path, source: Path, old: str, new: str, name: str | None = None) -> Path:
    """A copy of a sample file in tmp_path with one exact piece of text replaced."""
    text = source.read_text(encoding="latin-1")
    assert text.count(old) == 1, old
    target = tmp_path / (name or source.name)
    target.write_text(text.replace(old, new), encoding="latin-1")
    return target


# ------------------------------------------------------------------------- 999 for 837P/I
def test_the_sample_set_covers_professional_and_institutional() -> None:
    """The 999 tests run on both 837P and 837I samples."""
    kinds = set().union(*(parsers.parse_file(p)[1].transaction_types for p in PROFESSIONAL_AND_INSTITUTIONAL))
    assert kinds == {"837P", "837I"}
    assert len(PROFESSIONAL_AND_INSTITUTIONAL) == 10


@pytest.mark.parametrize("path", PROFESSIONAL_AND_INSTITUTIONAL, ids=_rel)
def test_validate_writes_a_999_that_pyx12_accepts(path: Path, tmp_path: Path, in_repo: Path) -> None:
    """`validate --ack-dir` on a clean 837P/837I writes only <name>.999, a valid 999 accepting every set."""
    acks = tmp_path / "acks"
    result = run("validate", "--ack-dir", str(acks), _rel(path))
    ack = acks / f"{path.name}.999"
    assert result.exit_code == 0
    assert result.stdout == f"{_rel(path)}: wrote {ack}\n{_rel(path)}: valid (0 findings)\n"
    assert result.stderr == ""
    assert sorted(acks.iterdir()) == [ack]
    assert pyx12_accepts(ack)
    segments, errors = pyx12_read(ack)
    assert errors == []
    source = raw_segments(path)
    isa, gs = first(source, "ISA"), first(source, "GS")
    st02 = [s[2] for s in source if s[0] == "ST"]
    ack_isa = first(segments, "ISA")
    assert (ack_isa[6].strip(), ack_isa[8].strip()) == (isa[8].strip(), isa[6].strip())  # sender and receiver swapped
    assert first(segments, "GS")[1] == "FA"
    assert first(segments, "AK1")[1:3] == ["HC", gs[6]]
    assert [s[2] for s in segments if s[0] == "AK2"] == st02
    assert [s[1] for s in segments if s[0] == "IK5"] == ["A"] * len(st02)
    assert first(segments, "AK9")[1:5] == ["A", str(len(st02)), str(len(st02)), str(len(st02))]


def test_validate_file_on_a_clean_837_without_ack_dir(in_repo: Path) -> None:
    """validate_file on a clean 837 with no ack dir: valid, no findings, nothing written."""
    result = validate_file(CLEAN_CLAIMS)
    assert (result.valid, result.findings, result.acknowledgments) == (True, [], [])


def test_one_invocation_writes_one_999_per_input(tmp_path: Path, in_repo: Path) -> None:
    """Two inputs with the same file name (claims.837 in two folders) get two 999s; neither is overwritten."""
    acks = tmp_path / "acks"
    inputs = [SAMPLE_EDI / "clean-payment" / "claims.837", SAMPLE_EDI / "duplicate-payment" / "claims.837"]
    result = run("validate", "--ack-dir", str(acks), *map(_rel, inputs))
    assert result.exit_code == 0
    written = sorted(acks.glob("*.999"))
    assert len(written) == 2, result.stdout
    assert sorted(first(pyx12_read(a)[0], "AK1")[2] for a in written) == sorted(first(raw_segments(p), "GS")[6] for p in inputs)


# --------------------------------------------------------------------- a rejected 837
def test_bad_counts_837_gets_a_rejecting_999_and_positioned_findings(tmp_path: Path, in_repo: Path) -> None:
    """claims-bad-counts.837: IG_* findings at the SE and GE, and a 999 rejecting ST 0801 (SE01) and the group (GE02)."""
    result = validate_file(BAD_COUNTS, tmp_path)
    assert result.valid is False
    found = {(f.code, f.message): f for f in result.findings}
    assert sorted(found) == [
        ("IG_GROUP_ERROR", "AK9 4: GE id=1810 does not match GS id=1801"),
        ("IG_TRANSACTION_ERROR", "IK5 4: SE count of 26 for SE02=0801 is wrong. I count 25"),
    ]
    se = found["IG_TRANSACTION_ERROR", "IK5 4: SE count of 26 for SE02=0801 is wrong. I count 25"].source
    se_offset = BAD_COUNTS.read_bytes().find(b"SE*26*0801~")
    assert (se.segment, se.offset, se.isa13, se.gs06, se.st02) == (27, se_offset, "000001801", "1801", "0801")
    ge = found["IG_GROUP_ERROR", "AK9 4: GE id=1810 does not match GS id=1801"].source
    assert ge.segment == 57
    ack = tmp_path / "claims-bad-counts.837.999"
    assert result.acknowledgments == [ack]
    assert pyx12_accepts(ack)  # a valid 999 that reports the rejection
    segments, errors = pyx12_read(ack)
    assert errors == []
    assert [s[1:3] for s in segments if s[0] in ("AK2", "IK5")] == [
        ["837", "0801"],
        ["R", "4"],
        ["837", "0802"],
        ["A"],
    ]
    assert first(segments, "AK9")[1:6] == ["R", "2", "2", "1", "4"]


def test_ig_findings_on_envelope_segments_have_byte_offsets(tmp_path: Path) -> None:
    """An IG_* finding on a GE (outside any ST/SE) carries the GE's byte offset and envelope ids, not -1."""
    result = validate_file(BAD_COUNTS)
    ge = next(f for f in result.findings if f.code == "IG_GROUP_ERROR").source
    assert (ge.segment, ge.offset, ge.isa13, ge.gs06) == (57, BAD_COUNTS.read_bytes().find(b"GE*2*1810~"), "000001801", "1801")


def test_validate_cli_on_bad_counts_exits_1(tmp_path: Path, in_repo: Path) -> None:
    """`validate` on claims-bad-counts.837 exits 1 and prints its IG_* findings as `file:segment:offset: CODE message`."""
    result = run("validate", _rel(BAD_COUNTS))
    assert result.exit_code == 1
    assert result.stdout == f"{_rel(BAD_COUNTS)}: invalid (2 findings)\n"
    se_offset = BAD_COUNTS.read_bytes().find(b"SE*26*0801~")
    assert f"{_rel(BAD_COUNTS)}:27:{se_offset}: IG_TRANSACTION_ERROR IK5 4: SE count of 26 for SE02=0801 is wrong. I count 25" in (result.stderr.splitlines())
    assert sorted(line.split(" ")[1] for line in result.stderr.splitlines()) == ["IG_GROUP_ERROR", "IG_TRANSACTION_ERROR"]


# ---------------------------------------------------------------- no map, 835, pyx12 failure
def test_dental_837_has_no_map_and_does_not_crash(tmp_path: Path, in_repo: Path) -> None:
    """The 837D sample (005010X224A2, no pyx12 map): one IG_NO_MAP warning, no acknowledgment, exit 0."""
    result = validate_file(DENTAL, tmp_path)
    assert [(f.code, f.severity) for f in result.findings] == [("IG_NO_MAP", parsers.Severity.WARNING)]
    assert "005010X224A2" in result.findings[0].message
    assert (result.valid, result.acknowledgments, list(tmp_path.iterdir())) == (False, [], [])
    cli = run("validate", "--ack-dir", str(tmp_path / "acks"), _rel(DENTAL))
    assert cli.exit_code == 0
    assert [line.split(" ")[1] for line in cli.stderr.splitlines()] == ["IG_NO_MAP"]


@pytest.mark.parametrize("path", REMITS, ids=_rel)
def test_835_without_st03_does_not_crash(path: Path, tmp_path: Path) -> None:
    """An 835 (no ST03) validates without raising; pyx12's trouble is IG_* findings; no acknowledgment for an 835."""
    assert len(raw_segments(path)[2]) == 3  # ST*835*<control>: ST03 absent
    result = validate_file(path, tmp_path)
    assert all(f.code.startswith("IG_") and f.code in parsers.CODES for f in result.findings)
    assert (result.acknowledgments, list(tmp_path.iterdir())) == ([], [])


def test_truncated_835_reports_the_missing_trailers(tmp_path: Path) -> None:
    """remit-truncated.835: pyx12's missing SE, GE and IEA are IG_* findings at the ST, GS and ISA."""
    result = validate_file(TRUNCATED_REMIT, tmp_path)
    assert result.valid is False
    found = {(f.code, f.message, f.source.segment) for f in result.findings}
    assert {
        ("IG_TRANSACTION_ERROR", 'IK5 2: Mandatory segment "Transaction Set Trailer" (SE=36141) missing', 27),
        ("IG_GROUP_ERROR", 'AK9 3: Mandatory segment "Functional Group Trailer" (GE=621540) missing', 2),
        ("IG_INTERCHANGE_ERROR", 'TA1 023: Mandatory segment "Interchange Control Trailer" (IEA=000621540) missing', 1),
    } <= found


def test_clean_835_is_valid(in_repo: Path) -> None:
    """A clean 835 that pyx12 validates as OK is valid: no error finding, `validate` exits 0."""
    result = validate_file(CLEAN_REMIT)
    assert [f for f in result.findings if f.severity is parsers.Severity.ERROR] == []
    assert result.valid is True
    assert run("validate", _rel(CLEAN_REMIT)).exit_code == 0


def test_pyx12_failure_is_a_finding(tmp_path: Path) -> None:
    """When pyx12 itself fails (its 999 writer on an 837 without ST03) it is IG_VALIDATOR_FAILED, and no half 999 is written."""
    no_st03 = tmp_path / "no-st03.837"
    raw = CLEAN_CLAIMS.read_text(encoding="latin-1")
    st = next(line for line in raw.splitlines() if line.startswith("ST*837*"))
    no_st03.write_text(raw.replace(st, "*".join(st.rstrip("~").split("*")[:3]) + "~"), encoding="latin-1")
    result = validate_file(no_st03, tmp_path / "acks")
    assert result.valid is False
    assert [f.code for f in result.findings] == ["IG_VALIDATOR_FAILED"]
    assert result.findings[0].message.startswith("pyx12: ")
    assert not (tmp_path / "acks" / "no-st03.837.999").exists()


NOT_X12 = [BAD / "empty.835", BAD / "whitespace-only.835", BAD / "not-x12-patient-payments.csv", BAD / "nul-bytes-only.835"]


@pytest.mark.parametrize("path", NOT_X12, ids=lambda p: p.name)
def test_a_file_without_x12_gets_the_finding_parse_gives(path: Path, tmp_path: Path) -> None:
    """Regression: an empty file was `0:-1: IG_VALIDATOR_FAILED pyx12: "<_io.StringIO object at 0x…>"`; now EMPTY_FILE/NOT_X12 as from parse."""
    _, summary = parsers.parse_file(path)
    result = validate_file(path, tmp_path / "acks")
    assert result.valid is False
    assert [str(f) for f in result.findings] == [str(f) for f in summary.findings]
    assert [f.code for f in result.findings][0] in ("EMPTY_FILE", "NOT_X12")
    assert all(f.source.offset >= 0 for f in result.findings)
    assert not (tmp_path / "acks").exists() or list((tmp_path / "acks").iterdir()) == []


def test_validate_cli_on_an_empty_file_prints_the_positioned_finding(tmp_path: Path) -> None:
    """`edirecon validate empty.837`: exit 1, the verdict, and one EMPTY_FILE line at offset 0 (no Python object)."""
    empty = tmp_path / "empty.837"
    empty.write_bytes(b"")
    result = CliRunner().invoke(app, ["validate", str(empty)])
    assert (result.exit_code, result.stdout) == (1, f"{empty}: invalid (1 findings)\n")
    assert result.stderr == f"{empty}:0:0: EMPTY_FILE the file is empty (expected an ISA interchange header)\n"


def test_validate_never_repeats_a_patient_value(tmp_path: Path) -> None:
    """Regression: pyx12's message and `(value '19771304')` put a birth date on stderr; the finding names DMG02 and the rule only."""
    result = CliRunner().invoke(app, ["validate", str(DMG02_NOT_A_DATE)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f'{DMG02_NOT_A_DATE}:19:648: IG_ELEMENT_ERROR IK403=8 DMG02: Data element "Subscriber Birth Date" (DMG02) contains an invalid date (…)'
    ]
    # a subscriber's last name with a trailing space: pyx12 quotes the name in its message
    spaced = tmp_path / "nm103-trailing-space.837"
    spaced.write_bytes(DMG02_NOT_A_DATE.read_bytes().replace(b"NM1*IL*1*SMITH*JOHN", b"NM1*IL*1*SMITH *JOHN"))
    result = CliRunner().invoke(app, ["validate", str(spaced)])
    assert "IK403=6 NM103" in result.stderr
    assert "SMITH" not in result.stderr and "19771304" not in result.stderr


def test_utf8_bom_does_not_stop_pyx12(tmp_path: Path) -> None:
    """A UTF-8 byte order mark (common in real files) is taken off before pyx12 reads the file."""
    bom = tmp_path / "bom.837"
    bom.write_bytes(b"\xef\xbb\xbf" + CLEAN_CLAIMS.read_bytes())
    result = validate_file(bom, tmp_path / "acks")
    assert result.findings == []
    assert result.valid is True
    assert (tmp_path / "acks" / "bom.837.999").exists()


# ---------------------------------------------------------------------------------- TA1
def _ta1(path: Path) -> tuple[list[list[str]], str]:
    """The segments of a TA1 file read by pyx12 (which must find no envelope error), and its raw ISA."""
    segments, errors = pyx12_read(path)
    assert errors == []
    assert [s[0] for s in segments] == ["ISA", "TA1", "IEA"]
    raw_isa = path.read_text(encoding="latin-1").split("~")[0]
    assert len(raw_isa) == 105  # ISA is fixed-width: 106 bytes with its terminator
    isa, iea = segments[0], segments[2]
    assert iea[1:3] == ["0", isa[13]]  # no functional groups; IEA02 = its own ISA13
    return segments, raw_isa


@pytest.mark.parametrize(
    ("old", "new", "note"),
    [("IEA*1*000001101~", "IEA*1*000009999~", "001"), ("IEA*1*000001101~", "IEA*2*000001101~", "021")],
    ids=["IEA02-differs", "IEA01-wrong-count"],
)
def test_broken_interchange_trailer_gets_a_rejecting_ta1(tmp_path: Path, old: str, new: str, note: str) -> None:
    """A copy of a sample 837 with a bad IEA gets <name>.ta1 with TA104=R and the TA105 note code of the error."""
    path = copy_with(tmp_path, CLEAN_CLAIMS, old, new)
    acks = tmp_path / "acks"
    acks.mkdir()
    result = validate_file(path, acks)
    ta1_path = acks / "claims.837.ta1"
    assert ta1_path in result.acknowledgments
    segments, _ = _ta1(ta1_path)
    isa = first(raw_segments(CLEAN_CLAIMS), "ISA")
    assert segments[1][1:] == [isa[13], isa[9], isa[10], "R", note]
    assert (segments[0][6].strip(), segments[0][8].strip()) == (isa[8].strip(), isa[6].strip())
    assert any(f.code == "IG_INTERCHANGE_ERROR" and f.message.startswith(f"TA1 {note}: ") for f in result.findings)


def test_ta1_requested_by_isa14_is_written_and_accepts(tmp_path: Path, in_repo: Path) -> None:
    """ISA14=1 on a clean 837: `validate` writes a .999 and a .ta1 with TA104=A, TA105=000, and exits 0."""
    path = copy_with(tmp_path, CLEAN_CLAIMS, "*000001101*0*P*:~", "*000001101*1*P*:~")
    acks = tmp_path / "acks"
    result = run("validate", "--ack-dir", str(acks), str(path))
    assert result.exit_code == 0
    assert result.stdout == f"{path}: wrote {acks / 'claims.837.999'}\n{path}: wrote {acks / 'claims.837.ta1'}\n{path}: valid (0 findings)\n"
    segments, _ = _ta1(acks / "claims.837.ta1")
    assert segments[1][1:] == ["000001101", "260213", "1015", "A", "000"]
    assert pyx12_accepts(acks / "claims.837.999")


def test_no_ta1_without_request_or_envelope_error(tmp_path: Path) -> None:
    """A clean 837 with ISA14=0 gets a 999 only."""
    result = validate_file(CLEAN_CLAIMS, tmp_path)
    assert result.acknowledgments == [tmp_path / "claims.837.999"]
    assert sorted(tmp_path.iterdir()) == [tmp_path / "claims.837.999"]


def test_truncated_837_gets_a_premature_end_of_file_ta1(tmp_path: Path) -> None:
    """An 837 cut off before SE/GE/IEA gets a TA1 R with TA105 023 (premature end of file), as pyx12 reports it."""
    text = CLEAN_CLAIMS.read_text(encoding="latin-1")
    path = tmp_path / "claims.837"
    path.write_text(text[: text.index("CLM*RFM2601002")], encoding="latin-1")
    result = validate_file(path, tmp_path)
    assert any(f.code == "IG_INTERCHANGE_ERROR" and f.message.startswith("TA1 023: ") for f in result.findings)
    segments, _ = _ta1(tmp_path / "claims.837.ta1")
    assert segments[1][4:] == ["R", "023"]


def test_wrong_segment_terminator_gets_a_rejecting_ta1(tmp_path: Path) -> None:
    """An 837 whose ISA declares a terminator it never uses gets a TA1 R with TA105 004 (segment terminator invalid)."""
    path = copy_with(tmp_path, CLEAN_CLAIMS, "*0*P*:~\n", "*0*P*:!\n")
    acks = tmp_path / "acks"
    acks.mkdir()
    result = validate_file(path, acks)
    assert result.valid is False
    assert acks / "claims.837.ta1" in result.acknowledgments
    segments, _ = _ta1(acks / "claims.837.ta1")
    assert segments[1][4:] == ["R", "004"]


def test_validate_accepts_a_folder_of_copies(tmp_path: Path) -> None:
    """`validate` on a folder validates every file in it (sorted) and reports each one."""
    folder = tmp_path / "in"
    folder.mkdir()
    for p in PROFESSIONAL_AND_INSTITUTIONAL[:2]:
        shutil.copy(p, folder / f"{p.parent.name}-{p.name}")
    result = run("validate", str(folder))
    assert result.exit_code == 0
    names = sorted(f"{p.parent.name}-{p.name}" for p in PROFESSIONAL_AND_INSTITUTIONAL[:2])
    assert result.stdout == "".join(f"{folder / n}: valid (0 findings)\n" for n in names)


# ------------------------------------------------------------------------ colliding delimiters
def test_colliding_delimiters_get_a_finding_and_a_rejecting_ta1(tmp_path: Path) -> None:
    """An 837 with ISA11 = ISA16 = ':' is invalid with a DELIMITER_COLLISION finding at the ISA, and its TA1 rejects it with 027."""
    path = FIXTURES / "bad" / "isa11-equals-isa16.837"
    acks = tmp_path / "acks"
    acks.mkdir()
    result = validate_file(path, acks)
    assert result.valid is False
    collision = [f for f in result.findings if f.code == "DELIMITER_COLLISION"]
    assert [(f.source.segment, f.source.offset, f.source.isa13) for f in collision] == [(1, 0, "000001501")]
    assert "ISA16" in collision[0].message and "ISA11" in collision[0].message
    segments, _ = _ta1(acks / "isa11-equals-isa16.837.ta1")
    assert segments[1][1:] == ["000001501", "260610", "0845", "R", "027"]


def test_validate_cli_on_terminator_equal_to_element_separator_is_a_finding_not_a_traceback(in_repo: Path) -> None:
    """`validate` on an 835 whose first interchange ends segments with '*' exits 1 naming DELIMITER_COLLISION, no traceback."""
    path = FIXTURES / "bad" / "terminator-equals-element-separator-then-clean-interchange.835"
    result = run("validate", _rel(path))
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert result.stdout.startswith(f"{_rel(path)}: invalid (")
    assert result.stderr.splitlines()[0] == (
        f"{_rel(path)}:1:0: DELIMITER_COLLISION interchange ISA13=000620412: the segment terminator is '*', the same character "
        "as the element separator; its segments cannot be told apart: skipped to the next ISA header or end of file"
    )
    assert "Traceback" not in result.stdout + result.stderr
