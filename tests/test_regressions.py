"""Regression tests, one per bug fixed after it was found."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import parsers
from tests.conftest import SAMPLE_EDI


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
    monkeypatch.setattr("parsers.x12.TOKEN_BLOCK", block)
    records, summary = parsers.parse_file(path)
    numbers = _segment_numbers(broken)
    assert [f.code for f in summary.findings] == ["INVALID_SEGMENT_ID"]
    payments = [r for r in records if isinstance(r, parsers.ClaimPayment)]
    assert len(payments) == 2
    for p in payments:
        assert p.source is not None and numbers[p.source.segment].startswith(b"CLP*" + p.patient_control_number.encode())
        for s in p.services:
            assert s.source is not None and numbers[s.source.segment].startswith(b"SVC*")
