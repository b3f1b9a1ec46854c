"""Money, defined once: the quantum, zero, and how an amount is read, quantised, written and stored.

An amount is a :class:`~decimal.Decimal`, never a float.  Parsers, the engine, the store and the
outputs all take these definitions from here (``edirecon.money``), which imports nothing but
:mod:`decimal`, so every stage, the pure rules of ``engine/decide/`` included, may use it.

* ``CENT`` is the quantum of an amount written out (two decimal places); ``ZERO`` is ``0.00``.
* :func:`parse` reads decimal text ("125", "-12.50", ".5") and refuses what is not an amount.
* :func:`quantise` rounds to the cent (the decimal context's rounding, half to even); :func:`text`
  is the two-decimal text every CSV and JSON cell shows; :func:`dollars` the form people read in the
  PDFs and the HTML (``$285,129.00``); :func:`exact_text` is the JSON
  form of a parsed amount, which keeps every digit sent (``edirecon parse``).
* :func:`to_storage` / :func:`from_storage`: on SQLite an amount is stored as its exact decimal
  text (SQLite has no decimal type; its NUMERIC is a binary float); on PostgreSQL it is
  ``NUMERIC(12,2)`` (``engine/store/schema.py``, ``Money``).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

#: the decimal places of an amount (more is an ``AMOUNT_PRECISION`` finding of the reader)
PLACES = 2
#: the quantum of an amount written out: two decimal places
CENT = Decimal("0.01")
#: zero, with the two decimal places of an amount
ZERO = Decimal("0.00")


def parse(text: str) -> Decimal | None:
    """An amount from decimal text; None when the text is not a finite decimal number written
    without spaces or an exponent marker at its end (``"12.3.4"``, ``"NaN"``, ``"1 2"``, ``""``)."""
    if not text or " " in text or text[-1] in "Ee":
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def quantise(value: Decimal) -> Decimal:
    """The amount rounded to the cent (``CENT``)."""
    return value.quantize(CENT)


_texts: dict[Decimal, str] = {}


def text(value: Decimal | None) -> str:
    """The two-decimal text of an amount ("" for None), as every output writes it.  The same few
    thousand amounts recur across a run's rows: each is converted once."""
    if value is None:
        return ""
    got = _texts.get(value)
    if got is None:
        if len(_texts) > 100_000:
            _texts.clear()
        got = _texts[value] = str(quantise(Decimal(value)))
    return got


def dollars(value: Decimal | None) -> str:
    """An amount as people read it, in the PDFs and the HTML: ``$285,129.00``, ``-$12.50`` ("" for
    None).  CSV and JSON keep :func:`text` (``285129.00``), which billing systems read."""
    if value is None:
        return ""
    amount = quantise(Decimal(value))
    return f"{'-' if amount < 0 else ''}${abs(amount):,.2f}"


def exact_text(value: Decimal | None) -> str | None:
    """The JSON text of a parsed amount: at least two decimals (``125`` is ``"125.00"``), and an
    amount sent with more (already an ``AMOUNT_PRECISION`` finding) exactly, never rounded."""
    if value is None:
        return None
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        return str(value)
    return str(quantise(value))


def to_storage(value: object) -> object:
    """A Decimal as its exact text, SQLite's storage form of an amount (other values as they are)."""
    return str(value) if type(value) is Decimal else value


def from_storage(value: object) -> Decimal | None:
    """An amount as a store gives it back (Decimal from PostgreSQL, exact text from SQLite)."""
    if value is None:
        return None
    return value if isinstance(value, Decimal) else Decimal(value)  # type: ignore[arg-type]
