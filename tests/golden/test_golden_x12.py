"""Byte-level goldens of the X12-facing outputs: the JSON Lines of `edirecon parse` for a few
varied real files of the public corpus (read where they are, never copied), and the 999s that
`edirecon validate --ack-dir` writes for the sample 837s.  Stored under tests/golden/parse/ and
tests/golden/validate/; rewritten by `make golden` (tests/goldens.py says what is normalised: the
999's generation date, time and control numbers).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from conftest import REPO
from goldens import (
    GOLDEN,
    check_tree,
    normalise_ack,
    read_tree,
    refuse_machine_paths,
)
from typer.testing import CliRunner

from edirecon.cli import app

#: an 835 (ten claim payments and a PLB, GS08 '5010'), an 837P with coordination of benefits
#: (2320/2330 other payers), an 837I with a BOM, indented segments, line-level COB and a wrong
#: SE01 (untrusted records), and a 4010 837D with the institutional GS08 (TYPE_MISMATCH)
CORPUS_FILES = (
    "Inteligenz__X12Parser__tests__OopFactory.X12.Tests.Unit__Parsing___SampleEdiFiles__INS___835___5010__Example1.txt",
    "LinuxForHealth__x12__src__tests__resources__837_005010X222A2__demo.cob.example3.C.837",
    "Inteligenz__X12Parser__tests__OopFactory.X12.Hipaa.Tests.Unit__Claims__TestData__InstitutionalClaim5010.txt",
    "Inteligenz__X12Parser__tests__OopFactory.X12.Tests.Unit__Parsing___SampleEdiFiles__INS___837D___4010__Spec_4.1.2A_COB.txt",
)


def test_parse_of_corpus_files_matches_golden(corpus: Path) -> None:
    """`edirecon parse [--format-version 1] FILE`, run in the corpus folder: stdout (JSON Lines, format
    versions 1 and 2) and stderr (findings, the same for both) are byte for byte their goldens."""
    missing = [name for name in CORPUS_FILES if not (corpus / name).is_file()]
    assert missing == [], f"the corpus at {corpus} lacks files these goldens were made from"
    actual: dict[str, bytes] = {}
    with contextlib.chdir(corpus):  # files named as given, with no machine path
        for name in CORPUS_FILES:
            result = CliRunner().invoke(app, ["parse", "--format-version", "1", name])
            assert result.exit_code in (0, 1), result.output
            actual[f"{name}.jsonl"] = result.stdout_bytes
            actual[f"{name}.stderr.txt"] = result.stderr_bytes
            v2 = CliRunner().invoke(app, ["parse", name])  # format version 2, the default
            assert (v2.exit_code, v2.stderr_bytes) == (result.exit_code, result.stderr_bytes)
            actual[f"{name}.v2.jsonl"] = v2.stdout_bytes
    refuse_machine_paths(actual, corpus.resolve(), REPO)
    check_tree(GOLDEN / "parse", actual)


@pytest.mark.slow  # pyx12 validates eleven files: the slowest golden test (a few seconds)
def test_validate_acknowledgments_match_golden(tmp_path: Path) -> None:
    """`edirecon validate --ack-dir DIR sample_edi/` writes, for each sample 837, the golden 999 (envelope date, time and control numbers aside)."""
    with contextlib.chdir(REPO):
        result = CliRunner().invoke(app, ["validate", "--ack-dir", str(tmp_path), "sample_edi"])
    assert result.exit_code == 1, result.output  # broken-file/claims-bad-counts.837 has a wrong SE01
    actual = {name: normalise_ack(data) for name, data in read_tree(tmp_path).items()}
    assert actual, "no acknowledgment written"
    refuse_machine_paths(actual, tmp_path, REPO)
    check_tree(GOLDEN / "validate", actual)
