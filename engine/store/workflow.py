"""The SQL of the refund workflow (``engine.workflow.refunds``): its lock, the state of each refund
(``refund_workflow``) and the audit trail (``refund_events``), in the caller's transaction.

The workflow decides what changes and when; these functions only read and write its rows, with
the values given.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, func, select, text, update

from edirecon.engine.store import schema as t
from edirecon.engine.store.bulk import insert_dicts

#: the transaction-level advisory lock (PostgreSQL) held while the workflow syncs or changes refunds
WORKFLOW_LOCK = 6200300


def lock(conn: Connection) -> None:
    """Take the workflow's lock in the caller's write transaction: on PostgreSQL the advisory lock
    ``WORKFLOW_LOCK``; on SQLite the write transaction (``Store.write()``) is the lock already."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"SELECT pg_advisory_xact_lock({WORKFLOW_LOCK})"))


def states(conn: Connection, refund_ids: Collection[str] | None = None) -> list[dict[str, Any]]:
    """Every refund's ``refund_workflow`` row (or those of ``refund_ids``), in refund id order."""
    return sorted(states_by_id(conn, refund_ids).values(), key=lambda r: str(r["refund_id"]))


def states_by_id(conn: Connection, refund_ids: Collection[str] | None = None) -> dict[str, dict[str, Any]]:
    """refund id -> its ``refund_workflow`` row (every refund's, or those of ``refund_ids``)."""
    if refund_ids is None:
        return {r["refund_id"]: dict(r) for r in conn.execute(select(t.refund_workflow)).mappings()}
    out: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(sorted(refund_ids)):
        out.update((r["refund_id"], dict(r)) for r in conn.execute(select(t.refund_workflow).where(t.refund_workflow.c.refund_id.in_(chunk))).mappings())
    return out


def taken(conn: Connection) -> set[str]:
    """The PLB adjustments and confirmations that acknowledge a refund (``acknowledged_by``)."""
    w = t.refund_workflow.c
    return set(conn.execute(select(w.acknowledged_by).where(w.acknowledged_by != "").distinct()).scalars())


def new_state(conn: Connection, refund_id: str, status: str, reason: str, payee_type: str, payer_id: str, amount: Decimal, updated_at: datetime) -> None:
    """A refund met for the first time: its ``refund_workflow`` row, nothing sent or acknowledged yet."""
    new_states(conn, [(refund_id, status, reason, payee_type, payer_id, amount, updated_at)])


def new_states(conn: Connection, refunds: Sequence[tuple[str, str, str, str, str, Decimal, datetime]]) -> None:
    """``new_state`` of many refunds ((refund_id, status, reason, payee_type, payer_id, amount,
    updated_at) each), in one statement."""
    if refunds:
        insert_dicts(
            conn,
            t.refund_workflow,
            [
                {
                    "refund_id": refund_id,
                    "status": status,
                    "reason": reason,
                    "payee_type": payee_type,
                    "payer_id": payer_id,
                    "amount": amount,
                    "method": "",
                    "reference": "",
                    "acknowledged_by": "",
                    "double_refund_traces": "",
                    "updated_at": updated_at,
                }
                for refund_id, status, reason, payee_type, payer_id, amount, updated_at in refunds
            ],
        )


def change_state(conn: Connection, refund_id: str, values: dict[str, Any]) -> None:
    """Set ``values`` (column -> value) in the refund's ``refund_workflow`` row."""
    conn.execute(update(t.refund_workflow).where(t.refund_workflow.c.refund_id == refund_id).values(**values))


def add_event(conn: Connection, refund_id: str, at: datetime, user_name: str, action: str, from_status: str, to_status: str, note: str) -> None:
    """One ``refund_events`` row: a step of the refund's audit trail."""
    add_events(conn, [(refund_id, at, user_name, action, from_status, to_status, note)])


def add_events(conn: Connection, events: Sequence[tuple[str, datetime, str, str, str, str, str]]) -> None:
    """``add_event`` of many steps ((refund_id, at, user_name, action, from_status, to_status,
    note) each), in one statement; their ids follow the order given."""
    if events:
        columns = ("refund_id", "at", "user_name", "action", "from_status", "to_status", "note")
        insert_dicts(conn, t.refund_events, [dict(zip(columns, event, strict=True)) for event in events])


def acted_on(conn: Connection, actions: Sequence[str], refund_ids: Collection[str] | None = None) -> set[str]:
    """The refunds (of ``refund_ids``, or any) with an audit event of one of ``actions``."""
    e = t.refund_events.c
    if refund_ids is None:
        return set(conn.execute(select(e.refund_id).where(e.action.in_(actions)).distinct()).scalars())
    return {
        rid
        for chunk in _chunks(sorted(refund_ids))
        for rid in conn.execute(select(e.refund_id).where(e.action.in_(actions), e.refund_id.in_(chunk)).distinct()).scalars()
    }


def events(conn: Connection, refund_id: str) -> list[dict[str, Any]]:
    """The refund's ``refund_events`` rows, oldest first."""
    return [dict(r) for r in conn.execute(select(t.refund_events).where(t.refund_events.c.refund_id == refund_id).order_by(t.refund_events.c.id)).mappings()]


def events_after(conn: Connection, after_id: int, limit: int) -> list[dict[str, Any]]:
    """At most ``limit`` ``refund_events`` rows of any refund whose id is above ``after_id``, in id
    order (the changes feed of the API).  Every event is written holding the workflow's lock
    (``lock``), so ids become visible in order: a reader that resumes after the last id it saw
    misses none."""
    query = select(t.refund_events).where(t.refund_events.c.id > after_id).order_by(t.refund_events.c.id).limit(limit)
    return [dict(r) for r in conn.execute(query).mappings()]


def with_last_event(conn: Connection) -> list[dict[str, Any]]:
    """Every refund's ``refund_workflow`` row with its last ``refund_events`` row (the highest id) as
    ``last_action``, ``last_action_by``, ``last_action_at`` and ``last_note`` (None when it has no
    event), in refund id order: the rows of ``workflow.csv`` (``engine.record.workflow``)."""
    w, e = t.refund_workflow, t.refund_events
    last = select(e.c.refund_id, func.max(e.c.id).label("id")).group_by(e.c.refund_id).subquery()
    query = (
        select(
            w,
            e.c.action.label("last_action"),
            e.c.user_name.label("last_action_by"),
            e.c.at.label("last_action_at"),
            e.c.note.label("last_note"),
        )
        .select_from(w.outerjoin(last, last.c.refund_id == w.c.refund_id).outerjoin(e, e.c.id == last.c.id))
        .order_by(w.c.refund_id)
    )
    # sorted here too: the order of the ids is the same bytes whatever the database's collation
    return sorted((dict(r) for r in conn.execute(query).mappings()), key=lambda r: str(r["refund_id"]))


def _chunks(values: list[str], size: int = 1000) -> Iterator[list[str]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]
