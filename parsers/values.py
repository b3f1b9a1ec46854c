"""Turning element text into typed values, with findings instead of exceptions.

Amounts become :class:`~decimal.Decimal` (never float), dates become :class:`~datetime.date`.
A malformed value becomes ``None`` plus a positioned finding; the rest of the record is kept.

What a finding repeats of the value (docs/findings.md): a malformed amount or quantity and an
unknown code are quoted (a money or code element holds no patient data); a date never is (it may
be a date of birth, and service dates are patient data too): the finding names the element and
what was expected, and its position points at the value in the file.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from edirecon import mappings
from edirecon.money import PLACES
from edirecon.money import parse as parse_amount

from .findings import Finding
from .model import Address, Contact, Party
from .source import Envelope, Source

#: code tables checked for unknown codes, by the name used in messages
_TABLES = {
    "CLP02": "claim_status_codes",
    "CAS01": "cas_group_codes",
    "CARC": "claim_adjustment_reason_codes",
    "PLB03-1": "plb_adjustment_reason_codes",
    "filing indicator": "claim_filing_indicator_codes",
    "frequency": "claim_frequency_codes",
}


class Values:
    """Typed-value conversion for one transaction set; collects findings into a shared list."""

    __slots__ = ("_amounts", "_dates", "_known", "_numbers", "env", "findings")

    def __init__(self, env: Envelope, findings: list[Finding]):
        self.env = env
        self.findings = findings
        self._known = {name: mappings.codes(table) for name, table in _TABLES.items()}
        # well-formed values repeat a lot (dates of one remittance, common charges): Decimal and
        # date are immutable, so one object serves every occurrence of the same text
        self._amounts: dict[str, Decimal] = {}
        self._dates: dict[str, date] = {}
        self._numbers: dict[str, Decimal] = {}

    def dec(self, text: str, name: str, seg: int, off: int) -> Decimal | None:
        """:meth:`amount` with a cache of well-formed amounts (the hot path of the 835 reader)."""
        value = self._amounts.get(text)
        if value is not None:
            return value
        if not text:
            return None
        whole, dot, frac = (text[1:] if text[0] == "-" else text).partition(".")
        if (whole.isdecimal() or (not whole and frac)) and (not dot or (frac.isdecimal() and len(frac) <= PLACES)):
            value = Decimal(text)
            if len(self._amounts) < 65536:
                self._amounts[text] = value
            return value
        return self.amount(text, name, seg, off)

    def at(self, seg: int, off: int, loop: str = "") -> Source:
        return self.env.at(seg, off, loop)

    def find(self, code: str, message: str, seg: int, off: int, loop: str = "") -> None:
        self.findings.append(Finding.make(code, message, self.env.at(seg, off, loop)))

    def amount(self, text: str, name: str, seg: int, off: int) -> Decimal | None:
        """A monetary amount (X12 type R); None and a finding when malformed or empty."""
        if not text:
            return None
        value = parse_amount(text)
        if value is None:
            self.find("INVALID_AMOUNT", f"{name} is {text[:40]!r}; expected a decimal amount such as 125.00", seg, off)
            return None
        dot = text.find(".")
        if dot >= 0 and len(text) - dot > PLACES + 1:
            self.find("AMOUNT_PRECISION", f"{name} is {text!r}; amounts have at most two decimal places", seg, off)
        return value

    def number(self, text: str, name: str, seg: int, off: int) -> Decimal | None:
        """A quantity (units, days); None and a finding when malformed."""
        value = self._numbers.get(text)
        if value is not None:
            return value
        if not text:
            return None
        if text.isdecimal():
            value = self._numbers[text] = Decimal(text)
            return value
        try:
            value = Decimal(text)
        except InvalidOperation:
            value = None
        if value is None or not value.is_finite() or " " in text:
            self.find("INVALID_NUMBER", f"{name} is {text[:40]!r}; expected a number", seg, off)
            return None
        return value

    def day(self, text: str, name: str, seg: int, off: int) -> date | None:
        """A CCYYMMDD date; None and a finding when it is not a real date."""
        value = self._dates.get(text)
        if value is not None:
            return value
        if len(text) == 8 and text.isdecimal():
            try:
                value = date(int(text[:4]), int(text[4:6]), int(text[6:]))
            except ValueError:
                pass
            else:
                if len(self._dates) < 65536:
                    self._dates[text] = value
                return value
        if text:
            self.find("INVALID_DATE", f"{name} is not a real date; expected CCYYMMDD", seg, off)
        return None

    def period(self, fmt: str, text: str, name: str, seg: int, off: int) -> tuple[date | None, date | None]:
        """A DTP/DTM date by its format qualifier: D8 (one date) or RD8 (CCYYMMDD-CCYYMMDD)."""
        if fmt == "RD8" or (len(text) == 17 and text[8:9] == "-"):
            start, _, end = text.partition("-")
            return self.day(start, name, seg, off), self.day(end, name, seg, off)
        if fmt in ("D8", "") or len(text) == 8:
            d = self.day(text, name, seg, off)
            return d, d
        if fmt == "DT" and len(text) >= 8:
            d = self.day(text[:8], name, seg, off)
            return d, d
        if fmt == "TM":  # a time of day only (e.g. DTP*096*TM discharge hour): no date to read
            return None, None
        if fmt == "D6" and len(text) == 6 and text.isdigit():
            # 4010 CCYY-less dates: a two-digit year is read as 20YY
            d = self.day("20" + text, name, seg, off)
            return d, d
        self.find("INVALID_DATE", f"{name} has date format {fmt[:10]!r}; expected D8 or RD8", seg, off)
        return None, None

    def code(self, kind: str, value: str, seg: int, off: int) -> str:
        """Keep a code as it is; flag it when it is not in its code list."""
        if value and value not in self._known[kind]:
            self.find("UNKNOWN_CODE", f"{kind} code {value!r} is not in edirecon's code list; kept as it is", seg, off)
        return value

    def required(self, value: str, name: str, seg: int, off: int) -> str:
        if not value:
            self.find("MISSING_ELEMENT", f"{name} is empty; it is required", seg, off)
        return value


def element(els: list[str], i: int) -> str:
    """Element ``i`` (1-based, as in CLP01) or "" when the segment is shorter."""
    return els[i] if len(els) > i else ""


def procedure(value: str, sep: str) -> tuple[str, str, tuple[str, ...]]:
    """A procedure composite (SV101, SV202, SV301, SVC01, SVC06, SVD03): qualifier, code, modifiers."""
    parts = value.split(sep)
    return parts[0], parts[1] if len(parts) > 1 else "", tuple(m for m in parts[2:6] if m)


def nm1_party(els: list[str], v: Values, seg: int, off: int, loop: str) -> Party:
    """The person or organisation of an NM1 segment (a TIN when NM108 says so)."""
    n = len(els)
    if n >= 10:  # the usual shape (NM1*IL*1*LAST*FIRST*MIDDLE**SUFFIX*MI*ID): no bounds to check
        qual, ident = els[8], els[9]
        return Party(els[1], els[3], els[4], els[5], els[7], qual, ident, None, "", ident if qual in _TIN_QUALIFIERS else "", [], v.at(seg, off, loop))
    qual = els[8] if n > 8 else ""
    ident = els[9] if n > 9 else ""
    return Party(
        entity=els[1] if n > 1 else "",
        name=els[3] if n > 3 else "",
        first_name=els[4] if n > 4 else "",
        middle_name=els[5] if n > 5 else "",
        suffix=els[7] if n > 7 else "",
        id_qualifier=qual,
        id=ident,
        tin=ident if qual in _TIN_QUALIFIERS else "",
        source=v.at(seg, off, loop),
    )


#: NM108 qualifiers whose NM109 is a tax id
_TIN_QUALIFIERS = ("24", "34", "FI")


def n3_address(party: Party, els: list[str], v: Values, seg: int, off: int, loop: str) -> None:
    """The N3 of a party's loop: its address lines (a second N3 replaces the first, as the guides
    allow one)."""
    party.address = Address([x for x in els[1:3] if x], source=v.at(seg, off, loop))


def n4_place(party: Party, els: list[str], v: Values, seg: int, off: int, loop: str) -> None:
    """The N4 of a party's loop: city, state, postal code and country, on the address its N3 began."""
    address = party.address
    if address is None:
        address = party.address = Address([], source=v.at(seg, off, loop))
    address.city = element(els, 1)
    address.state = element(els, 2)
    address.postal_code = element(els, 3)
    address.country = element(els, 4)


def per_contact(party: Party, els: list[str], v: Values, seg: int, off: int, loop: str) -> None:
    """A PER of a party's loop: the function, the name and the (qualifier, number) pairs."""
    numbers = [(els[i], els[i + 1]) for i in range(3, min(len(els) - 1, 9), 2) if els[i] and els[i + 1]]
    party.contacts.append(Contact(element(els, 1), element(els, 2), numbers, v.at(seg, off, loop)))
