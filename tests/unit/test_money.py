"""Money defined once (issue 14): ``edirecon.money`` and nothing else says what an amount is."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from conftest import REPO

from edirecon import money
from edirecon.engine.record import writers
from edirecon.parsers import serialize


@pytest.mark.parametrize(
    ("text", "expected"),
    [("125", Decimal("125")), ("-12.50", Decimal("-12.50")), (".5", Decimal("0.5")), ("0.001", Decimal("0.001")), ("1e3", Decimal("1E+3"))],
)
def test_parse_reads_decimal_text_exactly(text: str, expected: Decimal) -> None:
    value = money.parse(text)
    assert value == expected and type(value) is Decimal
    assert str(value) == str(expected)  # the digits as sent, not a rounded or float form


@pytest.mark.parametrize("text", ["", "12.3.4", "NaN", "Infinity", "-inf", "1 2", " 12", "12E", "abc", "$12"])
def test_parse_refuses_what_is_not_an_amount(text: str) -> None:
    assert money.parse(text) is None


def test_text_is_two_decimals_rounded_half_even_and_empty_for_none() -> None:
    assert money.text(Decimal("125")) == "125.00"
    assert money.text(Decimal("-0.5")) == "-0.50"
    assert money.text(Decimal("2.345")) == "2.34"  # half to even, the decimal context's rounding
    assert money.text(Decimal("2.355")) == "2.36"
    assert money.text(None) == ""
    assert money.quantise(Decimal("7")) == Decimal("7.00") and money.quantise(Decimal("7")).as_tuple().exponent == -2


def test_dollars_is_the_form_people_read() -> None:
    """PDFs and HTML: thousands separated, a dollar sign, the minus before it; CSV/JSON keep ``text``."""
    assert money.dollars(Decimal("285129")) == "$285,129.00"
    assert money.dollars(Decimal("1234567.891")) == "$1,234,567.89"
    assert money.dollars(Decimal("-12.5")) == "-$12.50"
    assert money.dollars(Decimal("-0.001")) == "$0.00"  # rounds to zero: no minus sign
    assert money.dollars(Decimal("999.995")) == "$1,000.00"
    assert money.dollars(None) == ""
    assert money.text(Decimal("285129")) == "285129.00"


def test_exact_text_keeps_every_digit_sent() -> None:
    assert money.exact_text(Decimal("125")) == "125.00"
    assert money.exact_text(Decimal("12.345")) == "12.345"
    assert money.exact_text(None) is None


def test_storage_form_round_trips_exactly() -> None:
    for value in (Decimal("125.00"), Decimal("0.10"), Decimal("-3.5"), Decimal("12.345")):
        stored = money.to_storage(value)
        assert stored == str(value)
        assert money.from_storage(stored) == value and str(money.from_storage(stored)) == str(value)
    assert money.to_storage(None) is None and money.from_storage(None) is None
    assert money.from_storage(Decimal("1.10")) == Decimal("1.10")


def test_the_outputs_and_the_parser_use_the_one_definition() -> None:
    assert writers.money is money.text
    assert serialize.money is money.exact_text
    assert money.ZERO == 0 and money.ZERO.as_tuple().exponent == -2
    assert money.CENT == Decimal("0.01") == Decimal(1).scaleb(-money.PLACES)


def test_no_other_module_defines_its_own_quantum_or_zero() -> None:
    """A second ``Decimal("0.01")``/``ZERO = Decimal(...)``/``.quantize(`` is a second definition."""
    pattern = re.compile(r"""Decimal\(["']0(\.0+)?["']\)|Decimal\(["']0\.01["']\)|^\s*(ZERO|CENT)\s*=|\.quantize\(""", re.M)
    found = []
    for top in ("engine", "parsers", "mappings"):
        for path in sorted((REPO / top).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            found += [f"{path.relative_to(REPO)}: {m.group(0).strip()}" for m in pattern.finditer(path.read_text(encoding="utf-8"))]
    found += [f"cli.py: {m.group(0).strip()}" for m in pattern.finditer((REPO / "cli.py").read_text(encoding="utf-8"))]
    assert found == []
    assert pattern.search((REPO / "money.py").read_text(encoding="utf-8")), "the check itself sees a definition"
