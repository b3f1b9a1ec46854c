"""Streaming: memory follows the largest transaction set, not the file; money is never a float."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import tracemalloc
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import REPO, SAMPLE_EDI

from edirecon import parsers


def _generator():
    spec = importlib.util.spec_from_file_location("bench_generate", REPO / "bench" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_generate"] = module
    spec.loader.exec_module(module)
    return module


def _peak(path: Path) -> tuple[int, int]:
    """(peak traced bytes, records) while streaming every record of a file."""
    tracemalloc.start()
    try:
        count = sum(1 for _ in parsers.iter_records(path))
        return tracemalloc.get_traced_memory()[1], count
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_memory_is_bounded_by_the_largest_transaction_set(tmp_path: Path, monkeypatch) -> None:
    """64 transaction sets of 100 claims peak like 16 such sets, far below one set of 6,400 claims."""
    # 64 KiB chunks, so that both multi-set files span many chunks (as large files do at 1 MiB)
    monkeypatch.setattr("edirecon.parsers.x12.CHUNK_SIZE", 64 * 1024)
    gen = _generator()
    sixteen = tmp_path / "sixteen-sets-of-100.835"
    sixty_four = tmp_path / "sixty-four-sets-of-100.835"
    one_big = tmp_path / "one-set-of-6400.835"
    gen.generate("835", str(sixteen), claims=1_600, seed=3, claims_per_transaction=100)
    gen.generate("835", str(sixty_four), claims=6_400, seed=3, claims_per_transaction=100)
    gen.generate("835", str(one_big), claims=6_400, seed=3)
    peak_16, n_16 = _peak(sixteen)
    peak_64, n_64 = _peak(sixty_four)
    peak_big, n_big = _peak(one_big)
    assert n_16 >= 1_600 and min(n_64, n_big) >= 6_400
    assert sixty_four.stat().st_size > 3.5 * sixteen.stat().st_size
    # four times the file, same peak (the reader holds a chunk or two and one transaction set)
    assert peak_64 < 1.3 * peak_16, (peak_16, peak_64)
    assert peak_big > 2.5 * peak_64, (peak_64, peak_big)


def _walk(value: object, path: str = "") -> list[str]:
    """Paths of every float found inside a record (there must be none)."""
    if isinstance(value, float):
        return [path]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [p for f in dataclasses.fields(value) for p in _walk(getattr(value, f.name), f"{path}.{f.name}")]
    if isinstance(value, (list, tuple)):
        return [p for i, item in enumerate(value) for p in _walk(item, f"{path}[{i}]")]
    return []


def test_money_is_decimal_and_dates_are_dates() -> None:
    """Every amount of every sample record is a Decimal (never a float) and every date a date."""
    seen_amounts = 0
    for path in sorted(SAMPLE_EDI.rglob("*.83[57]")):
        for record in parsers.iter_records(path):
            assert _walk(record) == []
            if isinstance(record, parsers.ClaimPayment):
                assert isinstance(record.paid, Decimal) and isinstance(record.charge, Decimal)
                assert record.remittance.payment_date is None or isinstance(record.remittance.payment_date, date)
                seen_amounts += 1
            elif isinstance(record, parsers.Claim):
                assert isinstance(record.total_charge, Decimal)
    assert seen_amounts > 10


def test_amounts_are_written_with_two_decimals_and_never_rounded() -> None:
    """JSON amounts: 125 -> "125.00", -99.5 -> "-99.50", 1.005 stays "1.005" (already a finding)."""
    from edirecon.parsers.serialize import money

    assert money(Decimal("125")) == "125.00"
    assert money(Decimal("-99.5")) == "-99.50"
    assert money(Decimal("1.005")) == "1.005"
    assert money(None) is None
