"""The `carc` dimension of the root causes names the codes that made a credit, not the routine ones
every normal payment carries (mappings/routine_adjustment_codes.csv), and the dashboard's labels
keep payer names whole."""

from __future__ import annotations

from decimal import Decimal

import pytest

from edirecon import mappings
from edirecon.engine.decide.facts import PaymentFact, PaymentLine
from edirecon.engine.reports.analytics import causing_carcs
from edirecon.engine.reports.dashboard import wrap


def payment(status: str, *line_adjustments: tuple[str, str, str], claim: tuple[tuple[str, str, str], ...] = ()) -> PaymentFact:
    """A claim payment of 100.00 charged, with the adjustments given on its one service line."""
    return PaymentFact(
        id=1,
        payer_id="87726",
        payer_name="BLUE RIVER HEALTH PLAN",
        trace_number="T1",
        payment_date=None,
        payee_npi="1467523894",
        payee_tin="",
        ordinal=1,
        pcn="PCN1",
        status=status,
        charge=Decimal("100.00"),
        paid=Decimal("60.00"),
        patient_responsibility=Decimal("20.00"),
        filing_indicator="12",
        icn="ICN1",
        member_id="W1",
        patient_last="DOE",
        patient_first="JANE",
        service_from=None,
        service_to=None,
        source_file="remit.835",
        segment=1,
        byte_offset=0,
        claim_adjustments=tuple((g, r, Decimal(a)) for g, r, a in claim),
        lines=[
            PaymentLine(1, "99213", "", Decimal("100.00"), Decimal("60.00"), Decimal(1), None, "", tuple((g, r, Decimal(a)) for g, r, a in line_adjustments))
        ],
    )


def test_routine_codes_are_data() -> None:
    """CO-45 and PR-1/2/3 are routine on claims processed as primary, secondary or tertiary."""
    routine = mappings.routine_adjustment_codes()
    assert set(routine) == {"CO-45", "PR-1", "PR-2", "PR-3"}
    assert all(statuses == {"1", "2", "3", "19", "20", "21"} for statuses in routine.values())


def test_routine_codes_of_a_normal_adjudication_are_left_out() -> None:
    """A normal payment: CO-45 write-off and PR-2 coinsurance are no cause; the CO-94 that paid past
    the charge is one (the generator's planted overpayment)."""
    p = payment("1", ("CO", "45", "20.00"), ("PR", "2", "20.00"), ("CO", "94", "-35.00"))
    assert causing_carcs([p]) == ["CO-94"]
    assert causing_carcs([payment("19", ("CO", "45", "20.00"), ("PR", "3", "20.00"))]) == []  # processed as primary, forwarded


def test_a_routine_code_that_made_the_credit_stays() -> None:
    """A negative CO-45 (the payer gave back its write-off and paid it instead) made the credit; so
    does a PR code on a claim that was no normal adjudication (denied, CLP02 4)."""
    assert causing_carcs([payment("1", ("CO", "45", "-20.00"), ("PR", "2", "20.00"))]) == ["CO-45"]
    assert causing_carcs([payment("4", ("PR", "1", "100.00"))]) == ["PR-1"]
    # one payment where it made the credit is enough, whatever the others
    assert causing_carcs([payment("1", ("CO", "45", "20.00")), payment("2", ("CO", "45", "-5.00"))]) == ["CO-45"]


def test_claim_level_adjustments_count_and_zero_amounts_do_not() -> None:
    """Claim-level CAS count as line-level ones; a code with a zero amount is none."""
    p = payment("2", ("OA", "23", "0.00"), claim=(("OA", "23", "40.00"), ("PR", "1", "10.00"), ("CO", "253", "0.00")))
    assert causing_carcs([p]) == ["OA-23"]
    assert causing_carcs([payment("1", ("CO", "253", "0.00"))]) == []


@pytest.mark.parametrize(
    ("name", "lines"),
    [
        ("BLUE RIVER HEALTH PLAN", ["BLUE RIVER HEALTH PLAN"]),
        ("MEDICARE JURISDICTION 15 PART B OHIO", ["MEDICARE JURISDICTION", "15 PART B OHIO"]),
        ("MEDICARE JURISDICTION 15 PART B OHIO AND KENTUCKY", ["MEDICARE JURISDICTION", "15 PART B OHIO AND\u2026"]),
        ('=HYPERLINK("//x.example/p","MEDICARE PART B")', ['=HYPERLINK("//x.exampl', 'e/p","MEDICARE PART\u2026']),
    ],
)
def test_payer_names_wrap_between_words(name: str, lines: list[str]) -> None:
    """A chart label is at most two lines of 22 characters, broken between words where it can."""
    assert wrap(name) == lines
