"""The SQL of detection by key (``engine.scale.detect``): the claim numbers a file names, their
closure, the per-claim-number advisory locks, and the refunds kept in ``detections`` (and first
identified in ``refund_history``)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, delete, select, update

from edirecon.engine.store import schema as t
from edirecon.engine.store.bulk import member_of, query
from edirecon.engine.store.intake import insert_ignore

#: claim numbers per detection job: a job's queries bind this many parameters at most a few times
BATCH = 1000


def file_pcns(conn: Connection, file_id: int) -> list[str]:
    """The patient control numbers a file's facts name (claims, claim payments, PLB references,
    patient payments)."""
    sql = (
        "SELECT c.patient_control_number FROM claims c JOIN transactions x ON c.transaction_id = x.id WHERE x.file_id = ? "
        "UNION SELECT p.patient_control_number FROM claim_payments p JOIN remittances r ON p.remittance_id = r.id "
        "JOIN transactions x ON r.transaction_id = x.id WHERE x.file_id = ? "
        "UNION SELECT a.reference FROM provider_adjustments a JOIN remittances r ON a.remittance_id = r.id "
        "JOIN transactions x ON r.transaction_id = x.id WHERE x.file_id = ? "
        "UNION SELECT p.patient_control_number FROM claim_payments p WHERE p.payer_claim_control_number IN ("
        "  SELECT a.reference FROM provider_adjustments a JOIN remittances r ON a.remittance_id = r.id "
        "  JOIN transactions x ON r.transaction_id = x.id WHERE x.file_id = ?) "
        "UNION SELECT patient_control_number FROM patient_payments WHERE file_id = ?"
    )
    return sorted(v for (v,) in _rows(conn, sql, [file_id] * 5) if v)


def closure(conn: Connection, pcns: Iterable[str]) -> list[str]:
    """``pcns`` and every claim number billed by the same provider for the same member (rule 4
    compares services across claim numbers of one patient), to a fixed point."""
    known = set(pcns)
    frontier = sorted(known)
    while frontier:
        found: set[str] = set()
        for chunk in _chunks(frontier):
            condition, params = member_of(conn, "c1.patient_control_number", chunk)
            sql = (
                "SELECT DISTINCT c2.patient_control_number FROM claims c1 JOIN claims c2 "
                "ON c2.billing_npi = c1.billing_npi AND c2.member_id = c1.member_id "
                f"WHERE {condition} AND c1.member_id <> ''"
            )
            found.update(v for (v,) in _rows(conn, sql, params))
        frontier = sorted(found - known)
        known |= found
    return sorted(known)


def lock_claim_numbers(conn: Connection, pcns: Iterable[str]) -> None:
    """PostgreSQL: a transaction-level advisory lock per claim number (``lock_key``), in one round
    trip, taken in ascending key order (no deadlock between jobs)."""
    conn.exec_driver_sql(
        "SELECT COUNT(pg_advisory_xact_lock(k)) FROM (SELECT unnest(%s::bigint[]) AS k ORDER BY 1) AS sweep",
        (sorted({lock_key(k) for k in pcns}),),
    )


def lock_key(pcn: str) -> int:
    """The advisory lock id of a claim number."""
    return int.from_bytes(hashlib.sha256(b"edirecon-pcn\x1f" + pcn.encode()).digest()[:8], "big", signed=True)


def keep_rows(conn: Connection, pcns: Sequence[str] | None, rows: list[dict[str, Any]], history: bool = True) -> None:
    """Replace the kept refunds of ``pcns`` (all of them when None) with ``rows`` (rows of
    ``detections``); a refund id not in ``refund_history`` yet enters it with its
    ``identified_on`` (with ``history``).  The recorded decisions are marked as kept since the
    workflow last followed them (``records.kept_since_sync``) until a sync follows them all."""
    conn.execute(update(t.decision_records).where(t.decision_records.c.kept_since_sync.is_(False)).values(kept_since_sync=True))
    if pcns is None:
        conn.execute(delete(t.detections))
    else:
        for chunk in _chunks(list(pcns)):
            conn.execute(delete(t.detections).where(t.detections.c.patient_control_number.in_(chunk)))
    if not history:
        insert_ignore(conn, t.detections, rows)
        return
    ids = [r["refund_id"] for r in rows]
    known = {
        rid for chunk in _chunks(ids) for rid in conn.execute(select(t.refund_history.c.refund_id).where(t.refund_history.c.refund_id.in_(chunk))).scalars()
    }
    insert_ignore(conn, t.refund_history, [{"refund_id": r["refund_id"], "identified_on": r["identified_on"]} for r in rows if r["refund_id"] not in known])
    insert_ignore(conn, t.detections, rows)


def kept(conn: Connection) -> list[dict[str, Any]]:
    """The refunds kept by detection, in refund id order."""
    return [dict(r) for r in conn.execute(select(t.detections).order_by(t.detections.c.refund_id)).mappings()]


def _chunks(values: list[Any], size: int = BATCH) -> Iterable[list[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _rows(conn: Connection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    return list(query(conn, sql, params))
