"""The items of the API's lists of what the engine decided (recoupments, credit balances,
exceptions) as ``run`` records them in the store (``store.decided``) and the API pages them: each
row as its JSON item, with the key that orders it.

A key is a tuple of texts (numbers zero-padded, None empty), compared part by part; ``sort_text``
joins its parts into one text that a database orders exactly as Python orders the tuples (code
point by code point: SQLite's default collation, PostgreSQL's "C"), so a page is one indexed query.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from edirecon import money
from edirecon.engine.record.writers import Rendered, balance_order

Key = tuple[str, ...]

#: the lists of the API, by the name of their output
KINDS = ("recoupments", "credit_balances", "exceptions")

# the parts of a key are joined by "\x01\x01"; inside a part "\x00" is "\x01\x02" and "\x01" is
# "\x01\x03": the order of the texts is the order of the tuples, and no NUL reaches PostgreSQL
_SEP = "\x01\x01"
_ESCAPE = str.maketrans({"\x00": "\x01\x02", "\x01": "\x01\x03"})
_UNESCAPE = {"\x02": "\x00", "\x03": "\x01"}


#: the types ``jsonable`` gives back as they are (checked by exact type first: a row of the lists
#: is mostly texts and numbers, and the API's lists record about one row per encounter)
_AS_IS = frozenset({str, int, bool, type(None)})


def jsonable(value: Any) -> Any:
    """A value as JSON: an amount as its two-decimal text, a day ISO, a time ISO in UTC, lists and objects
    through; never a float."""
    if type(value) in _AS_IS:
        return value
    if type(value) is dict:
        return {k: v if type(v) in _AS_IS else jsonable(v) for k, v in value.items()}
    if isinstance(value, Decimal):
        return money.text(value)
    if isinstance(value, datetime):  # the store's times are naive UTC
        return value.isoformat() + "Z" if value.tzinfo is None else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def key_part(value: Any) -> str:
    """A part of a sort key as text ordered as the value: numbers zero-padded, None empty."""
    if value is None:
        return ""
    if isinstance(value, int):
        return f"{value:020d}"
    return str(value)


_KEYS: dict[str, Callable[[dict[str, Any]], Key]] = {
    "recoupments": lambda r: tuple(map(key_part, (r["kind"], r["trace_number"], r["payer_claim_control_number"], r["recoupment_id"]))),
    "exceptions": lambda x: tuple(
        map(
            key_part,
            (x["kind"], x["source_file"], x["segment"], x["patient_control_number"], x["detail"], x["payer_id"], x["severity"], money.text(x["amount"])),
        )
    ),
}


def keyed(outputs: dict[str, Sequence[dict[str, Any]]], name: str) -> Iterator[tuple[Key, dict[str, Any]]]:
    """(key, JSON item) of every row of the output ``name`` (recoupments or exceptions, of
    ``writers.rows``), in output order; the credit balances: ``_balance_items``."""
    key = _KEYS[name]
    return ((key(row), jsonable(row)) for row in outputs[name])


def _check_keys(table: Rendered) -> None:
    if len(table.keys) != len(table):
        raise RuntimeError("the credit balances were rendered without their keys")


def _balance_items(table: Sequence[dict[str, Any]]) -> Iterator[tuple[Key, str]]:
    """(key, item JSON) of every credit balance, in key order as the output has them
    (``balance_order``: two texts, which ``key_part`` leaves as they are), streamed: rendered by
    the shards, each item is the JSON line written, which ``jsonable`` of the row read back
    would give again (the same encoder, the same texts of amounts and days)."""
    if isinstance(table, Rendered):
        _check_keys(table)
        pairs: Iterator[tuple[Any, str]] = ((key, line.rstrip("\n")) for key, line in zip(table.keys, table.json_lines(), strict=True))
    else:
        pairs = ((balance_order(item), _dumps(jsonable(row))) for item, row in table.pairs())  # type: ignore[attr-defined]
    last: Key | None = None
    for order, item in pairs:
        key = tuple(map(key_part, order))
        if last is not None and key < last:
            raise RuntimeError("the credit balances are not in key order")
        last = key
        yield key, item


def _dumps(item: Any) -> str:
    return json.dumps(item, separators=(",", ":"))


def sort_text(key: Key) -> str:
    """The key as one text ordered as the tuple."""
    return _SEP.join(part.translate(_ESCAPE) for part in key)


def key_of(text: str) -> Key:
    """The key ``sort_text`` made ``text`` from."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\x01":
            nxt = text[i + 1]
            if nxt == "\x01":
                parts.append("".join(current))
                current = []
            else:
                current.append(_UNESCAPE[nxt])
            i += 2
            continue
        current.append(c)
        i += 1
    parts.append("".join(current))
    return tuple(parts)


def records(outputs: dict[str, Sequence[dict[str, Any]]]) -> Iterator[tuple[str, int, str, str]]:
    """(kind, position, sort text, item JSON) of every row of the API's lists, each list in the
    order of its keys (ties in output order).  The credit balances, about one per encounter, come
    in key order already and are streamed, never held all at once."""
    for name in KINDS:
        if name == "credit_balances":
            for seq, (key, text) in enumerate(_balance_items(outputs[name])):
                yield name, seq, sort_text(key), text
            continue
        ordered = sorted(keyed(outputs, name), key=lambda pair: pair[0])
        for seq, (key, item) in enumerate(ordered):
            yield name, seq, sort_text(key), _dumps(item)
