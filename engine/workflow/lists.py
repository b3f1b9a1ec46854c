"""The API's lists of what the engine decided (recoupments, credit balances, exceptions), read
from the rows ``run`` recorded (``store.decided``) rather than decided again: a page is one
indexed query.  When the rows are not those of the store's facts now, under this configuration
and day (facts a worker ingested since, an older store, another day), everything is decided once,
the decisions and the rows recorded again (as ``refunds.book`` does), and the page read from them."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from edirecon.engine.config import Config
from edirecon.engine.decide.facts import Facts
from edirecon.engine.record import decided
from edirecon.engine.record.writers import ORDER, rows, typed
from edirecon.engine.store import decided as stored
from edirecon.engine.store import records
from edirecon.engine.store.connection import Connection, Store
from edirecon.engine.workflow import refunds


@dataclass(frozen=True)
class Page:
    """One page: its items, and where the next starts (the last key given and how many items of
    that key were given so far), None when this one is the last."""

    items: list[dict[str, Any]]
    last: decided.Key | None
    given: int


def record(conn: Connection, outputs: dict[str, Sequence[dict[str, Any]]], facts_key: str, as_of: date, config: Config) -> int:
    """In the caller's transaction: record the rows of the API's lists of ``outputs`` (of
    ``writers.rows``), decided from the facts ``facts_key`` on ``as_of``."""
    return stored.record(conn, decided.records(outputs), facts_key, refunds.config_key(config), as_of, refunds.now())


def current(conn: Connection, as_of: date, config: Config) -> bool:
    """Whether the recorded rows are those of the store's facts now, under ``config``, on ``as_of``."""
    if os.environ.get(refunds.FULL_ENV, "") not in ("", "0"):
        return False
    rec = stored.stamp(conn)
    return rec is not None and rec["as_of"] == as_of and rec["config"] == refunds.config_key(config) and rec["facts"] == records.facts_fingerprint(conn)


def page(store: Store, kind: str, as_of: date, config: Config, last: decided.Key | None, seen: int, limit: int) -> Page:
    """The items of the list ``kind`` after the ``seen`` items of key ``last`` (from the first when
    None), at most ``limit``: a page starts where the last ended even when items came and went
    between calls (none given twice, none after it skipped)."""
    if kind not in decided.KINDS:
        raise ValueError(kind)
    with store.engine.connect() as conn:
        if current(conn, as_of, config):
            return _read(conn, kind, last, seen, limit)
    b, facts_key = refunds._decided(store, as_of, config)
    with refunds._locked(store) as conn:
        refunds.record(conn, b, facts_key, history=False)
        record(conn, rows(b.decisions, as_of, b.facts.ingest_exceptions), facts_key, as_of, config)
        return _read(conn, kind, last, seen, limit)


def refund_book(store: Store, refund_id: str, as_of: date, config: Config) -> refunds.Book:
    """The refund ``refund_id`` read with its claim-number closure decided (``GET
    /api/v1/refunds/{id}``).  When the recorded decisions are current and neither it nor any
    other refund is to sync (no person acted since the last sync, the workflow follows every kept
    refund), a sync would change nothing: the closure is decided and the refund read without
    writing (no wait on the workflow's lock); else as ``refunds.refunds_book``."""
    with store.engine.connect() as conn:
        if refunds._current(conn, as_of, config) and not refunds._dirty(conn):
            pcns = sorted(set(records.claim_numbers(conn, [refund_id]).values()))
            keys = refunds.closure(conn, pcns) if pcns else []
            facts = refunds.load(conn, keys) if keys else Facts([], [], [], [], [], [], {})
            b = refunds.Book(as_of, config, facts, refunds.decide(facts, as_of, config))
            refunds._read(conn, b, [refund_id])
            return b
    return refunds.refunds_book(store, [refund_id], as_of, config)


def sync_changes(store: Store, as_of: date, config: Config) -> None:
    """Before the changes feed is read: sync the refunds a person acted on since their last sync
    and those the recorded decisions have that the workflow does not follow yet, as
    ``refunds.refunds_book(store, [])`` does (everything when the records are stale); when there
    are none and the records are current, nothing is written (no wait on the workflow's lock)."""
    with store.engine.connect() as conn:
        if refunds._current(conn, as_of, config) and not refunds._dirty(conn):
            return
    refunds.refunds_book(store, [], as_of, config)


def _read(conn: Connection, kind: str, last: decided.Key | None, seen: int, limit: int) -> Page:
    key = None if last is None else decided.sort_text(last)
    found = stored.after(conn, kind, key, limit + 1 + (seen if key is not None else 0))
    equal = 0
    while key is not None and equal < len(found) and found[equal][0] == key:
        equal += 1
    skip = min(seen, equal) if key is not None else 0
    rest = found[skip:]
    chosen = rest[:limit]
    if len(rest) <= limit or not chosen:
        return Page([json.loads(item) for _, item in chosen], None, 0)
    last_text = chosen[-1][0]
    given = sum(1 for k, _ in chosen if k == last_text) + (skip if last_text == key else 0)
    return Page([json.loads(item) for _, item in chosen], decided.key_of(last_text), given)


def recorded_rows(conn: Connection, config: Config) -> dict[str, list[dict[str, Any]]] | None:
    """The recorded rows of recoupments and exceptions as ``writers.rows`` gives them (amounts
    ``Decimal``, days ``date``, in output order: ``writers.ORDER``), when they are those of the
    store's facts now under ``config`` (None otherwise): what ``report`` reads of them instead of
    deciding the whole store.  Whatever the day they were decided on: the day decides only when a
    refund was first identified and a credit balance's days in credit, neither of which is in them."""
    if not rows_current(conn, config):
        return None
    out: dict[str, list[dict[str, Any]]] = {}
    for kind in ("recoupments", "exceptions"):
        table = [typed(json.loads(item)) for item in stored.every(conn, kind)]
        table.sort(key=ORDER[kind])  # stable: rows of equal order stay in their recorded order
        out[kind] = table
    return out


def rows_current(conn: Connection, config: Config) -> bool:
    """Whether the recorded rows are those of the store's facts now, under ``config``, decided on
    whatever day (``recorded_rows``)."""
    if os.environ.get(refunds.FULL_ENV, "") not in ("", "0"):
        return False
    rec = stored.stamp(conn)
    return rec is not None and rec["config"] == refunds.config_key(config) and rec["facts"] == records.facts_fingerprint(conn)
