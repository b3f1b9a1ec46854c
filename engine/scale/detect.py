"""Detection by key: decide again only the encounters new facts touch, and keep their refunds.

``edirecon run`` decides from every fact in the store.  A worker that has just ingested one
file needs less: the patient control numbers the file names (its claims, its claim payments,
its PLB references, its patient payments) and, for rule 4's duplicates across claim numbers,
every other claim number of the same billing provider and member.  That *closure* is found with
indexed queries, its facts are loaded with indexed queries (``facts.load(conn, pcns)``), and the
same ``decide`` runs over them, so the cost follows the size of the new file, not of the store.

The refunds so decided replace the ones kept for those claim numbers in ``detections``.  On
PostgreSQL the job holds a transaction-level advisory lock per claim number, taken in one sorted
sweep, so two workers given overlapping encounters decide them one after the other; the refund
id is the table's primary key, so a refund is never kept twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import structlog
from sqlalchemy import Connection, delete, select

from edirecon.engine.config import Config
from edirecon.engine.decide.rules import Decisions, Refund, decide
from edirecon.engine.ingest.ingestor import insert_ignore
from edirecon.engine.store import schema as t
from edirecon.engine.store.bulk import member_of, query
from edirecon.engine.store.connection import Store
from edirecon.engine.store.facts import load

log = structlog.get_logger("edirecon.detect")

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


def detect(store: Store, pcns: Sequence[str], as_of: date, config: Config) -> Decisions:
    """Decide the encounters of ``pcns`` (and their closure) again and keep their refunds."""
    while True:
        with store.write() as conn:
            keys = closure(conn, pcns)
            if store.dialect == "postgresql":
                # one round trip, the locks taken in ascending key order (no deadlock between jobs)
                conn.exec_driver_sql(
                    "SELECT COUNT(pg_advisory_xact_lock(k)) FROM (SELECT unnest(%s::bigint[]) AS k ORDER BY 1) AS sweep",
                    (sorted({_lock_key(k) for k in keys}),),
                )
                if closure(conn, keys) != keys:  # grew while waiting for the locks: sweep again
                    conn.rollback()
                    pcns = keys
                    continue
            facts = load(conn, keys)
            decisions = decide(facts, as_of, config)
            keep(conn, keys, decisions.refunds)
        log.info("detected", claim_numbers=len(keys), claims=len(facts.claims), payments=len(facts.payments), refunds=len(decisions.refunds))
        return decisions


def keep(conn: Connection, pcns: Sequence[str] | None, refunds: list[Refund]) -> None:
    """Replace the kept refunds of ``pcns`` (all of them when None) with ``refunds``, recording the
    day each was first identified (``decide`` sets it from the history, else the run's day)."""
    keep_rows(conn, pcns, [detection_row(r) for r in refunds])


def detection_row(r: Refund) -> dict[str, Any]:
    """A refund as detection keeps it (a row of ``detections``)."""
    return {
        "refund_id": r.refund_id,
        "patient_control_number": r.encounter.pcn,
        "encounter_id": r.encounter.id,
        "reason": r.reason,
        "payee_type": r.payee_type,
        "payer_id": r.payer_id,
        "amount": r.amount,
        "recouped": r.recouped,
        "status": r.status,
        "identified_on": r.identified_on,
        "due_by": r.due_by,
    }


def keep_rows(conn: Connection, pcns: Sequence[str] | None, rows: list[dict[str, Any]]) -> None:
    """:func:`keep` for refunds already made rows (``detection_row``)."""
    if pcns is None:
        conn.execute(delete(t.detections))
    else:
        for chunk in _chunks(list(pcns)):
            conn.execute(delete(t.detections).where(t.detections.c.patient_control_number.in_(chunk)))
    ids = [r["refund_id"] for r in rows]
    known = {
        rid for chunk in _chunks(ids) for rid in conn.execute(select(t.refund_history.c.refund_id).where(t.refund_history.c.refund_id.in_(chunk))).scalars()
    }
    insert_ignore(conn, t.refund_history, [{"refund_id": r["refund_id"], "identified_on": r["identified_on"]} for r in rows if r["refund_id"] not in known])
    insert_ignore(conn, t.detections, rows)


def kept(conn: Connection) -> list[dict[str, Any]]:
    """The refunds kept by detection, in refund id order."""
    return [dict(r) for r in conn.execute(select(t.detections).order_by(t.detections.c.refund_id)).mappings()]


def _lock_key(pcn: str) -> int:
    return int.from_bytes(hashlib.sha256(b"edirecon-pcn\x1f" + pcn.encode()).digest()[:8], "big", signed=True)


def _chunks(values: list[Any], size: int = BATCH) -> Iterable[list[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _rows(conn: Connection, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    return list(query(conn, sql, params))
