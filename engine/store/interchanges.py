"""The SQL of the 835s ``edirecon watch`` re-emits (``engine.dropfolder.outbound``): one row of
``outbound_interchanges`` per file written, its id the file's ISA13."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, insert, select

from edirecon.engine.store import schema as t


def new_interchange(conn: Connection, payer_id: str, payee_npi: str, transaction_sets: int, claim_payments: int, created_at: datetime) -> int:
    """A new re-emitted interchange, not yet named; its control number (the row's id)."""
    return int(
        conn.execute(
            insert(t.outbound_interchanges)
            .values(
                file_name="",
                payer_id=payer_id,
                payee_npi=payee_npi,
                transaction_sets=transaction_sets,
                claim_payments=claim_payments,
                sha256="",
                created_at=created_at,
            )
            .returning(t.outbound_interchanges.c.id)
        ).scalar_one()
    )


def name_interchange(conn: Connection, control: int, file_name: str, sha256: str) -> None:
    """The file the interchange ``control`` was written to, and its SHA-256."""
    conn.execute(t.outbound_interchanges.update().where(t.outbound_interchanges.c.id == control).values(file_name=file_name, sha256=sha256))


def reemitted(conn: Connection) -> dict[str, tuple[int, int]]:
    """File name -> (transaction sets, claim payments) of every interchange re-emitted so far."""
    table = t.outbound_interchanges
    return {
        r.file_name: (r.transaction_sets, r.claim_payments) for r in conn.execute(select(table.c.file_name, table.c.transaction_sets, table.c.claim_payments))
    }
