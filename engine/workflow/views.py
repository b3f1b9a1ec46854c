"""What the ``edirecon refund`` commands show, as plain data the CLI prints: the rows of
``refund list`` (the work queue: filtered and sorted here, so that every front end lists the
same refunds) and their table, CSV and JSON, the fields and audit trail of ``refund show``, and
the outcome of an action.

Each function opens the store at a URL (it must exist: ``StoreUnavailable`` otherwise; or uses the
open ``Store`` given, as ``edirecon serve`` does for every request, its connections pooled), syncs the
workflow with the engine's decisions, builds its answer and closes the store: ``refund list`` reads
the recorded decisions (``refunds.listing``), ``refund show`` and the actions decide only the
encounters of their refunds (``refunds.refunds_book``; ``refund show`` without writing when
nothing waits to be synced: ``lists.refund_book``); a page of the work queue is sorted and paged
by the database (``refund_page``); a store whose records are stale is decided as a whole once
(``refunds.book``).
Amounts are text with two decimals (``edirecon.money.text``), days ISO text.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any

from edirecon import mappings
from edirecon.engine.config import Config
from edirecon.engine.record.csvout import Lines
from edirecon.engine.store.connection import Store
from edirecon.engine.store.records import Where
from edirecon.engine.workflow import lists
from edirecon.engine.workflow.refunds import (
    CONFIRMATION,
    STATUSES,
    TO_WORK,
    Book,
    Key,
    View,
    act_many,
    default_user,
    events,
    listing,
    listing_page,
    listing_sorted_page,
    open_store,
)
from edirecon.errors import UsageError
from edirecon.money import text as money

#: the payee types of ``refund list --payee-type``
PAYEE_TYPES = ("payer", "patient")
#: the formats of ``refund list --format``
LIST_FORMATS = ("table", "csv", "json")


@dataclass(frozen=True)
class ListRow:
    """One refund of ``refund list``; its fields, in order, are the columns of its CSV and the
    keys of its JSON objects (the names of the outputs' columns, docs/outputs.md)."""

    refund_id: str
    due_by: date | None
    days_overdue: int  # 0 unless overdue: still to be worked (pending, held, approved) after its due day
    workflow_status: str
    reason: str
    payee_type: str  # payer or patient
    payer_id: str  # "" for a patient refund
    payer_name: str  # "" for a patient refund
    patient_control_number: str  # the account; "" when the engine no longer identifies the refund
    patient_name: str  # "" when the engine no longer identifies the refund
    amount: str
    outstanding: str
    flags: str  # overdue, double refund to recover, escheatment candidate, engine status: comma separated
    assigned_to: str = ""  # whom the refund is assigned to (``refund assign``); "" nobody

    def record(self) -> dict[str, Any]:
        """The row as a JSON object: amounts as two-decimal strings, the due day ISO (or null)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["due_by"] = self.due_by.isoformat() if self.due_by else None
        return out


#: the columns of ``refund list --format csv`` (and the keys of ``--format json``)
LIST_COLUMNS = [f.name for f in fields(ListRow)]


@dataclass(frozen=True)
class HistoryRow:
    """One event of a refund's audit trail."""

    at: datetime  # UTC
    user: str
    action: str
    from_status: str | None  # None: the refund entered the workflow
    to_status: str
    note: str


@dataclass(frozen=True)
class Detail:
    """``refund show``: the labelled facts of one refund, in order (a label may repeat, e.g.
    ``evidence``), and its audit trail, oldest first."""

    refund_id: str
    fields: list[tuple[str, str]]
    history: list[HistoryRow]


@dataclass(frozen=True)
class Acted:
    """What came of an action on one refund: its status after it, or why it was refused."""

    refund_id: str
    status: str
    refused: str | None  # the reason (a NotAllowed's message); None when done
    assigned_to: str = ""  # whom it is assigned to after the action ("" nobody)


def refund_list(
    url: str | Store,
    as_of: date,
    config: Config,
    statuses: Sequence[str] = (),
    payer: str | None = None,
    escheatment: bool = False,
    *,
    overdue: bool = False,
    due_before: date | None = None,
    reasons: Sequence[str] = (),
    payee_type: str | None = None,
    assigned_to: str | None = None,
) -> list[ListRow]:
    """The work queue: the refunds of the store after syncing, by due day (none: last), then
    refund id.  Only those in one of ``statuses`` (none: all), to the payer id ``payer``,
    escheatment candidates (with ``escheatment``), overdue (with ``overdue``: still to be worked
    after their due day), due before ``due_before``, of one of ``reasons``, to a ``payee_type``,
    assigned to ``assigned_to`` (``""``: assigned to nobody).

    An unknown status, reason or payee type is a ``UsageError``, raised before the store is opened."""
    _one_of("--status", statuses, STATUSES)
    _one_of("--reason", reasons, tuple(mappings.registry("refund_reason")))
    _one_of("--payee-type", [payee_type] if payee_type is not None else [], PAYEE_TYPES)
    with _opened(url) as store:
        b = listing(store, as_of, config)
    payer_names = _payer_names(b) if any(v.refund is None for v in b.views.values()) else {}
    rows = [
        _list_row(b, v, payer_names)
        for v in b.views.values()
        if (not statuses or v.status in statuses)
        and (payer is None or v.state["payer_id"] == payer)
        and (not escheatment or b.escheatment_candidate(v))
        and (not reasons or v.state["reason"] in reasons)
        and (payee_type is None or v.payee_type == payee_type)
        and (not overdue or _days_overdue(b, v) > 0)
        and (due_before is None or _due_before(v, due_before))
        and (assigned_to is None or (v.state["assigned_to"] or "") == assigned_to)
    ]
    rows.sort(key=lambda r: (r.due_by or date.max, r.refund_id))
    return rows


#: how a page of the work queue is sorted (``refund_page``)
SORTS = ("due", "amount", "days_in_credit")


@dataclass(frozen=True)
class Page:
    """One page of the work queue: its rows, how many refunds pass the filters in all, the day the
    credit of each row shown arose (None: not known), where the page starts among them all (None:
    a page after a row, whose start is not counted) and whether more rows follow it."""

    rows: list[ListRow]
    total: int
    credit_since: dict[str, date | None]
    start: int | None = 0
    more: bool = False


def refund_page(
    url: str | Store,
    as_of: date,
    config: Config,
    statuses: Sequence[str] = (),
    payer: str | None = None,
    escheatment: bool = False,
    *,
    overdue: bool = False,
    due_before: date | None = None,
    reasons: Sequence[str] = (),
    payee_type: str | None = None,
    assigned_to: str | None = None,
    sort: str = "due",
    descending: bool = False,
    offset: int = 0,
    limit: int = 100,
    after: tuple[date | None, str] | None = None,
) -> Page:
    """The rows ``offset`` to ``offset + limit`` of the work queue with :func:`refund_list`'s
    filters (the same rows), sorted by due day (none last), amount, or days in credit (unknown
    last), then refund id; ``descending`` reverses the known ones.  The store filters; only the
    keys of the refunds that pass are sorted here, and only the page's rows are read whole.

    With ``after`` (a due day, None for none, and a refund id: the last row of the page before),
    the page starts at the first row after it in due-day order (``offset`` is then not used): a
    page after a cursor, wherever rows came and went since."""
    _one_of("--status", statuses, STATUSES)
    _one_of("--reason", reasons, tuple(mappings.registry("refund_reason")))
    _one_of("--payee-type", [payee_type] if payee_type is not None else [], PAYEE_TYPES)
    _one_of("sort", [sort], SORTS)
    if after is not None and (sort != "due" or descending):
        raise UsageError("a page after a refund is in due-day order, earliest first")
    where = Where(
        statuses=tuple(statuses),
        payer=payer,
        reasons=tuple(reasons),
        payee_type=payee_type,
        assigned_to=assigned_to,
        due_before=due_before,
        overdue_on=as_of if overdue else None,
        to_work=tuple(sorted(TO_WORK)),
        escheatment_sent_by=as_of - timedelta(days=config.refunds.escheatment_days) if escheatment else None,
    )
    with _opened(url) as store:
        if sort in ("due", "amount"):  # the database sorts and pages
            b, shown, total, start, more = listing_sorted_page(store, as_of, config, where, descending, offset, limit, after, sort == "amount")
        else:
            # by days in credit: the recorded day each credit arose, sorted here
            b, ordered = listing_page(store, as_of, config, where, lambda keys: _by_days_in_credit(keys, descending), offset, limit)
            total, shown, start = len(ordered), [k[0] for k in ordered[offset : offset + limit]], offset
            more = offset + len(shown) < total
    payer_names = _payer_names(b) if any(v.refund is None for v in b.views.values()) else {}
    return Page([_list_row(b, b.views[rid], payer_names) for rid in shown], total, {rid: b.views[rid].arose_on for rid in shown}, start, more)


def _by_days_in_credit(keys: list[Key], descending: bool) -> list[Key]:
    """Fewest days in credit first (the latest day the credit arose; ``descending``: most days
    first), then refund id; those whose day is not known last, by refund id."""
    known = sorted((k for k in keys if k[3] is not None), key=lambda k: (k[3], k[0]), reverse=not descending)
    return known + sorted((k for k in keys if k[3] is None), key=lambda k: k[0])


def _one_of(option: str, given: Sequence[str], known: Sequence[str]) -> None:
    unknown = [g for g in given if g not in known]
    if unknown:
        raise UsageError(f"{option} {unknown[0]!r} is not one of {', '.join(known)}")


def refund_detail(url: str | Store, refund_id: str, as_of: date, config: Config) -> Detail:
    """One refund after syncing: what the engine found, its workflow state, its audit trail.
    An unknown id is a ``UsageError``."""
    return refund_detail_book(url, refund_id, as_of, config)[0]


def refund_detail_book(url: str | Store, refund_id: str, as_of: date, config: Config) -> tuple[Detail, Book]:
    """:func:`refund_detail`, with the book it was read from (its refund's encounters decided:
    the take-backs tied to it, without deciding them again)."""
    with _opened(url) as store:
        b = lists.refund_book(store, refund_id, as_of, config)
        v = b.view(refund_id)
        trail = events(store, refund_id)
    history = [HistoryRow(ev["at"], ev["user_name"], ev["action"], ev["from_status"], ev["to_status"], ev["note"] or "") for ev in trail]
    return Detail(v.refund_id, _fields(b, v), history), b


def take_action(
    url: str | Store,
    refund_ids: list[str],
    action: str,
    user: str | None,
    as_of: date,
    config: Config,
    note: str = "",
    **details: Any,
) -> tuple[str, list[Acted]]:
    """``refunds.act_many`` on the store at ``url`` by ``user`` (None: the OS user): who acted,
    and the outcome for each refund."""
    if not refund_ids:
        raise UsageError("no refund id: give refund ids (RF-…) or --from FILE")
    with _opened(url) as store:
        who = user or default_user()
        outcomes = act_many(store, refund_ids, action, who, as_of, config, note, **details)
    return who, [Acted(o.refund_id, o.view.status, None if o.refused is None else str(o.refused), o.view.state["assigned_to"] or "") for o in outcomes]


@contextmanager
def _opened(where: str | Store) -> Iterator[Store]:
    """The store at the URL ``where``, opened for the call and closed after it; or the open store
    ``where``, left open."""
    if isinstance(where, Store):
        yield where
        return
    store = open_store(where)
    try:
        yield store
    finally:
        store.dispose()


def _due_by(v: View) -> date | None:
    return v.refund.due_by if v.refund is not None else None


def _due_before(v: View, day: date) -> bool:
    due = _due_by(v)
    return due is not None and due < day


def _days_overdue(b: Book, v: View) -> int:
    """Days past the due day of a refund still to be worked (pending, held, approved); else 0."""
    due = _due_by(v)
    return (b.as_of - due).days if v.status in TO_WORK and due is not None and b.as_of > due else 0


def _payer_names(b: Book) -> dict[str, str]:
    """payer id -> its name in the payments (for a refund the engine no longer identifies)."""
    if b.payer_names is not None:  # read from the store (``refunds.listing``)
        return b.payer_names
    names: dict[str, str] = {}
    for p in b.facts.payments:
        if p.payer_name:
            names.setdefault(p.payer_id, p.payer_name)
    return names


def _list_row(b: Book, v: View, payer_names: dict[str, str]) -> ListRow:
    r = v.refund
    payer_id = v.state["payer_id"] if v.payee_type == "payer" else ""
    payer_name = (r.payer_name if r is not None else payer_names.get(payer_id, "")) if payer_id else ""
    return ListRow(
        refund_id=v.refund_id,
        due_by=_due_by(v),
        days_overdue=_days_overdue(b, v),
        workflow_status=v.status,
        reason=v.state["reason"],
        payee_type=v.payee_type,
        payer_id=payer_id,
        payer_name=payer_name,
        patient_control_number=r.encounter.pcn if r is not None else "",
        patient_name=r.encounter.patient_name if r is not None else "",
        amount=money(v.amount),
        outstanding=money(v.outstanding),
        flags=_flags(b, v),
        assigned_to=v.state["assigned_to"] or "",
    )


#: (workflow status, engine status) where the first says the second
_SAID = {("settled", "settled_by_recoupment"), ("double_refund", "settled_by_recoupment"), ("acknowledged", "acknowledged")}


def _flags(b: Book, v: View) -> str:
    """What asks for attention first: overdue, a double refund to recover, an escheatment
    candidate; then what the engine says of it, unless the workflow status says it already."""
    flags = []
    days = _days_overdue(b, v)
    if days:
        flags.append(f"overdue {days}d")
    if v.status == "double_refund":
        flags.append(f"recover {money(v.state['double_refund_amount'])}")
    if b.escheatment_candidate(v):
        flags.append("escheatment candidate")
    if v.refund is None:
        flags.append("not identified by the engine")
    elif v.refund.status != "open" and (v.status, v.refund.status) not in _SAID:
        flags.append(f"engine:{v.refund.status}")
    return ", ".join(flags)


# -- refund list: table, CSV, JSON ----------------------------------------------------------------

#: the width the table of ``refund list`` keeps to
TABLE_WIDTH = 120
#: the columns of the table whose text is cut to fit: (header, widest, narrowest it is cut to)
_NAMES = (("account", 20, 10), ("patient", 24, 16), ("payee", 24, 16))
_GAP = "  "


def list_table(rows: Sequence[ListRow], width: int = TABLE_WIDTH) -> str:
    """``refund list`` as a table for people: a header, one line per refund, a count.  Each line
    keeps to ``width`` columns: ids, statuses, days and amounts are shown whole; the account, the
    patient and the payee (the payer's name, or ``patient``) are cut (``…``) to make room for the
    flags, and the flags are cut at the last column (the CSV and JSON keep everything whole).
    Control characters of names from 837/835 files are shown as ``?``."""
    fixed = [
        ("refund_id", [r.refund_id for r in rows]),
        ("status", [r.workflow_status for r in rows]),
        ("due_by", [r.due_by.isoformat() if r.due_by else "" for r in rows]),
        ("amount", [r.amount for r in rows]),
    ]
    names = [
        [_printable(r.patient_control_number) for r in rows],
        [_printable(r.patient_name) for r in rows],
        [_printable(r.payer_name or r.payer_id) if r.payee_type == "payer" else "patient" for r in rows],
    ]
    flags = [r.flags for r in rows]
    fixed_widths = [max([_width(h), *map(_width, values)]) for h, values in fixed]
    name_widths = [min(widest, max([_width(h), *map(_width, values)])) for (h, widest, _), values in zip(_NAMES, names, strict=True)]
    floors = [min(narrowest, w) for (_, _, narrowest), w in zip(_NAMES, name_widths, strict=True)]
    used = sum(fixed_widths) + sum(name_widths) + len(_GAP) * (len(fixed) + len(names))
    need = max([0, *map(_width, flags)])
    while used + need > width:
        # the name with the most to spare above its narrowest gives a column (the first of equals)
        spare = [w - f for w, f in zip(name_widths, floors, strict=True)]
        if max(spare) <= 0:
            break
        name_widths[spare.index(max(spare))] -= 1
        used -= 1
    flag_width = max(width - used, len("flags"))
    widths = [*fixed_widths, *name_widths]

    def line(cells: list[str], flag: str) -> str:
        out = [_fit(c, w, right=(i == 3)) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return (_GAP.join([*out, _fit(flag, flag_width)])).rstrip()

    lines = [line([h for h, _ in fixed] + [h for h, _, _ in _NAMES], "flags")]
    for i in range(len(rows)):
        lines.append(line([values[i] for _, values in fixed] + [values[i] for values in names], flags[i]))
    lines.append(f"{len(rows)} refund(s)")
    return "\n".join(lines) + "\n"


def list_csv(rows: Sequence[ListRow]) -> str:
    """``refund list --format csv``: a header and one line per refund, every line made by
    ``csvout`` (text cells that a spreadsheet would take for a formula start with ``'``)."""
    lines = Lines(LIST_COLUMNS)
    out = [lines.header()]
    for r in rows:
        rec = r.record()
        out.append(lines.row([rec[c] if rec[c] is not None else "" for c in LIST_COLUMNS]))
    return "".join(out)


def list_json(rows: Sequence[ListRow]) -> str:
    """``refund list --format json``: one JSON document, a list of objects (``ListRow.record``),
    the text as it came (escaped as JSON, never neutralised)."""
    return json.dumps([r.record() for r in rows], indent=1, ensure_ascii=False) + "\n"


def _printable(text: str) -> str:
    """Text for a terminal: control and format characters (escape sequences, line breaks,
    bidirectional overrides) as ``?``."""
    return "".join("?" if unicodedata.category(c)[0] == "C" else c for c in text)


def _char_width(c: str) -> int:
    if unicodedata.combining(c):
        return 0
    return 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1


def _width(text: str) -> int:
    """The columns a text takes on a terminal (East Asian wide characters take two)."""
    return sum(map(_char_width, text))


def _fit(text: str, width: int, right: bool = False) -> str:
    """``text`` padded to ``width`` columns, or cut to them with a closing ``…``."""
    if _width(text) > width:
        kept, used = [], 0
        for c in text:
            if used + _char_width(c) > width - 1:
                break
            kept.append(c)
            used += _char_width(c)
        text = "".join(kept) + "…"
    pad = " " * (width - _width(text))
    return pad + text if right else text + pad


def _iso(d: date | None) -> str:
    return d.isoformat() if d else ""


def _fields(b: Book, v: View) -> list[tuple[str, str]]:
    """The labelled facts of ``refund show``: the engine's refund (or what the workflow kept of
    it), then what people and payers did."""
    s, r = v.state, v.refund
    fields = [("status", v.status)]
    if s["assigned_to"]:
        fields.append(("assigned to", s["assigned_to"]))
    if r is not None:
        e = r.encounter
        fields += [
            ("engine status", r.status + (f" (recouped {money(r.recouped)})" if r.recouped else "")),
            ("reason", r.reason),
            ("payee", f"payer {r.payer_id} {r.payer_name}" if r.payee_type == "payer" else f"patient {e.patient_name}"),
            ("claim", e.pcn + (f", payer claim number {r.icn}" if r.icn else "") + f", billing NPI {e.npi}"),
            ("patient", f"{e.patient_name}, member {e.member_id}, service {_iso(e.service_from)}"),
            ("amount", f"{money(r.amount)} (outstanding {money(v.outstanding)})"),
            ("identified on", f"{_iso(r.identified_on)}, due by {_iso(r.due_by)}" + (f", credit since {v.arose_on.isoformat()}" if v.arose_on else "")),
        ]
        for ev in r.evidence:
            if "patient_payment_id" in ev:
                fields.append(("evidence", f"patient payment {ev['patient_payment_id']} of {ev['paid_on'].isoformat()}: {money(ev['amount'])}"))
            else:
                fields.append(
                    (
                        "evidence",
                        f"{ev.get('role', 'payment')}: payer {ev['payer_id']} trace {ev['trace_number']} CLP07 "
                        f"{ev['payer_claim_control_number']} paid {money(ev['paid'])} at {ev['file']}:{ev['segment']}",
                    )
                )
    else:
        fields += [("reason", s["reason"]), ("amount", f"{money(s['amount'])} (the engine no longer identifies it)")]
    if s["sent_on"] is not None:
        fields.append(("sent", f"{s['method']} {s['reference']} of {money(s['sent_amount'])} on {s['sent_on'].isoformat()}"))
    if s["acknowledged_by"]:
        by = s["acknowledged_by"]
        source = f"the payer's {by}" if by.startswith(CONFIRMATION) else f"PLB {by}"
        fields.append(("acknowledged", f"{money(s['acknowledged_amount'])} on {_iso(s['acknowledged_on'])} ({source})"))
    if s["double_refund_amount"]:
        fields.append(("double refund", f"{money(s['double_refund_amount'])} to recover: {s['double_refund_traces']}"))
    if s["recovered_on"] is not None:
        fields.append(("recovered", f"{money(s['recovered_amount'])} on {s['recovered_on'].isoformat()}"))
    if s["cashed_on"] is not None:
        fields.append(("cashed", s["cashed_on"].isoformat()))
    if b.escheatment_candidate(v):
        fields.append(
            ("escheatment", f"sent {s['sent_on'].isoformat()} and not cashed for {b.config.refunds.escheatment_days} days: unclaimed-property candidate")
        )
    return fields
