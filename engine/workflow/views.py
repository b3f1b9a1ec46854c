"""What the ``edirecon refund`` commands show, as plain data the CLI prints: the rows of
``refund list``, the fields and audit trail of ``refund show``, and the outcome of an action.

Each function opens the store at a URL (it must exist: ``StoreUnavailable`` otherwise), syncs the
workflow with the engine's decisions (``refunds.book``), builds its answer and closes the store.
Amounts are text with two decimals (``writers.money``), days ISO text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from edirecon.engine.config import Config
from edirecon.engine.record.writers import money
from edirecon.engine.workflow.refunds import CONFIRMATION, STATUSES, Book, View, act_many, book, default_user, events, open_store
from edirecon.errors import UsageError


@dataclass(frozen=True)
class ListRow:
    """One line of ``refund list``."""

    refund_id: str
    status: str
    reason: str
    payee: str  # "payer <id>" or "patient"
    amount: str
    due_by: str  # "" when none
    flags: str  # overdue, engine status, double refund, escheatment candidate: comma separated


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


def refund_list(url: str, as_of: date, config: Config, statuses: Sequence[str] = (), payer: str | None = None, escheatment: bool = False) -> list[ListRow]:
    """The refunds of the store after syncing, in refund_id order: only those in one of
    ``statuses`` (none: all), to ``payer``, escheatment candidates (with ``escheatment``)."""
    unknown = sorted(set(statuses) - set(STATUSES))
    if unknown:
        raise UsageError(f"--status {unknown[0]!r} is not one of {', '.join(STATUSES)}")
    store = open_store(url)
    try:
        b = book(store, as_of, config)
    finally:
        store.dispose()
    return [
        _list_row(b, v)
        for v in b.views.values()
        if (not statuses or v.status in statuses) and (payer is None or v.state["payer_id"] == payer) and (not escheatment or b.escheatment_candidate(v))
    ]


def refund_detail(url: str, refund_id: str, as_of: date, config: Config) -> Detail:
    """One refund after syncing: what the engine found, its workflow state, its audit trail.
    An unknown id is a ``UsageError``."""
    store = open_store(url)
    try:
        b = book(store, as_of, config)
        v = b.view(refund_id)
        trail = events(store, refund_id)
    finally:
        store.dispose()
    history = [HistoryRow(ev["at"], ev["user_name"], ev["action"], ev["from_status"], ev["to_status"], ev["note"] or "") for ev in trail]
    return Detail(v.refund_id, _fields(b, v), history)


def take_action(
    url: str,
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
    store = open_store(url)
    try:
        who = user or default_user()
        outcomes = act_many(store, refund_ids, action, who, as_of, config, note, **details)
    finally:
        store.dispose()
    return who, [Acted(o.refund_id, o.view.status, None if o.refused is None else str(o.refused), o.view.state["assigned_to"] or "") for o in outcomes]


def _list_row(b: Book, v: View) -> ListRow:
    due = v.refund.due_by.isoformat() if v.refund is not None and v.refund.due_by else ""
    payee = f"payer {v.state['payer_id']}" if v.payee_type == "payer" else "patient"
    return ListRow(v.refund_id, v.status, v.state["reason"], payee, money(v.amount), due, _flags(b, v))


def _flags(b: Book, v: View) -> str:
    flags = []
    if v.status in ("pending", "held", "approved") and v.refund is not None and v.refund.due_by and b.as_of > v.refund.due_by:
        flags.append(f"overdue {(b.as_of - v.refund.due_by).days}d")
    if v.refund is not None and v.refund.status != "open":
        flags.append(f"engine:{v.refund.status}")
    if v.refund is None:
        flags.append("not identified by the engine")
    if v.status == "double_refund":
        flags.append(f"recover {money(v.state['double_refund_amount'])}")
    if b.escheatment_candidate(v):
        flags.append("escheatment candidate")
    return ", ".join(flags)


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
