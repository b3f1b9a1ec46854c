"""Golden parse output for every sample_edi/ X12 file: records, findings and counts.

Each sample file ``X`` has ``X.expected.json`` next to it.  After a deliberate change, rewrite
them with ``EDIRECON_UPDATE_GOLDENS=1 python -m pytest tests/golden/test_golden.py`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import REPO, SAMPLE_EDI

from edirecon import parsers
from edirecon.parsers.serialize import record_dict

X12_SUFFIXES = {".835", ".837"}
SAMPLES = sorted(p for p in SAMPLE_EDI.rglob("*") if p.suffix in X12_SUFFIXES)


def golden_of(path: Path) -> dict:
    """What the parser makes of one file, in a stable JSON form with repo-relative paths."""
    name = path.relative_to(REPO).as_posix()
    records, summary = parsers.parse_file(path, display_name=name)
    return {
        "file": name,
        "summary": {
            "interchanges": summary.interchanges,
            "functional_groups": summary.functional_groups,
            "transaction_sets": summary.transaction_sets,
            "segments": summary.segments,
            "claims": summary.claims,
            "claim_payments": summary.claim_payments,
            "service_lines": summary.service_lines,
            "provider_adjustments": summary.provider_adjustments,
            "transaction_types": dict(sorted(summary.transaction_types.items())),
        },
        "findings": [f.as_dict() for f in summary.findings],
        "records": [record_dict(r) for r in records],
    }


def test_every_sample_has_a_golden() -> None:
    """No sample X12 file is left without its expected output."""
    assert SAMPLES, "sample_edi/ holds no X12 files"
    missing = [p for p in SAMPLES if not Path(f"{p}.expected.json").exists() and not os.environ.get("EDIRECON_UPDATE_GOLDENS")]
    assert missing == []


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.relative_to(SAMPLE_EDI).as_posix())
def test_parse_matches_golden(path: Path) -> None:
    """Parsing a sample file gives exactly its reviewed golden output."""
    actual = golden_of(path)
    golden = Path(f"{path}.expected.json")
    if os.environ.get("EDIRECON_UPDATE_GOLDENS"):
        golden.write_text(json.dumps(actual, indent=1) + "\n", encoding="utf-8")
    expected = json.loads(golden.read_text(encoding="utf-8"))
    assert actual == expected
