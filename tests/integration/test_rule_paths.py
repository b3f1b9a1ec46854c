"""The rules' shortcuts for the common case give what their general path gives, to the digit and
the exponent (outputs are byte-level goldens)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

from conftest import FIXTURES, SAMPLE_EDI

from edirecon.engine.config import Config
from edirecon.engine.decide import rules
from edirecon.engine.decide.encounters import build_encounters, match_payments
from edirecon.engine.run import run
from edirecon.engine.store.connection import Store
from edirecon.engine.store.facts import load

FOLDERS = [SAMPLE_EDI, *sorted(p for p in (FIXTURES / "engine").iterdir() if p.is_dir())]


def test_one_payments_write_offs_need_no_grouping(tmp_path: Path) -> None:
    """``_write_offs`` of a single claim payment (most encounters) skips grouping its lines by
    billed line: the same amount as the grouped path, for every claim payment of every scenario."""
    url = f"sqlite:///{tmp_path}/store.db"
    run(FOLDERS, url, tmp_path / "out", date(2026, 11, 27), Config(), workers=1)
    store = Store(url)
    try:
        with store.engine.connect() as conn:
            facts = load(conn)
    finally:
        store.dispose()
    encounters = build_encounters(facts.claims)
    match_payments(encounters, facts.payments)
    compared = written = 0
    for e in encounters:
        if e.voided:
            continue
        for p in e.payments:
            # and as if the payer had allowed more (the billed charge less the allowed amount binds),
            # without lines (the claim's adjustments and charge only), and both
            more = [replace(line, charge=(line.charge or Decimal(0)) + Decimal("40.00")) for line in p.lines]
            for q in (p, replace(p, lines=more), replace(p, lines=()), replace(p, lines=(), charge=p.charge + Decimal("40.00"))):
                one = rules._write_offs(e, [q])
                assert (str(one), q.key) == (str(rules._adjudicated_write_offs(e, [q])), q.key)
                compared += 1
                written += one > 0
    assert compared > 200 and written > 40
