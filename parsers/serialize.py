"""JSON form of parsed records (``edirecon parse``): amounts as two-decimal strings, ISO dates.

Amounts keep every digit they were sent with: ``125`` becomes ``"125.00"``, and an amount sent with
more than two decimals (already a finding) is written exactly, never rounded.

``record_dict`` is format version 1 (one self-contained object per record); ``CompactWriter`` and
``write_lines`` are format version 2, the default of ``edirecon parse`` (docs/commands.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

import orjson

from edirecon.money import exact_text

from . import model
from .document import ParsedTransaction
from .model import INSTITUTIONAL_FIELDS, Claim, ClaimPayment, Party, ProviderAdjustment, Record
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


# ------------------------------------------------------------------------------ format version 2
#: field kinds of the version-2 plan of a dataclass (see ``_plan``)
_PLAIN, _MONEY, _QTY, _DATE, _SOURCE, _OBJECT, _PAIRS, _LIST = range(8)
#: 837 claim fields written once on the transaction_set line (when every claim shares them)
HEADER_837 = ("version", "submitter", "receiver", "created_on")


def _plan(cls: type) -> tuple[tuple[str, int, str], ...]:
    """For each field of a dataclass: its name, how version 2 writes it, and for pairs whether
    the second member is money ("money") or text ("")."""
    out = []
    for f in dataclasses.fields(cls):
        name, typ = f.name, str(f.type)
        if name in PAIR_FIELDS:
            out.append((name, _PAIRS, "money" if PAIR_FIELDS[name][1] == "amount" else ""))
        elif typ.startswith("Source"):
            out.append((name, _SOURCE, ""))
        elif typ.startswith("Decimal"):
            out.append((name, _QTY if name in QUANTITY_FIELDS else _MONEY, ""))
        elif typ.startswith("date"):
            out.append((name, _DATE, ""))
        elif typ.startswith("list[str]") or typ.startswith("tuple[str"):
            out.append((name, _PLAIN, ""))
        elif typ.startswith("list["):
            out.append((name, _LIST, ""))
        elif typ[:1].isupper():
            out.append((name, _OBJECT, ""))
        else:
            out.append((name, _PLAIN, ""))
    return tuple(out)


#: nested objects written as arrays in version 2: the column name of each class
ARRAY_KINDS = {
    "Party": "party",
    "Address": "address",
    "Contact": "contact",
    "Adjustment": "adjustment",
    "ServiceLine": "service_line",
    "LineAdjudication": "line_adjudication",
    "OtherPayer": "other_payer",
    "ServicePayment": "service_payment",
}


#: record fields not in a record's values: on the transaction_set line, or implied by the record kind
_RECORD_SKIP = frozenset({"transaction_type", "remittance", *HEADER_837, "trusted"})


def _record_columns(cls: type) -> list[str]:
    names = [f.name for f in dataclasses.fields(cls) if f.name not in _RECORD_SKIP or f.name == "trusted"]
    # a claim read as another type than its transaction set's (TYPE_MISMATCH): that type, else null
    return [*names, "transaction_type"] if cls is Claim else names


def columns() -> dict[str, list[str]]:
    """The field order of every record kind and nested object kind of format version 2 (the ``format`` line)."""
    out = {cls.record: _record_columns(cls) for cls in (Claim, ClaimPayment, ProviderAdjustment)}
    out.update({kind: [f.name for f in dataclasses.fields(getattr(model, cls))] for cls, kind in ARRAY_KINDS.items()})
    return out


def _expression(name: str, typ: str, kind: int, extra: str, i: int) -> str:
    """The Python expression (for ``_compile``) of one field's version-2 value, ``None`` when absent or empty."""
    x = f"x{i}"
    get = f"({x} := o.{name})"
    if name == "trusted":
        return "(None if o.trusted else False)"
    if kind == _PLAIN:
        if typ == "str":
            return f"({get} or None)"
        if typ.startswith(("list", "tuple")):
            return f"(list({x}) if {get} else None)"
        return f"o.{name}"
    if kind == _PAIRS:
        body = f"[[q, M(a)] for q, a in {x}]" if extra else f"[list(p) for p in {x}]"
        return f"({body} if {get} else None)"
    if kind == _LIST:
        return f"([A(e, inner) for e in {x}] if {get} else None)"
    call = {_MONEY: f"M({x})", _QTY: f"str({x})", _DATE: f"{x}.isoformat()", _SOURCE: f"S({x}, loop)", _OBJECT: f"A({x}, inner)"}[kind]
    return f"({call} if {get} is not None else None)"


class CompactWriter:
    """Format version 2 of ``edirecon parse`` (docs/outputs.md).

    The first line is a ``format`` line (the version and the column order of every nested object
    kind); then per transaction set one ``transaction_set`` line (file, envelope ids, trust, and the
    remittance of an 835 or the header of an 837) followed by its records, each naming it by
    ``"ts"``.  Records are objects without null, empty or default fields; nested objects are arrays
    in their kind's column order (absent values ``null``, trailing ones cut); sources are
    ``[segment, offset, loop]`` (file and envelope ids are on the transaction_set line).  A party
    already written in the same transaction set is written as the segment number of its source.
    """

    def __init__(self) -> None:
        self.next_id = 1
        self._plans: dict[type, tuple[tuple[str, int, str], ...]] = {}
        self._money: dict[str, str | None] = {}
        self._env: tuple[str, str, str, str] = ("", "", "", "")
        self._parties: dict[int, tuple[object, int]] = {}
        self._type = ""
        self._encoders: dict[type, Callable[[object, str, str], list[object]]] = {}
        self._claim_columns = len(_record_columns(Claim)) - 1  # before its trailing transaction_type
        self._started = False

    def lines(self, parsed: ParsedTransaction) -> Iterator[dict[str, object]]:
        """The JSON objects of one transaction set, its transaction_set line first (the format
        line before the very first one)."""
        if not self._started:
            self._started = True
            yield {"record": "format", "format_version": 2, "columns": columns()}
        ts = parsed.transaction
        ident = self.next_id
        self.next_id += 1
        env = ts.envelope
        self._env = (env.file, env.isa13, env.gs06, env.st02)
        self._type = parsed.transaction_type
        self._parties = {}
        head: dict[str, object] = {
            "record": "transaction_set",
            "ts": ident,
            "transaction_type": parsed.transaction_type,
            "file": env.file,
            "ordinal": parsed.ordinal,
            "isa13": env.isa13,
            "gs06": env.gs06,
            "st02": env.st02,
            "trusted": ts.trusted,
            "source": self._source(ts.source),
        }
        shared: tuple[object, ...] = ()  # (remittance,) of an 835, or the 837 header values on the head line
        headed = False
        for record in parsed.records:
            if not headed:
                headed = True
                if type(record) is Claim:
                    shared = tuple(getattr(record, n) for n in HEADER_837)
                    for name, value in zip(HEADER_837, shared, strict=True):
                        self._put(head, name, value, _DATE if name == "created_on" else _PLAIN if name == "version" else _OBJECT, "")
                elif isinstance(record, (ClaimPayment, ProviderAdjustment)):
                    shared = (record.remittance,)
                    head["remittance"] = self._keyed(record.remittance)
                yield head
            line = self.record(record, ident)
            own = [getattr(record, n) for n in (HEADER_837 if type(record) is Claim else ("remittance",))]
            if any(mine is not theirs and mine != theirs for mine, theirs in zip(own, shared, strict=False)):
                # not that of the transaction_set line (a second BHT, say): this record carries its own
                line["header"] = self._keyed_fields(record, HEADER_837 if type(record) is Claim else ("remittance",))
            yield line
        if not headed:
            yield head

    def record(self, record: Record, ident: int) -> dict[str, object]:
        """The version-2 object of one record of transaction set ``ident``: its values in the
        column order of its kind (``columns()``), absent ones ``null``, trailing ones cut."""
        cls = type(record)
        enc = self._encoders.get(cls) or self._encoder(cls, _RECORD_SKIP)
        values = enc(record, "", record.source.loop if record.source is not None else "")
        if cls is Claim and record.transaction_type != self._type:
            values.extend([None] * (self._claim_columns - len(values)))
            values.append(record.transaction_type)
        return {"record": record.record, "ts": ident, "values": values}

    def _put(self, out: dict[str, object], name: str, value: object, kind: int, extra: str) -> None:
        if value is None or value == "" or value == [] or value == ():
            return
        out[name] = self._json(value, kind, extra)

    def _json(self, value: object, kind: int, extra: str, loop: str = "") -> object:
        if value is None:
            return None
        if kind == _PLAIN:
            return list(value) if isinstance(value, (list, tuple)) else value
        if kind == _MONEY:
            return self._money_text(value)  # type: ignore[arg-type]
        if kind == _QTY:
            return str(value)
        if kind == _DATE:
            return value.isoformat()  # type: ignore[attr-defined]
        if kind == _SOURCE:
            return self._source(value, loop)  # type: ignore[arg-type]
        if kind == _OBJECT:
            return self._array(value, loop)
        if kind == _PAIRS:
            if extra:
                return [[q, self._money_text(x)] for q, x in value]  # type: ignore[attr-defined]
            return [list(p) for p in value]  # type: ignore[attr-defined]
        return [self._array(item, loop) for item in value]  # type: ignore[attr-defined]

    def _keyed_fields(self, obj: object, names: tuple[str, ...]) -> dict[str, object]:
        """Some fields of *obj* by name, as the transaction_set line writes them."""
        out: dict[str, object] = {}
        for name, kind, extra in _plan(type(obj)):
            if name in names:
                value = getattr(obj, name)
                if kind == _OBJECT and name == "remittance":
                    out[name] = self._keyed(value)
                else:
                    self._put(out, name, value, kind, extra)
        return out

    def _keyed(self, obj: object) -> dict[str, object]:
        """A top-level object (the remittance) with field names, empty fields left out."""
        cls = type(obj)
        plan = self._plans.get(cls) or self._plans.setdefault(cls, _plan(cls))
        out: dict[str, object] = {}
        for name, kind, extra in plan:
            self._put(out, name, getattr(obj, name), kind, extra)
        return out

    def _array(self, obj: object, loop: str) -> object:
        """A nested object as the array of its fields in column order (a repeated party: its segment
        number); its sources leave out the loop when it is *loop*, the loop of the object holding it."""
        cls = type(obj)
        own = getattr(obj, "source", None)
        if cls is Party:
            seen = self._parties.get(id(obj))
            if seen is not None:
                return seen[1]
            if own is not None:
                if len(self._parties) >= 1024:  # memory stays flat: a party forgotten is written in full again
                    self._parties.clear()
                self._parties[id(obj)] = (obj, own.segment)  # the object is kept so its id is not reused
        enc = self._encoders.get(cls) or self._encoder(cls)
        return enc(obj, loop, loop if own is None else own.loop)

    def _encoder(self, cls: type, skip: frozenset[str] = frozenset()) -> Callable[[object, str, str], list[object]]:
        """A function writing the version-2 array of a *cls* object: its fields in column order (those
        in *skip* left out), trailing ``None`` cut; called with the loop its source is compared to
        and the loop its nested objects' sources are compared to.  Generated once per class."""
        enc = self._encoders.get(cls)
        if enc is None:
            hints = {f.name: str(f.type) for f in dataclasses.fields(cls)}
            fields = [(n, k, e) for n, k, e in _plan(cls) if n not in skip or n == "trusted"]
            items = ",\n        ".join(_expression(n, hints[n], k, e, i) for i, (n, k, e) in enumerate(fields))
            source = f"def enc(o, loop, inner):\n    out = [\n        {items},\n    ]\n    while out and out[-1] is None:\n        out.pop()\n    return out\n"
            scope: dict[str, object] = {"M": self._money_text, "S": self._source, "A": self._array}
            exec(compile(source, f"<version-2 encoder of {cls.__name__}>", "exec"), scope)  # generated from the dataclass fields only
            enc = self._encoders[cls] = scope["enc"]  # type: ignore[assignment]
        return enc  # type: ignore[return-value]

    def _money_text(self, value: Decimal | None) -> str | None:
        if value is None:
            return None
        key = str(value)
        text = self._money.get(key)
        if text is None:
            if len(self._money) > 8192:  # memory stays flat
                self._money.clear()
            text = self._money[key] = money(value)
        return text

    def _source(self, src: Source, loop: str = "") -> object:
        if src[5] == self._env[3] and src[0] == self._env[0] and src[3] == self._env[1] and src[4] == self._env[2]:
            return [src.segment, src.offset, src.loop] if src.loop and src.loop != loop else [src.segment, src.offset]
        return src.as_dict()


def write_lines(objects: Iterable[dict[str, object]], batch: int = 200) -> Iterator[str]:
    """JSON Lines text of *objects* (format version 2) by orjson (compact, UTF-8 as is), handed out
    *batch* lines at a time so memory does not grow with a transaction set's records."""
    dumps = orjson.dumps
    lines: list[bytes] = []
    for obj in objects:
        lines.append(dumps(obj))
        if len(lines) >= batch:
            yield b"\n".join(lines).decode() + "\n"
            lines = []
    if lines:
        yield b"\n".join(lines).decode() + "\n"
