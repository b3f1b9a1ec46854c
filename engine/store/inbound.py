"""The SQL of the files ``edirecon watch`` receives (``engine.dropfolder``): their rows in
``inbound_files`` (state, disposition, names reserved), what makes one a duplicate, and what the
store took from one (``examine``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select

from edirecon.engine.store import schema as t

#: the states a received file ends in
FINAL = ("archived", "quarantined")


def open_row(conn: Connection, work_name: str) -> dict[str, Any] | None:
    """The newest row not in a final state of the file named ``work_name`` in work/, if any."""
    found = (
        conn.execute(
            select(t.inbound_files).where(t.inbound_files.c.work_name == work_name, t.inbound_files.c.state.notin_(FINAL)).order_by(t.inbound_files.c.id.desc())
        )
        .mappings()
        .first()
    )
    return None if found is None else dict(found)


def insert_row(conn: Connection, values: dict[str, Any]) -> int:
    """A new row of ``inbound_files``; its id."""
    return int(conn.execute(insert(t.inbound_files).values(**values).returning(t.inbound_files.c.id)).scalar_one())


def update_row(conn: Connection, row_id: int, values: dict[str, Any]) -> dict[str, Any]:
    """Set ``values`` in the row ``row_id``; the row as it is then."""
    conn.execute(t.inbound_files.update().where(t.inbound_files.c.id == row_id).values(**values))
    return dict(conn.execute(select(t.inbound_files).where(t.inbound_files.c.id == row_id)).mappings().one())


def quarantined_as(conn: Connection, row_id: int, sha256: str) -> str | None:
    """Where another file of the same bytes was quarantined, if one was."""
    inbound = t.inbound_files
    earlier = conn.execute(select(inbound.c.destination).where(inbound.c.id != row_id, inbound.c.sha256 == sha256, inbound.c.state == "quarantined")).first()
    return None if earlier is None else earlier[0]


def ingested_from(conn: Connection, sha256: str) -> str | None:
    """The path a complete file of these bytes was ingested from, if one was."""
    f = t.files
    known = conn.execute(select(f.c.path).where(f.c.sha256 == sha256, f.c.complete.is_(True))).first()
    return None if known is None else known[0]


def _taken(row_id: int) -> Any:
    """Another received file that is (or was) to be ingested."""
    inbound = t.inbound_files
    return and_(inbound.c.id != row_id, inbound.c.disposition == "ingest")


def received_as(conn: Connection, row_id: int, sha256: str) -> str | None:
    """The original name of another file of these bytes taken for ingestion, if any."""
    inbound = t.inbound_files
    other = conn.execute(select(inbound.c.original_name).where(_taken(row_id), inbound.c.sha256 == sha256)).first()
    return None if other is None else other[0]


def interchange_received(conn: Connection, row_id: int, isa06: str, isa13: str, since: datetime) -> tuple[str, datetime] | None:
    """(original name, received at) of the earliest other file taken for ingestion with the same
    sender and ISA13, received since ``since``, claimed or with something ingested; or None."""
    inbound = t.inbound_files
    earlier = conn.execute(
        select(inbound.c.original_name, inbound.c.received_at)
        .where(
            _taken(row_id),
            inbound.c.isa06 == isa06,
            inbound.c.isa13 == isa13,
            inbound.c.received_at >= since,
            or_(inbound.c.state == "claimed", inbound.c.transaction_sets_ingested > 0),
        )
        .order_by(inbound.c.received_at)
    ).first()
    return None if earlier is None else (earlier[0], earlier[1])


def reserved_ack_names(conn: Connection, partner: str, row_id: int) -> set[str]:
    """The acknowledgment names the partner's other files in flight have reserved."""
    inbound = t.inbound_files
    return set(conn.execute(select(inbound.c.ack_name).where(inbound.c.partner == partner, inbound.c.state.notin_(FINAL), inbound.c.id != row_id)).scalars())


def finished(conn: Connection, row_ids: set[int]) -> set[int]:
    """Which of ``row_ids`` are in a final state."""
    return set(conn.execute(select(t.inbound_files.c.id).where(t.inbound_files.c.id.in_(row_ids), t.inbound_files.c.state.in_(FINAL))).scalars())


def moved_unfinished(conn: Connection) -> list[dict[str, Any]]:
    """The rows not in a final state whose file was given a destination (moved, or about to be)."""
    inbound = t.inbound_files
    return [dict(r) for r in conn.execute(select(inbound).where(inbound.c.state.notin_(FINAL), inbound.c.destination != "")).mappings().all()]


def set_final(conn: Connection, row_id: int, state: str, finished_at: datetime) -> None:
    """The row ``row_id`` ends in ``state``."""
    inbound = t.inbound_files
    conn.execute(inbound.update().where(inbound.c.id == row_id).values(state=state, finished_at=finished_at))


def stored_from(conn: Connection, sha256: str) -> tuple[dict[str, int], dict[int, Any], dict[int, Any]] | None:
    """What the store holds from the file with this SHA-256 (None when it knows no such file):
    the counts of transaction sets ingested, claims, claim payments and patient payments; its
    ``transactions`` rows by ordinal; and (ordinal, payer_id, payee_npi, payments) of its
    remittances by ordinal."""
    file_id = conn.execute(select(t.files.c.id).where(t.files.c.sha256 == sha256)).scalar()
    if file_id is None:
        return None
    txn = t.transactions
    in_file = txn.c.file_id == file_id

    def count(q: Any) -> int:
        return int(conn.execute(q).scalar_one())

    counts = {
        "transaction_sets_ingested": count(select(func.count()).select_from(txn).where(in_file, txn.c.ingested.is_(True))),
        "claims": count(select(func.count()).select_from(t.claims.join(txn, t.claims.c.transaction_id == txn.c.id)).where(in_file)),
        "claim_payments": count(
            select(func.count())
            .select_from(
                t.claim_payments.join(t.remittances, t.claim_payments.c.remittance_id == t.remittances.c.id).join(
                    txn, t.remittances.c.transaction_id == txn.c.id
                )
            )
            .where(in_file)
        ),
        "patient_payments": count(select(func.count()).select_from(t.patient_payments).where(t.patient_payments.c.file_id == file_id)),
    }
    transactions = {r.ordinal: r for r in conn.execute(select(txn).where(in_file))}
    remittances = {
        r.ordinal: r
        for r in conn.execute(
            select(txn.c.ordinal, t.remittances.c.payer_id, t.remittances.c.payee_npi, func.count(t.claim_payments.c.id).label("payments"))
            .join(t.remittances, t.remittances.c.transaction_id == txn.c.id)
            .outerjoin(t.claim_payments, t.claim_payments.c.remittance_id == t.remittances.c.id)
            .where(in_file)
            .group_by(txn.c.ordinal, t.remittances.c.payer_id, t.remittances.c.payee_npi)
        )
    }
    return counts, transactions, remittances
