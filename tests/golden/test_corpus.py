"""The public corpus (../shared/corpus): every real file parses, and its counts are right.

Counts are checked against an independent segment counter written here (it shares no code with
the parser) and against the corpus MANIFEST.tsv.  ``tests/golden/corpus-summary.txt`` holds what
``edirecon parse --summary`` says about every file plus its findings by code; it was reviewed by
hand.  After a deliberate change, rewrite it with ``python tests/golden/test_corpus.py --update`` (or
``EDIRECON_UPDATE_GOLDENS=1 python -m pytest tests/golden/test_corpus.py``) and review the diff.
"""

from __future__ import annotations

import csv
import os
import re
import sys
from collections import Counter
from datetime import date
from pathlib import Path

if __name__ == "__main__":  # run as a script: make the test helpers (conftest) importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pytest
from conftest import CORPUS, corpus_files
from typer.testing import CliRunner

from edirecon import parsers
from edirecon.cli import app

GOLDEN = Path(__file__).resolve().parent / "corpus-summary.txt"
#: a sentinel parameter when the corpus is absent, so the ``corpus`` fixture can skip (or fail in CI)
FILES: list[Path | None] = list(corpus_files()) or [None]
ENVELOPE_CODES = (
    "SE_COUNT_MISMATCH",
    "SE_CONTROL_MISMATCH",
    "GE_COUNT_MISMATCH",
    "GE_CONTROL_MISMATCH",
    "IEA_COUNT_MISMATCH",
    "IEA_CONTROL_MISMATCH",
    "MISSING_SE",
    "MISSING_GE",
    "MISSING_IEA",
)
FINDING_LINE = re.compile(r"^(?P<file>.+?):(?P<segment>\d+):(?P<offset>-?\d+): (?P<code>[A-Z_]+) (?P<message>.*)$")


def _file_id(path: Path | None) -> str:
    return path.name if path is not None else "no-corpus"


# --------------------------------------------------------------------- independent counting
def split_segments(data: bytes) -> list[list[str]]:
    """The segments of a raw X12 file as lists of elements, split without the parser.

    For each ISA: the element separator is the 4th byte, the segment terminator the byte after
    ISA16 (the component separator, which follows the 16th element separator).  The interchange
    is split on its terminator up to its IEA (or the end of the file), each piece stripped of
    white space, and split on the element separator.
    """
    segments: list[list[str]] = []
    start = data.find(b"ISA")
    while start >= 0:
        elem = data[start + 3 : start + 4]
        p = start
        for _ in range(16):
            p = data.find(elem, p + 1)
        term = data[p + 2 : p + 3]
        pos = start
        next_start = -1
        while pos < len(data):
            end = data.find(term, pos)
            piece = data[pos : end if end >= 0 else len(data)].strip()
            pos = len(data) if end < 0 else end + 1
            if not piece:
                continue
            segments.append(piece.decode("latin-1").split(elem.decode("latin-1")))
            if segments[-1][0] == "IEA":
                next_start = data.find(b"ISA", pos)
                break
        start = next_start
    return segments


def count_segment_ids(data: bytes) -> Counter[str]:
    """How many segments of each id a raw X12 file holds, counted without the parser."""
    return Counter(els[0] for els in split_segments(data))


def envelope_errors(data: bytes) -> Counter[str]:
    """The envelope errors of a raw X12 file, by finding code, checked without the parser.

    SE01 against the segments from ST to SE, SE02/GE02/IEA02 against ST02/GS06/ISA13, GE01 against
    the transaction sets of the group, IEA01 against the groups of the interchange, and trailers
    missing at the end of the file.
    """
    errors: Counter[str] = Counter()
    isa13 = gs06 = st02 = None
    groups = sets = segments = 0

    def differs(value: str, expected: object) -> bool:
        return value.strip() != str(expected).strip()

    for els in split_segments(data):
        els = els + [""] * 3
        sid = els[0]
        if st02 is not None:
            segments += 1
        if sid == "ISA":
            isa13, groups = els[13], 0
        elif sid == "GS":
            gs06, sets, groups = els[6], 0, groups + 1
        elif sid == "ST":
            st02, segments, sets = els[2], 1, sets + 1
        elif sid == "SE" and st02 is not None:
            errors["SE_COUNT_MISMATCH"] += differs(els[1], segments)
            errors["SE_CONTROL_MISMATCH"] += differs(els[2], st02)
            st02 = None
        elif sid == "GE" and gs06 is not None:
            errors["GE_COUNT_MISMATCH"] += differs(els[1], sets)
            errors["GE_CONTROL_MISMATCH"] += differs(els[2], gs06)
            gs06 = None
        elif sid == "IEA" and isa13 is not None:
            errors["IEA_COUNT_MISMATCH"] += differs(els[1], groups)
            errors["IEA_CONTROL_MISMATCH"] += differs(els[2], isa13)
            isa13 = None
    errors["MISSING_SE"] += st02 is not None
    errors["MISSING_GE"] += gs06 is not None
    errors["MISSING_IEA"] += isa13 is not None
    return +errors


def _manifest() -> dict[str, dict[str, str]]:
    with open(CORPUS / "MANIFEST.tsv", newline="", encoding="utf-8") as fh:
        return {row["file"]: row for row in csv.DictReader(fh, delimiter="\t")}


# ------------------------------------------------------------------------------ every file
@pytest.mark.parametrize("path", FILES, ids=_file_id)
def test_record_counts_match_independent_segment_count(corpus: Path, path: Path) -> None:
    """A corpus file parses without raising; claims = CLM, claim payments = CLP, envelopes = ISA/GS/ST."""
    records, summary = parsers.parse_file(path)
    ids = count_segment_ids(path.read_bytes())
    kinds = Counter(r.record for r in records)
    assert kinds["claim"] == ids["CLM"]
    assert kinds["claim_payment"] == ids["CLP"]
    assert kinds["provider_adjustment"] == summary.provider_adjustments
    assert (summary.claims, summary.claim_payments) == (ids["CLM"], ids["CLP"])
    assert (summary.interchanges, summary.functional_groups, summary.transaction_sets) == (ids["ISA"], ids["GS"], ids["ST"])
    # an SV1/SV2/SV3 without an LX of its own is a MISSING_SEGMENT finding, not a service line
    unread = sum(1 for f in summary.findings if f.code == "MISSING_SEGMENT" and "has no LX of its own" in f.message)
    assert sum(len(r.lines) for r in records if isinstance(r, parsers.Claim)) == ids["SV1"] + ids["SV2"] + ids["SV3"] - unread
    if ids["CLP"]:
        assert sum(len(r.services) for r in records if isinstance(r, parsers.ClaimPayment)) == ids["SVC"]


@pytest.mark.parametrize("path", FILES, ids=_file_id)
def test_envelope_findings_match_independent_check(corpus: Path, path: Path) -> None:
    """The parser's envelope findings (SE/GE/IEA counts and controls, missing trailers) are exactly the file's real ones."""
    _, summary = parsers.parse_file(path)
    found = Counter(f.code for f in summary.findings)
    expected = envelope_errors(path.read_bytes())
    assert {code: found[code] for code in ENVELOPE_CODES if found[code]} == dict(expected)


# ------------------------------------------------------------------------------- MANIFEST
def test_manifest_lists_exactly_the_corpus_files(corpus: Path) -> None:
    """MANIFEST.tsv describes every corpus file and no other."""
    assert sorted(_manifest()) == [p.name for p in corpus_files()]


def test_independent_counter_agrees_with_manifest(corpus: Path) -> None:
    """The test's own counter reproduces MANIFEST segment_count and st_count (so it can be trusted)."""
    wrong = []
    for name, row in _manifest().items():
        ids = count_segment_ids((corpus / name).read_bytes())
        if (sum(ids.values()), ids["ST"]) != (int(row["segment_count"]), int(row["st_count"])):
            wrong.append((name, sum(ids.values()), row["segment_count"], ids["ST"], row["st_count"]))
    assert wrong == []


def test_parsed_counts_match_manifest(corpus: Path) -> None:
    """Transaction sets equal MANIFEST st_count; claims + claim payments equal its claims column where filled."""
    wrong = []
    for name, row in _manifest().items():
        _, s = parsers.parse_file(corpus / name)
        if s.transaction_sets != int(row["st_count"]):
            wrong.append((name, "transaction_sets", s.transaction_sets, row["st_count"]))
        if row["claims"] and s.claims + s.claim_payments != int(row["claims"]):
            wrong.append((name, "claims", s.claims + s.claim_payments, row["claims"]))
    assert wrong == []


def test_claim_types_match_manifest(corpus: Path) -> None:
    """Every claim of an 837 file has the MANIFEST's type (837P/837I/837D); every 835 record is 835."""
    wrong = []
    for name, row in _manifest().items():
        expected = row["transaction_set"]
        if not (expected == "835" or expected.startswith("837")):
            continue
        records, _ = parsers.parse_file(corpus / name)
        types = sorted({r.transaction_type for r in records})
        if types != [expected]:
            wrong.append((name, types, expected))
    assert wrong == []


def test_summary_segment_count_is_every_segment_of_the_file(corpus: Path) -> None:
    """FileSummary.segments counts every segment of the file, ISA to the last IEA (MANIFEST segment_count)."""
    wrong = []
    for name, row in _manifest().items():
        _, s = parsers.parse_file(corpus / name)
        if s.segments != int(row["segment_count"]):
            wrong.append((name, s.segments, int(row["segment_count"])))
    assert wrong == []


def test_d8_date_sent_as_a_range_is_read_as_the_range(corpus: Path) -> None:
    """InstitutionalClaim4010 sends DTP*434*D8*19960911-19960912: read as 1996-09-11..12, no INVALID_DATE (Values.period)."""
    path = corpus / "Inteligenz__X12Parser__tests__OopFactory.X12.Hipaa.Tests.Unit__Claims__TestData__InstitutionalClaim4010.txt"
    assert b"DTP*434*D8*19960911-19960912~" in path.read_bytes()
    records, summary = parsers.parse_file(path)
    (claim,) = records
    assert isinstance(claim, parsers.Claim)
    assert (claim.statement_from, claim.statement_to) == (date(1996, 9, 11), date(1996, 9, 12))
    assert [f.code for f in summary.findings if f.code == "INVALID_DATE"] == []


# --------------------------------------------------------------------------------- golden
DEFAULT_HEADER = "# Golden summary of the public corpus: `edirecon parse --summary` run in the corpus folder.\n"


def corpus_summary() -> tuple[str, int]:
    """The golden body (summary line, then findings by code, per file) and the CLI exit code.

    Runs ``edirecon parse --summary`` once over every corpus file, from the corpus folder with
    relative names, so the lines are exactly what a user sees there.
    """
    names = [p.name for p in corpus_files()]
    cwd = os.getcwd()
    os.chdir(CORPUS)
    try:
        result = CliRunner().invoke(app, ["parse", "--summary", *names])
    finally:
        os.chdir(cwd)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    codes: dict[str, Counter[str]] = {name: Counter() for name in names}
    for line in result.stderr.splitlines():
        m = FINDING_LINE.match(line)
        assert m is not None, f"stderr line is not 'file:segment:offset: CODE message': {line!r}"
        codes[m["file"]][m["code"]] += 1
    summary_lines = result.stdout.splitlines()
    assert [line.split(": ", 1)[0] for line in summary_lines] == names
    out = []
    for name, line in zip(names, summary_lines):
        out.append(line + "\n")
        if codes[name]:
            out.append("    findings: " + " ".join(f"{c}={n}" for c, n in sorted(codes[name].items())) + "\n")
    return "".join(out), result.exit_code


def _split(text: str) -> tuple[str, str]:
    """(header comment lines, body) of a golden file."""
    lines = text.splitlines(keepends=True)
    header = "".join(line for line in lines if line.startswith("#"))
    body = "".join(line for line in lines if not line.startswith("#"))
    return header, body


def update_golden() -> None:
    """Rewrite the golden body, keeping its reviewed header comment."""
    header = _split(GOLDEN.read_text(encoding="utf-8"))[0] if GOLDEN.exists() else DEFAULT_HEADER
    body, _ = corpus_summary()
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(header + body, encoding="utf-8")


def test_corpus_summary_matches_golden(corpus: Path) -> None:
    """`edirecon parse --summary` over the corpus prints exactly the reviewed golden summary and findings."""
    if os.environ.get("EDIRECON_UPDATE_GOLDENS"):
        update_golden()
    header, expected = _split(GOLDEN.read_text(encoding="utf-8"))
    assert "reviewed by hand" in header.lower()
    actual, exit_code = corpus_summary()
    assert actual == expected
    assert exit_code == 1  # the corpus holds files with error findings (reviewed in the header)


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python tests/golden/test_corpus.py --update")
    if not CORPUS.is_dir():
        sys.exit(f"no public corpus at {CORPUS}")
    update_golden()
    print(f"wrote {GOLDEN}")
