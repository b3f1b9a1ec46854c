"""JSON form of parsed records (``edirecon parse``): amounts as two-decimal strings, ISO dates.

Amounts keep every digit they were sent with: ``125`` becomes ``"125.00"``, and an amount sent with
more than two decimals (already a finding) is written exactly, never rounded.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from edirecon.money import exact_text

from .model import INSTITUTIONAL_FIELDS, Record
from .source import Source

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

#: Decimal fields that are quantities, not money (written as sent, without forcing two decimals)
QUANTITY_FIELDS = frozenset({"units", "quantity", "original_units", "paid_units"})
#: list-of-pairs fields and the names of their two members
PAIR_FIELDS = {
    "references": ("qualifier", "value"),
    "secondary_ids": ("qualifier", "value"),
    "diagnosis_codes": ("qualifier", "code"),
    "amounts": ("qualifier", "amount"),
    "numbers": ("qualifier", "number"),
}
#: an amount as a string with (at least) two decimals, never rounded (``edirecon.money``)
money = exact_text


def _value(name: str, value: object) -> object:
    """The JSON value of a record's field (what ``json.dumps`` writes)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, Decimal):
        return str(value) if name in QUANTITY_FIELDS else money(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Source):
        return value.as_dict()
    if dataclasses.is_dataclass(value):
        return _object(value)
    if isinstance(value, (list, tuple)):
        pair = PAIR_FIELDS.get(name)
        if pair is not None:
            return [{pair[0]: q, pair[1]: _value("amount" if pair[1] == "amount" else "", x)} for q, x in value]
        return [_value(name, item) for item in value]
    raise TypeError(f"cannot serialise {type(value).__name__} in field {name!r}")  # pragma: no cover


def _object(obj: DataclassInstance | type[DataclassInstance]) -> dict[str, object]:
    return {f.name: _value(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)}


def record_dict(record: Record) -> dict[str, object]:
    """The JSON object of one record: ``record`` and ``transaction_type`` first, ``source`` last."""
    out: dict[str, object] = {"record": record.record, "transaction_type": record.transaction_type}
    body = _object(record)
    body.pop("transaction_type", None)
    if record.record == "claim" and record.transaction_type != "837I":
        for name in INSTITUTIONAL_FIELDS:
            del body[name]
    source = body.pop("source")
    out.update(body)
    out["source"] = source
    return out
