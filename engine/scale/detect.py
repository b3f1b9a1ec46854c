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

from collections.abc import Sequence
from datetime import date
from typing import Any

from edirecon.engine.config import Config
from edirecon.engine.decide.rules import Decisions, Refund, credit_arose_on, decide
from edirecon.engine.logging import get_logger
from edirecon.engine.store.connection import Connection, Store
from edirecon.engine.store.detections import BATCH as BATCH  # re-exported: the size of a detection job
from edirecon.engine.store.detections import closure, keep_rows, lock_claim_numbers
from edirecon.engine.store.detections import file_pcns as file_pcns  # re-exported: what a finished file defers
from edirecon.engine.store.facts import load

log = get_logger("edirecon.detect")


def detect(store: Store, pcns: Sequence[str], as_of: date, config: Config) -> Decisions:
    """Decide the encounters of ``pcns`` (and their closure) again and keep their refunds."""
    while True:
        with store.write() as conn:
            keys = closure(conn, pcns)
            if store.dialect == "postgresql":
                # one round trip, the locks taken in ascending key order (no deadlock between jobs)
                lock_claim_numbers(conn, keys)
                if closure(conn, keys) != keys:  # grew while waiting for the locks: sweep again
                    conn.rollback()
                    pcns = keys
                    continue
            facts = load(conn, keys)
            decisions = decide(facts, as_of, config)
            keep(conn, keys, decisions)
        log.info("detected", claim_numbers=len(keys), claims=len(facts.claims), payments=len(facts.payments), refunds=len(decisions.refunds))
        return decisions


def keep(conn: Connection, pcns: Sequence[str] | None, decisions: Decisions, history: bool = True) -> None:
    """Replace the kept refunds of ``pcns`` (all of them when None) with the refunds of
    ``decisions``, recording the day each was first identified (``decide`` sets it from the
    history, else the run's day; not recorded without ``history``: a ``refund`` command dates no
    refund for good) and the day its credit arose."""
    keep_rows(conn, pcns, detection_rows(decisions), history)


def detection_rows(decisions: Decisions) -> list[dict[str, Any]]:
    """The refunds of ``decisions`` as detection keeps them, each with the day its credit arose."""
    since = credit_arose_on(decisions)
    return [detection_row(r, since.get(r.refund_id)) for r in decisions.refunds]


def detection_row(r: Refund, credit_since: date | None = None) -> dict[str, Any]:
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
        "acknowledged": r.acknowledged,
        "payer_name": r.payer_name,
        "patient_name": r.encounter.patient_name,
        "credit_since": credit_since,
    }
