"""More hostile shapes of issue 13, item 10: deciding stays linear in the input when many payments,
reversals, patient payments or PLB adjustments fall on one claim.

Each ratio test ingests the files of ``bench/hostile.py`` (well-formed envelopes, SE01/GE01/IEA01
right) at two sizes, then loads, decides and writes each three times, the sizes in turn; the
larger (twice the input) must take less than three times the CPU time of the smaller (quadratic
work takes four times).  The rules they run are checked on the outputs of every run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from test_hostile import AS_OF, _hostile, _timed

from edirecon.engine.config import Config
from edirecon.engine.decide.facts import PlbFact
from edirecon.engine.decide.offsets import offsets
from edirecon.engine.ingest.ingestor import Ingestor
from edirecon.engine.run import decide_and_record
from edirecon.engine.store.connection import Store

#: the outputs of one run: its rows by output, and summary.json
Check = Callable[[int, dict[str, Any], dict[str, Any]], None]


def _decide_seconds(tmp_path: Path, write: Callable[[Path, int], None], sizes: tuple[int, int], check: Check) -> list[list[float]]:
    """Write and ingest the input of each size, then time load, decide and write three times per
    size (the sizes in turn: both meet the same load on the machine), checking each run's outputs."""
    stores: list[tuple[Store, Path, int]] = []
    try:
        for n in sizes:
            folder = tmp_path / f"size-{n}"
            (folder / "in").mkdir(parents=True)
            write(folder / "in", n)
            store = Store(f"sqlite:///{folder}/store.db")
            stores.append((store, folder, n))
            store.upgrade()
            ingestor = Ingestor(store)
            for path in sorted((folder / "in").iterdir()):
                ingestor.ingest(path)
        seconds: list[list[float]] = [[], []]
        for i in range(3):
            for k, (store, folder, n) in enumerate(stores):
                done: list[Any] = []
                seconds[k].append(_timed(lambda: done.append(decide_and_record(store, folder / f"out-{i}", AS_OF, Config(), workers=1))))
                _, outputs, doc, _ = done[0]
                check(n, outputs, doc)
    finally:
        for store, _, _ in stores:
            store.dispose()
    return seconds


def _assert_linear(seconds: list[list[float]]) -> None:
    assert min(seconds[1]) / min(seconds[0]) < 3, seconds


@pytest.mark.slow
def test_deciding_is_linear_in_the_reversed_duplicates_of_one_claim(tmp_path: Path) -> None:
    """One CLP01 paid twice the times, each later payment reversed by a CLP02 = 22, takes less than three times as long to decide."""
    gen = _hostile()

    def check(n: int, outputs: dict[str, Any], doc: dict[str, Any]) -> None:
        # each payment after the first is a duplicate, settled by the reversal of its own CLP07
        refunds, recoupments = outputs["refund_requests"], outputs["recoupments"]
        assert doc["matched_payments"] == 2 * n - 1 and doc["credit_balances"] == 0 and not outputs["exceptions"]
        assert len(refunds) == len(recoupments) == n - 1
        assert {(r["reason"], r["status"], r["amount"]) for r in refunds} == {("DUPLICATE_PAYMENT", "settled_by_recoupment", Decimal("60.00"))}
        by_icn = {r["payer_claim_control_number"]: r["refund_id"] for r in refunds}
        assert {rc["kind"] for rc in recoupments} == {"CLAIM_REVERSAL"}
        assert all(rc["refund_id"] == by_icn[rc["payer_claim_control_number"]] for rc in recoupments)
        assert sorted(by_icn) == [f"ACME{k:010d}" for k in range(2, n + 1)]

    _assert_linear(_decide_seconds(tmp_path, lambda d, n: gen.many_payments(d / "claim.837", d / "payments.835", n, reversed_from=2), (3_000, 6_000), check))


@pytest.mark.slow
def test_deciding_is_linear_in_payments_without_lines_after_many_paid_lines(tmp_path: Path) -> None:
    """A claim of twice the lines paid line by line, and a second payer's twice as many reversed payments of it without lines, take less than three times as long to decide."""
    gen = _hostile()

    def write(folder: Path, n: int) -> None:
        gen.many_lines(folder / f"claim-of-{n}-lines.837", folder / f"payment-of-{n}-lines.835", n)
        gen.many_payments(None, folder / f"second-payer-{n}-reversed-payments.835", n, reversed_from=1, payer=("BETA HEALTH PLAN", "77001"))

    def check(n: int, outputs: dict[str, Any], doc: dict[str, Any]) -> None:
        # a payment reversed is not live: never a duplicate, never the earlier payment of one
        assert doc["matched_payments"] == 2 * n + 1 and doc["credit_balances"] == 0 and not outputs["refund_requests"] and not outputs["exceptions"]
        assert Counter((rc["kind"], rc["payer_id"], rc["amount"]) for rc in outputs["recoupments"]) == {("CLAIM_REVERSAL", "77001", Decimal("60.00")): n}

    _assert_linear(_decide_seconds(tmp_path, write, (4_000, 8_000), check))


@pytest.mark.slow
def test_deciding_is_linear_in_the_patient_payments_of_one_encounter(tmp_path: Path) -> None:
    """Twice the patient payments (CSV) of one claim take less than three times as long to decide."""
    gen = _hostile()

    def check(n: int, outputs: dict[str, Any], doc: dict[str, Any]) -> None:
        # n x 0.01 paid by the patient on a claim of 100.00 no payer paid: the excess is the patient's
        (row,) = outputs["credit_balances"]
        (refund,) = outputs["refund_requests"]
        assert doc["patient_payments"] == n and not outputs["exceptions"]
        assert Decimal(row["patient_paid"]) == n * Decimal("0.01") and Decimal(row["balance"]) == 100 - n * Decimal("0.01")
        assert (refund["reason"], refund["payee_type"], refund["amount"]) == ("PATIENT_OVERPAYMENT", "patient", n * Decimal("0.01") - 100)
        assert [e["patient_payment_id"] for e in refund["evidence"]] == [f"PP{k:08d}" for k in range(1, n + 1)]  # every one, in file order

    _assert_linear(_decide_seconds(tmp_path, lambda d, n: gen.many_patient_payments(d / "claim.837", d / "patient-payments.csv", n), (20_000, 40_000), check))


@pytest.mark.slow
def test_deciding_is_linear_in_the_patients_that_share_one_claim_number(tmp_path: Path) -> None:
    """Twice the patients reusing one CLM01 (one encounter each, each paid on its member id) take less than three times as long to group and match."""
    gen = _hostile()

    def check(n: int, outputs: dict[str, Any], doc: dict[str, Any]) -> None:
        # each payment names its own patient's encounter: all matched, each paid in full (60 + CO-45 40)
        assert doc["matched_payments"] == n and doc["credit_balances"] == 0
        assert not outputs["exceptions"] and not outputs["refund_requests"]

    _assert_linear(_decide_seconds(tmp_path, lambda d, n: gen.one_claim_number_many_patients(d / "claims.837", d / "remit.835", n), (2_000, 4_000), check))


@pytest.mark.slow
def test_deciding_is_linear_in_the_plb_adjustments_of_one_reference(tmp_path: Path) -> None:
    """Twice the PLB take-backs of one claim (half of them offset by 72s) and give-backs take less than three times as long to decide."""
    gen = _hostile()

    def check(n: int, outputs: dict[str, Any], doc: dict[str, Any]) -> None:
        # n x 2.00 taken, n x 1.00 offset (the first n / 2 take-backs), n x 0.50 given back (the latest first)
        recoupments = outputs["recoupments"]
        assert doc["matched_payments"] == 1 and not outputs["exceptions"] and not outputs["refund_requests"]
        assert Counter((rc["kind"], rc["payer_claim_control_number"], rc["amount"]) for rc in recoupments) == {
            ("PLB_WO", "ACME0000000001", Decimal("2.00")): n // 4
        }
        assert doc["recoupments"] == {"count": n // 4, "amount": f"{n // 2}.00"}

    _assert_linear(_decide_seconds(tmp_path, lambda d, n: gen.many_plbs(d / "claim.837", d / "plbs.835", n), (3_000, 6_000), check))


@pytest.mark.slow
def test_settling_is_linear_in_the_recoupments_and_refunds_of_one_encounter(tmp_path: Path) -> None:
    """Twice the duplicate payments of one claim, each taken back by its own PLB, take less than three times as long to decide."""
    gen = _hostile()

    def write(folder: Path, n: int) -> None:
        gen.many_payments(folder / "claim.837", folder / "payments.835", n)
        gen.takebacks_835(folder / "takebacks.835", n)

    def check(n: int, outputs: dict[str, Any], doc: dict[str, Any]) -> None:
        # each take-back settles the duplicate refund of its own payer claim number, none another
        refunds, recoupments = outputs["refund_requests"], outputs["recoupments"]
        assert doc["matched_payments"] == n and doc["credit_balances"] == 0 and not outputs["exceptions"]
        assert Counter((r["reason"], r["status"]) for r in refunds) == {("DUPLICATE_PAYMENT", "settled_by_recoupment"): n - 1}
        by_icn = {r["payer_claim_control_number"]: r["refund_id"] for r in refunds}
        assert Counter(rc["kind"] for rc in recoupments) == {"PLB_WO": n - 1}
        assert all(rc["refund_id"] == by_icn[rc["payer_claim_control_number"]] for rc in recoupments)

    _assert_linear(_decide_seconds(tmp_path, write, (3_000, 6_000), check))


def _plb(reason: str, reference: str, amount: str, segment: int, position: int = 1) -> PlbFact:
    return PlbFact("60054", "ACME HEALTH PLAN", "0000996001", date(2026, 3, 5), reason, reference, Decimal(amount), "plbs.835", segment, position)


def test_a_72_offsets_its_reference_then_its_amount_then_the_rest_in_order() -> None:
    """A 72 offsets the take-back of its reference and exact amount, else those of its reference in order, else one of its exact amount, else the others in order; one used up is skipped."""
    plbs = [
        _plb("WO", "ACME0000000001", "5.00", 10),
        _plb("WO", "ACME0000000002", "3.00", 11),
        _plb("FB", "ACME0000000002", "4.00", 12),
        _plb("WO", "ACME0000000003", "4.00", 13),
        _plb("WO", "ACME0000000004", "2.00", 14),
        _plb("72", "ACME0000000002 ", "-4.00", 20),  # its reference and amount: the FB, past the WO of 3.00
        _plb("72", "ACME0000000002", "-4.00", 21),  # its reference (3.00), then its amount elsewhere: ..03 gives 1.00
        _plb("72", "CHK000123", "-5.00", 22),  # its amount: ..01, not ..03 first in order
        _plb("72", "CHK000124", "-4.00", 23),  # none of 4.00 left: in order, ..03 (3.00 left), then ..04
    ]
    got = [(o.ack.segment, o.recovery.segment, str(o.amount)) for o in offsets(plbs)]
    assert got == [(20, 12, "4.00"), (21, 11, "3.00"), (21, 13, "1.00"), (22, 10, "5.00"), (23, 13, "3.00"), (23, 14, "1.00")]
