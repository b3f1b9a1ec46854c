"""The SQL of the recorded decisions (``engine.workflow.refunds``: decisions recorded, not
recomputed): which facts and configuration the kept refunds and the workflow were last decided
and synced from (``decision_records``), the fingerprint of the fact tables that says whether they
still are, and the reads the ``refund`` commands make instead of deciding the whole store again:
the kept refunds joined with their workflow rows, the claim numbers of some refunds, payer names.

Facts are only ever added (one database transaction per transaction set, nothing deleted), so the
count and the largest id of ``transactions`` and of ``patient_payments`` change whenever facts
come in: that is the fingerprint (four index look-ups and two counts of small tables).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Connection, Date, DateTime, and_, delete, exists, func, insert, or_, select, true, update

from edirecon.engine.store import schema as t
from edirecon.engine.store.bulk import Converted, codec, in_list, query, raw_rows
from edirecon.engine.store.detections import BATCH
from edirecon.money import ZERO


def facts_fingerprint(conn: Connection) -> str:
    """What changes whenever facts are added to the store: the count and the largest id of the
    transaction sets and of the patient payments."""
    (row,) = query(
        conn,
        "SELECT (SELECT COUNT(*) FROM transactions), (SELECT MAX(id) FROM transactions), "
        "(SELECT COUNT(*) FROM patient_payments), (SELECT MAX(id) FROM patient_payments), "
        "(SELECT COUNT(*) FROM ingest_exceptions)",
    ).all()
    return ":".join("" if v is None else str(v) for v in row)


def recorded(conn: Connection) -> dict[str, Any] | None:
    """The ``decision_records`` row (None: nothing recorded yet, a store of an older version)."""
    row = conn.execute(select(t.decision_records).order_by(t.decision_records.c.id.desc()).limit(1)).mappings().first()
    return None if row is None else dict(row)


def set_recorded(conn: Connection, facts: str, config: str, as_of: date | None, at: datetime) -> None:
    """Record, in the caller's transaction, which facts and configuration were decided and synced."""
    conn.execute(delete(t.decision_records))
    conn.execute(insert(t.decision_records).values(id=1, facts=facts, config=config, as_of=as_of, recorded_at=at))


def kept_since_sync(conn: Connection) -> bool:
    """Whether a detection kept refunds since the workflow last followed every kept refund (and
    so ``unfollowed`` may find some); a store with nothing recorded says yes."""
    found = conn.execute(select(t.decision_records.c.kept_since_sync).order_by(t.decision_records.c.id.desc()).limit(1)).scalar()
    return found is None or bool(found)


def mark_kept(conn: Connection) -> None:
    """In the caller's transaction: refunds were kept (``detections``) without the workflow
    following them in the same transaction."""
    conn.execute(update(t.decision_records).where(t.decision_records.c.kept_since_sync.is_(False)).values(kept_since_sync=True))


def mark_followed(conn: Connection) -> None:
    """In the caller's transaction: the workflow follows every kept refund again (``unfollowed``
    was synced)."""
    conn.execute(update(t.decision_records).where(t.decision_records.c.kept_since_sync.is_(True)).values(kept_since_sync=False))


def forget(conn: Connection) -> None:
    """No decisions recorded any more: the next command decides everything again."""
    conn.execute(delete(t.decision_records))


def listing(conn: Connection, refund_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Every ``refund_workflow`` row (in refund id order; only ``refund_ids`` when given) with the
    kept refund of the same id under ``kept`` (None when the engine no longer identifies it): one
    join on the key, read as plain tuples at the driver level (``bulk.raw_rows``) and converted
    column by column as SQLAlchemy's types would (amounts, days, times, flags), each distinct value
    once."""
    w, d = t.refund_workflow, t.detections
    columns = [*w.c, *d.c]
    convert = [_converter(conn, c) for c in columns]
    names = [c.name for c in w.c]
    kept_names = [c.name for c in d.c]
    n = len(names)
    sql = (
        f"SELECT {', '.join(f'w.{c.name}' for c in w.c)}, {', '.join(f'd.{c.name}' for c in d.c)} "
        "FROM refund_workflow w LEFT JOIN detections d ON d.refund_id = w.refund_id"
    )
    params: list[Any] = []
    if refund_ids is not None:
        sql += f" WHERE w.refund_id IN {in_list(list(refund_ids))}"
        params = list(refund_ids)
    sql += " ORDER BY w.refund_id"
    out = []
    for raw in raw_rows(conn, sql, params):
        row = [f(v) if f is not None else v for f, v in zip(convert, raw, strict=True)]
        out.append({"state": dict(zip(names, row[:n], strict=True)), "kept": dict(zip(kept_names, row[n:], strict=True)) if row[n] is not None else None})
    return out


@dataclass(frozen=True)
class Where:
    """The filters of the work queue (``refund list``), as the store applies them: none given, none
    applied.  ``overdue`` and ``escheatment_sent_by`` are worked out by the workflow from the
    as-of day (still to be worked past the due day; a patient refund sent and not cashed since)."""

    statuses: Sequence[str] = ()
    payer: str | None = None
    reasons: Sequence[str] = ()
    payee_type: str | None = None
    assigned_to: str | None = None
    due_before: date | None = None
    overdue_on: date | None = None  # still to be worked (``to_work``) with a due day before it
    to_work: Sequence[str] = ()
    escheatment_sent_by: date | None = None  # patient refunds sent on or before it and still ``sent``


def _conditions(where: Where) -> list[Any]:
    w, d = t.refund_workflow, t.detections
    conds: list[Any] = []
    if where.statuses:
        conds.append(w.c.status.in_(list(where.statuses)))
    if where.payer is not None:
        conds.append(w.c.payer_id == where.payer)
    if where.reasons:
        conds.append(w.c.reason.in_(list(where.reasons)))
    if where.payee_type is not None:
        conds.append(w.c.payee_type == where.payee_type)
    if where.assigned_to is not None:
        conds.append(func.coalesce(w.c.assigned_to, "") == where.assigned_to)
    if where.due_before is not None:
        conds.append(d.c.due_by < where.due_before)
    if where.overdue_on is not None:
        conds += [w.c.status.in_(list(where.to_work)), d.c.due_by < where.overdue_on]
    if where.escheatment_sent_by is not None:
        conds += [w.c.status == "sent", w.c.payee_type == "patient", w.c.sent_on.is_not(None), w.c.sent_on <= where.escheatment_sent_by]
    return conds


def _joined() -> Any:
    w, d = t.refund_workflow, t.detections
    return w.outerjoin(d, d.c.refund_id == w.c.refund_id)


def keys(conn: Connection, where: Where) -> list[tuple[str, date | None, Decimal, date | None]]:
    """The refunds of the workflow that pass ``where``, each as (refund id, due day, amount,
    the day its credit arose): what the work queue sorts and pages by, without the rest of the
    rows.  The amount is the kept refund's, else the workflow's (``View.amount``)."""
    w, d = t.refund_workflow, t.detections
    q = select(w.c.refund_id, d.c.due_by, d.c.amount, w.c.amount, d.c.credit_since).select_from(_joined())
    conds = _conditions(where)
    if conds:
        q = q.where(and_(*conds))
    return [(rid, due, kept if kept is not None else amount, since) for rid, due, kept, amount, since in conn.execute(q)]


def sorted_page(
    conn: Connection, where: Where, descending: bool, offset: int, limit: int, after: tuple[date | None, str] | None, by_amount: bool = False
) -> tuple[list[str], int, int | None, bool]:
    """The work queue by due day (or amount), sorted and paged by the database: the ids of the ``limit`` refunds passing
    ``where`` from ``offset`` (or, with ``after``, from the first after that due day and refund
    id, earliest first), how many pass in all, where the page starts among them (None after a
    row: not counted, since counting the rows before a deep cursor reads them all), and whether
    more follow (after a row: one more row read).  Due days
    earliest first (``descending``: latest first), refunds without one last, each group by refund
    id (descending with the days); ids compared byte by byte on PostgreSQL too.

    ``by_amount``: by the amount instead (the kept refund's, else the workflow's), then refund id,
    both reversed with ``descending`` (``after`` not used).  On SQLite an amount is its exact text
    with two decimals (``Money``), never negative here: ordered by its length, then its text, which
    is the order of the numbers without turning them into floats.

    A page costs what it shows, not the size of the queue: the kept refunds (those with a due day)
    are read in order by an index of ``detections`` (due day or amount, then id), each checked
    against the filters, until the page is full; the refunds the engine no longer keeps (no due
    day) are looked for only when there can be some (the workflow holds more refunds than are
    kept, or a detection kept refunds since the last sync) and merged in.  A kept refund's due day
    is always before ``date.max``, where the others sort."""
    w, d = t.refund_workflow, t.detections
    pg = conn.dialect.name == "postgresql"
    conds = _conditions(where)
    only_kept = where.due_before is not None or where.overdue_on is not None  # a refund without a due day never passes
    total = conn.execute(select(func.count()).select_from(_joined() if only_kept else w).where(and_(true(), *conds))).scalar_one()
    if after is not None:
        descending, by_amount = False, False
    # after a row, one more than the page: whether more follow
    wanted = limit + 1 if after is not None else offset + limit

    def ordered(keys: list[Any]) -> list[Any]:
        return [k.desc() for k in keys] if descending else keys

    drid = d.c.refund_id.collate("C") if pg else d.c.refund_id
    kept_q = select(d.c.refund_id, d.c.amount).where(exists(select(1).select_from(w).where(w.c.refund_id == d.c.refund_id, *conds)))
    if by_amount:
        kept_q = kept_q.order_by(*ordered([d.c.amount, drid] if pg else [func.length(d.c.amount), d.c.amount, drid]))
    else:
        kept_q = kept_q.order_by(*ordered([d.c.due_by, drid]))
    if after is not None and after[0] is not None:
        kept_q = kept_q.where(or_(d.c.due_by > after[0], and_(d.c.due_by == after[0], drid > after[1])))
    kept = [] if after is not None and after[0] is None else [(rid_, amount) for rid_, amount in conn.execute(kept_q.limit(wanted))]
    unkept: list[tuple[str, Decimal]] = []
    if not only_kept and (kept_since_sync(conn) or _count(conn, w) != _count(conn, d)):
        wrid = w.c.refund_id.collate("C") if pg else w.c.refund_id
        unkept_q = select(w.c.refund_id, w.c.amount).where(~exists(select(1).select_from(d).where(d.c.refund_id == w.c.refund_id)), *conds)
        if after is not None and after[0] is None:
            unkept_q = unkept_q.where(wrid > after[1])
        if by_amount:
            unkept_q = unkept_q.order_by(*ordered([w.c.amount, wrid] if pg else [func.length(w.c.amount), w.c.amount, wrid]))
        else:
            unkept_q = unkept_q.order_by(wrid)  # after the kept ones, by refund id, either way
        unkept = [(rid_, amount) for rid_, amount in conn.execute(unkept_q.limit(wanted))]
    if by_amount:  # the two sequences merged by (amount, refund id), each already in that order
        rows = heapq.merge(kept, unkept, key=lambda r: (r[1], r[0]), reverse=descending)
    else:
        rows = iter(kept + unkept)
    if after is not None:
        ids = [r[0] for r in itertools.islice(rows, 0, limit + 1)]
        return ids[:limit], total, None, len(ids) > limit
    ids = [r[0] for r in itertools.islice(rows, offset, offset + limit)]
    return ids, total, offset, offset + len(ids) < total


def _count(conn: Connection, table: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _converter(conn: Connection, column: Any) -> Any:
    """How a value of ``column`` comes back from the driver into what SQLAlchemy's type gives
    (None: as it is)."""
    c = codec(conn)
    if isinstance(column.type, t.Money):
        return Converted(c.money, None).__getitem__
    if isinstance(column.type, DateTime):
        return Converted(lambda v: v if isinstance(v, datetime) else datetime.fromisoformat(v), None).__getitem__
    if isinstance(column.type, Date):
        return Converted(c.day, None).__getitem__
    if isinstance(column.type, Boolean):
        return Converted(bool, None).__getitem__
    return None


def claim_numbers(conn: Connection, refund_ids: Sequence[str]) -> dict[str, str]:
    """refund id -> the patient control number of its kept refund (only those kept)."""
    out: dict[str, str] = {}
    d = t.detections.c
    for chunk in _chunks(list(refund_ids)):
        out.update((rid, pcn) for rid, pcn in conn.execute(select(d.refund_id, d.patient_control_number).where(d.refund_id.in_(chunk))))
    return out


def entering(conn: Connection, refund_ids: Sequence[str]) -> list[dict[str, Any]]:
    """The kept refunds (``detections`` rows) of ``refund_ids`` that the workflow has not met yet
    (no ``refund_workflow`` row), in refund id order."""
    d, w = t.detections, t.refund_workflow
    out: list[dict[str, Any]] = []
    for chunk in _chunks(sorted(set(refund_ids))):
        query = select(d).where(d.c.refund_id.in_(chunk), ~exists().where(w.c.refund_id == d.c.refund_id))
        out.extend(dict(r) for r in conn.execute(query).mappings())
    return sorted(out, key=lambda r: str(r["refund_id"]))


def to_sync(conn: Connection) -> list[str]:
    """The refunds a person acted on since they were last synced (``needs_sync``)."""
    w = t.refund_workflow.c
    return list(conn.execute(select(w.refund_id).where(w.needs_sync.is_(True)).order_by(w.refund_id)).scalars())


def synced(conn: Connection, refund_ids: Iterable[str] | None = None) -> None:
    """Clear ``needs_sync`` of ``refund_ids`` (all refunds when None)."""
    w = t.refund_workflow.c
    if refund_ids is None:
        conn.execute(update(t.refund_workflow).where(w.needs_sync.is_(True)).values(needs_sync=False))
        return
    for chunk in _chunks(sorted(set(refund_ids))):
        conn.execute(update(t.refund_workflow).where(w.refund_id.in_(chunk), w.needs_sync.is_(True)).values(needs_sync=False))


def changed(conn: Connection, to_work: Sequence[str], rejudge: bool) -> list[str]:
    """The refunds whose kept decision the workflow has not followed yet: kept and new to the
    workflow, or withdrawn there; still to be worked (``to_work``) with another amount, or settled
    or acknowledged by the engine; a payer refund sent, acknowledged or to recover (the payer's
    answer may have come); still to be worked and no longer kept; with ``rejudge`` (the
    configuration changed), every refund still to be worked.  In refund id order."""
    work = ", ".join("?" * len(to_work))
    answered = ("sent", "acknowledged", "double_refund")
    sql = (
        "SELECT d.refund_id FROM detections d LEFT JOIN refund_workflow w ON w.refund_id = d.refund_id "
        "WHERE w.refund_id IS NULL OR w.status = 'withdrawn' "
        f"OR (w.status IN ({work}) AND (w.amount <> d.amount OR d.status IN ('settled_by_recoupment', 'acknowledged'))) "
        f"OR (w.status IN ({', '.join('?' * len(answered))}) AND d.payee_type = 'payer') "
        "UNION SELECT w.refund_id FROM refund_workflow w LEFT JOIN detections d ON d.refund_id = w.refund_id "
        f"WHERE d.refund_id IS NULL AND w.status IN ({work})"
    )
    params = [*to_work, *answered, *to_work]
    if rejudge:
        sql += f" UNION SELECT refund_id FROM refund_workflow WHERE status IN ({work})"
        params += list(to_work)
    return sorted(v for (v,) in query(conn, sql, params))


def unfollowed(conn: Connection, to_work: Sequence[str]) -> list[str]:
    """The refunds kept and not in the workflow yet, and those still to be worked (``to_work``)
    in the workflow and no longer kept: whatever ``changed`` lists that a sync made at the
    recording (or a person's action) does not account for.  In refund id order."""
    work = ", ".join("?" * len(to_work))
    sql = (
        "SELECT d.refund_id FROM detections d LEFT JOIN refund_workflow w ON w.refund_id = d.refund_id WHERE w.refund_id IS NULL "
        "UNION SELECT w.refund_id FROM refund_workflow w LEFT JOIN detections d ON d.refund_id = w.refund_id "
        f"WHERE d.refund_id IS NULL AND w.status IN ({work})"
    )
    return sorted(v for (v,) in query(conn, sql, list(to_work)))


def payer_names(conn: Connection, payer_ids: Sequence[str]) -> dict[str, str]:
    """payer id -> its name in the remittances of its claim payments (the first remittance, in
    store order, with a name and a claim payment), as the facts read back give it."""
    out: dict[str, str] = {}
    for payer_id in sorted(set(payer_ids)):
        row = query(
            conn,
            "SELECT r.payer_name FROM remittances r WHERE r.payer_id = ? AND r.payer_name <> '' "
            "AND EXISTS (SELECT 1 FROM claim_payments p WHERE p.remittance_id = r.id) ORDER BY r.id LIMIT 1",
            [payer_id],
        ).first()
        if row is not None:
            out[payer_id] = row[0]
    return out


def _chunks(values: list[Any], size: int = BATCH) -> Iterable[list[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


# -- what ``report`` reads instead of deciding the whole store (``refunds.book_from_records``) --


def kept(conn: Connection) -> dict[str, dict[str, Any]]:
    """refund id -> what the records keep of each refund the engine identifies (``detections``):
    its claim number, amount, what was recouped and the engine's status."""
    d = t.detections.c
    return {
        rid: {"patient_control_number": pcn, "amount": amount, "recouped": recouped, "status": status}
        for rid, pcn, amount, recouped, status in conn.execute(select(d.refund_id, d.patient_control_number, d.amount, d.recouped, d.status))
    }


def trace_paid(conn: Connection) -> dict[tuple[str, str], Decimal]:
    """Per payer and trace number (of the remittance), the sum of the store's claim payments
    (CLP04): on PostgreSQL summed by the server per remittance (``NUMERIC``: exact), on SQLite
    summed exactly from ``ZERO`` in Python (SQLite keeps an amount as its text: its SUM would be
    a float)."""
    by_remittance: dict[int, Decimal] = {}
    if codec(conn).sqlite:
        money = codec(conn).money  # each amount converted as it comes: a million of them, mostly distinct, none kept
        for rid, paid in raw_rows(conn, "SELECT remittance_id, paid FROM claim_payments", stream=True):
            by_remittance[rid] = by_remittance.get(rid, ZERO) + (ZERO if paid is None else money(paid))  # type: ignore[operator]
    else:  # one row per remittance, not a million over the wire; ZERO added: an amount's two places even when every CLP04 is missing
        by_remittance = {
            rid: ZERO + (paid or ZERO) for rid, paid in raw_rows(conn, "SELECT remittance_id, SUM(paid) FROM claim_payments GROUP BY remittance_id")
        }
    out: dict[tuple[str, str], Decimal] = {}
    for rid, payer_id, number in raw_rows(conn, "SELECT id, payer_id, trace_number FROM remittances"):
        if rid in by_remittance:
            out[(payer_id, number)] = out.get((payer_id, number), ZERO) + by_remittance[rid]
    return out


def payments_at(conn: Connection, segments: Sequence[int]) -> list[tuple[str, int, str, str, str, str | None, Decimal]]:
    """The claim payments at the segments ``segments`` of any file, each as (source file, segment,
    claim number, payer id, trace number, payer claim number, CLP04): a query per ``BATCH`` of
    segments, or one pass over every claim payment when there are more (a store of remittances
    whose claims never came)."""
    money = Converted(codec(conn).money, ZERO).__getitem__
    wanted = sorted(set(segments))
    sql = (
        "SELECT p.source_file, p.segment, p.patient_control_number, r.payer_id, r.trace_number, p.payer_claim_control_number, p.paid "
        "FROM claim_payments p JOIN remittances r ON r.id = p.remittance_id"
    )
    if len(wanted) > BATCH:
        chosen = set(wanted)
        return [(*row[:6], money(row[6])) for row in raw_rows(conn, sql, stream=True) if row[1] in chosen]
    out = []
    for chunk in _chunks(wanted):
        out += [(*row[:6], money(row[6])) for row in raw_rows(conn, f"{sql} WHERE p.segment IN {in_list(chunk)}", chunk)]
    return out


def claim_groups(conn: Connection) -> tuple[int, list[tuple[str, str]]]:
    """The claims by billing NPI and claim number: how many such groups hold a single claim, and
    the (NPI, claim number) of those with more.  One grouping pass: every claim is in one group,
    so the single ones are the claims not in a group of more (a count, not a second grouping)."""
    claims = int(query(conn, "SELECT COUNT(*) FROM claims", []).scalar_one())
    more, in_more = [], 0
    for npi, pcn, n in query(
        conn, "SELECT billing_npi, patient_control_number, COUNT(*) FROM claims GROUP BY billing_npi, patient_control_number HAVING COUNT(*) > 1", []
    ):
        more.append((npi, pcn))
        in_more += int(n)
    return claims - in_more, more
