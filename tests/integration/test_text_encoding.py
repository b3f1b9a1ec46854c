"""Issue 12: names outside ASCII, in UTF-8 and in Windows-1252, read right and carried into every
output (CSV, JSON Lines, the patient notice and the CMS-838 PDF, read back with pypdf).

The scenarios are tests/fixtures/engine/utf8-names and windows-1252-names (see their READMEs):
two sample scenarios side by side with the patients' names re-encoded.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, SAMPLE_EDI
from pypdf import PdfReader
from typer.testing import CliRunner

from edirecon import parsers
from edirecon.cli import app
from edirecon.engine.reports.fonts import find_fonts

UTF8 = FIXTURES / "engine" / "utf8-names"
CP1252 = FIXTURES / "engine" / "windows-1252-names"
CONFIG = FIXTURES / "reports" / "config.toml"


def invoke(*args: Any) -> Any:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def pdf_text(path: Path) -> str:
    """The text of a PDF with white space collapsed to single spaces."""
    return " ".join(" ".join(page.extract_text() for page in PdfReader(path).pages).split())


def names_in(path: Path) -> dict[str, str]:
    """patient_control_number -> patient_name of a CSV output."""
    with open(path, newline="", encoding="utf-8") as fh:
        return {r["patient_control_number"]: r["patient_name"] for r in csv.DictReader(fh)}


def run_and_report(folder: Path, root: Path) -> tuple[Path, Path, Any]:
    """`edirecon run` the scenario, then `edirecon report` for 2026Q4: (outputs, report, report result)."""
    db = f"sqlite:///{root / 'store.db'}"
    invoke("run", folder, "--db", db, "--out", root / "out", "--as-of", "2026-11-27", "--workers", "1")
    result = invoke("report", "--db", db, "--out", root / "report", "--as-of", "2026-11-27", "--quarter", "2026Q4", "--config", CONFIG)
    return root / "out", root / "report", result


def has_cjk_font() -> bool:
    """Whether a font on this machine has the glyphs of 王小明."""
    from fontTools.ttLib import TTFont

    for path in find_fonts().fallbacks:
        try:
            cmap = TTFont(path, fontNumber=0, lazy=True).getBestCmap()
        except Exception:
            continue
        if all(ord(c) in cmap for c in "王小明"):
            return True
    return False


def test_utf8_names_are_decoded_with_byte_offsets() -> None:
    """NM1*QC 'NGUYỄN*THỊ' in UTF-8 reads as NGUYỄN / THỊ; its offset is the byte offset of NM1."""
    path = UTF8 / "remit-copay.835"
    records, summary = parsers.parse_file(path)
    patient = records[0].patient
    assert (patient.name, patient.first_name) == ("NGUYỄN", "THỊ")
    assert path.read_bytes().startswith("NM1*QC*1*NGUYỄN*THỊ".encode(), patient.source.offset)
    (encoding,) = [f for f in summary.findings if f.code == "TEXT_ENCODING"]
    assert "UTF-8" in encoding.message and encoding.source.segment == 1


def test_windows_1252_names_are_decoded_and_the_first_bad_byte_named() -> None:
    """'O\\x92BRIEN' reads as O’BRIEN (not O\\x92BRIEN), and TEXT_ENCODING names byte 0x92 at its offset."""
    path = CP1252 / "remit-1.835"
    data = path.read_bytes()
    records, summary = parsers.parse_file(path)
    assert records[0].patient.name == "O’BRIEN"
    (encoding,) = [f for f in summary.findings if f.code == "TEXT_ENCODING"]
    assert "WINDOWS-1252" in encoding.message
    quote = data.index(b"O\x92BRIEN") + 1
    assert f"byte 0x92 at offset {quote} " in encoding.message


def test_one_encoding_per_interchange_even_when_a_later_set_is_not_utf8(tmp_path: Path) -> None:
    """A valid UTF-8 name in the first transaction set and a 0xD1 byte in the second: both sets are
    read as Windows-1252, so one interchange's names are never read two ways."""
    lines = (CP1252 / "remit-copay.835").read_bytes().splitlines(keepends=True)
    isa_gs, body, trailer = lines[:2], lines[2:-2], lines[-2:]  # ST..SE (24 segments), then GE, IEA
    first = [line.replace(b"PE\xd1A", "PEÑA".encode()) for line in body]
    second = [line.replace(b"35922", b"35923") for line in body]
    path = tmp_path / "two-sets-utf8-then-windows-1252.835"
    path.write_bytes(b"".join(isa_gs + first + second + [trailer[0].replace(b"GE*1*", b"GE*2*"), trailer[1]]))
    records, summary = parsers.parse_file(path, display_name=path.name)
    assert [f.code for f in summary.findings if f.severity is parsers.Severity.ERROR] == []
    assert [r.patient.name for r in records] == ["PE\u00c3\u2018A", "PEÑA"]  # C3 91 read as Windows-1252, then D1
    assert [f.code for f in summary.findings].count("TEXT_ENCODING") == 1


@pytest.mark.parametrize("chunk", [5, 64, 4096])
def test_the_encoding_scan_is_the_same_in_any_chunk_size(chunk: int) -> None:
    """The reader and its encoding scan read a chunk at a time: multi-byte characters and the IEA
    marker split across chunks give the same decision and the same names."""

    def names(reader: parsers.X12Reader) -> list[list[str]]:
        return [els for ts in reader for _n, _o, els in ts.segments() if els[0] == "NM1"]

    for path in (UTF8 / "claims.837", CP1252 / "claims.837"):
        want = parsers.X12Reader(path)
        got = parsers.X12Reader(path, chunk_size=chunk)
        assert names(got) == names(want)
        assert [f.message for f in got.findings if f.code == "TEXT_ENCODING"] == [f.message for f in want.findings if f.code == "TEXT_ENCODING"]
        assert len([f for f in got.findings if f.code == "TEXT_ENCODING"]) == 1


def test_pure_ascii_files_report_no_encoding() -> None:
    """A pure-ASCII file needs no decision: no TEXT_ENCODING finding, the records as before."""
    _, summary = parsers.parse_file(SAMPLE_EDI / "patient-copay-overpaid" / "remit.835")
    assert [f.code for f in summary.findings] == []


def test_utf8_names_reach_every_output_and_pdf(tmp_path: Path) -> None:
    """`run` writes the UTF-8 names into refund_requests.csv/jsonl; `report` into worklist.csv, the
    patient notice ("Dear Thị Nguyễn,") and the CMS-838 (王, 小明 where a CJK font exists, else '?'
    and a note on stderr)."""
    out, report, result = run_and_report(UTF8, tmp_path)
    assert names_in(out / "refund_requests.csv") == {"RFM2904001": "王, 小明", "RFM2906001": "NGUYỄN, THỊ"}
    jsonl = [json.loads(line) for line in (out / "refund_requests.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(r["patient_name"] for r in jsonl) == ["NGUYỄN, THỊ", "王, 小明"]
    assert names_in(report / "worklist.csv") == {"RFM2906001": "NGUYỄN, THỊ"}
    (notice,) = (report / "packets").glob("patient-*.pdf")
    text = pdf_text(notice)
    assert "THỊ NGUYỄN" in text and "Dear Thị Nguyễn," in text
    cms838 = pdf_text(report / "cms838-2026Q4.pdf")
    # CI installs a CJK font (fonts-droid-fallback, .ci/run), so there the Chinese name must print
    assert has_cjk_font() or not os.environ.get("CI"), "no font with CJK glyphs: apt-get install fonts-droid-fallback"
    if has_cjk_font():
        assert "王, 小明" in cms838
    else:
        assert "?, ??" in cms838 and "王" not in cms838
        assert "cms838-2026Q4.pdf: 3 character(s) have no glyph in any installed font" in result.stderr


def test_windows_1252_names_reach_every_output_and_pdf(tmp_path: Path) -> None:
    """The Windows-1252 names come out as UTF-8 text: O’BRIEN in the CSV and on the CMS-838, PEÑA
    on the notice ("Dear Karen Peña,"), with no note about missing glyphs."""
    out, report, result = run_and_report(CP1252, tmp_path)
    assert names_in(out / "refund_requests.csv") == {"RFM3004001": "O’BRIEN, ROBERT", "RFM3006001": "PEÑA, KAREN"}
    (notice,) = (report / "packets").glob("patient-*.pdf")
    assert "Dear Karen Peña," in pdf_text(notice)
    assert "O’BRIEN, ROBERT" in pdf_text(report / "cms838-2026Q4.pdf")
    assert "glyph" not in result.stderr


def test_without_any_unicode_font_the_report_degrades_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no TrueType font found, names outside Latin-1 print as '?' with the core font, the
    report still succeeds, and stderr names each PDF and how many characters were lost."""
    monkeypatch.setenv("EDIRECON_FONT_DIRS", str(tmp_path / "no-fonts"))
    _, report, result = run_and_report(UTF8, tmp_path)
    (notice,) = (report / "packets").glob("patient-*.pdf")
    assert "Dear Th? Nguy?n," in pdf_text(notice)
    assert f"{notice.name}: 4 character(s) have no glyph" in result.stderr
    assert "cms838-2026Q4.pdf: 3 character(s)" in result.stderr


@pytest.mark.parametrize("path", [UTF8 / "remit-copay.835", CP1252 / "remit-1.835"], ids=["utf-8", "windows-1252"])
def test_reemitted_transaction_text_keeps_the_bytes_received(path: Path) -> None:
    """The text `watch` spools for re-emitted 835s is encoded back: the ST..SE bytes as received."""
    from edirecon.engine.dropfolder.outbound import set_text

    data = path.read_bytes()
    (ts,) = list(parsers.X12Reader(path))
    text = parsers.raw_text(set_text([els for _n, _o, els in ts.segments()], ts.delimiters.element, ts.delimiters.segment), ts.interchange.encoding)
    start = data.index(b"ST*835*")
    end = data.index(b"~", data.index(b"\nSE*")) + 2
    assert text.encode("latin-1") == data[start:end]


def test_element_lengths_count_characters_not_bytes(tmp_path: Path) -> None:
    """Regression: a 40-letter NM103 of 'Ễ' (120 UTF-8 bytes) is within the X12 maximum of 60 characters."""
    data = (UTF8 / "remit-copay.835").read_bytes()
    long_name = "Ễ" * 40
    assert (len(long_name), len(long_name.encode())) == (40, 120)
    path = tmp_path / "remit-40-character-utf8-name.835"
    path.write_bytes(data.replace("NGUYỄN".encode(), long_name.encode()))
    records, summary = parsers.parse_file(path)
    assert records[0].patient.name == long_name
    assert [f.code for f in summary.findings if f.code == "ELEMENT_TOO_LONG"] == []
