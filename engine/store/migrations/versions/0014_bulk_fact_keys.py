"""On PostgreSQL, the bulk-loaded fact tables lose their foreign keys (issue 17): ``claims``,
``claim_lines``, ``claim_payments``, ``payment_lines`` and ``adjustments``, the rows ingest
writes with ``COPY``.  PostgreSQL checks a foreign key row by row (a trigger that looks up and
locks the parent row for each child row): on the 30,000-encounter mix those checks were about
half the time of the COPYs, a fifth of ingest (9.8 -> 8.0 s).  The rows of these tables are
written only by ingest, each transaction set's parents and children in one transaction, the
children naming parents whose ids that transaction drew; they are never updated in their keys
nor deleted.  A test checks, on every sample scenario and fixture, that no child names a missing
parent (tests/integration/test_store_intake.py).

SQLite keeps them: it checks a key in the index it is already walking (no measurable cost,
docs/benchmarks.md), and dropping one there means rebuilding the table.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: (table, column, parent table) of the foreign keys dropped on PostgreSQL
KEYS = (
    ("claims", "transaction_id", "transactions"),
    ("claim_lines", "claim_id", "claims"),
    ("claim_payments", "remittance_id", "remittances"),
    ("payment_lines", "claim_payment_id", "claim_payments"),
    ("adjustments", "claim_payment_id", "claim_payments"),
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    inspector = sa.inspect(bind)
    for table, column, parent in KEYS:
        for key in inspector.get_foreign_keys(table):
            if key["constrained_columns"] == [column] and key["referred_table"] == parent:
                op.drop_constraint(key["name"], table, type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column, parent in KEYS:
        op.create_foreign_key(f"{table}_{column}_fkey", table, parent, [column], ["id"])
