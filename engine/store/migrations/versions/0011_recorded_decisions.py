"""Decisions recorded, not recomputed (issue 15, step 0): ``detections`` keeps what ``refund list``
shows of each refund (what the payer acknowledged, the payer's and the patient's names), one
``decision_records`` row says which facts (and which configuration) the kept refunds and the
workflow were last decided and synced from, and ``refund_workflow.needs_sync`` marks a refund a
person acted on since (its next sync may match the payer's answer to it).

A store made before this revision has no ``decision_records`` row: its first ``refund`` command
decides everything once and records the result.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from edirecon.engine.store.schema import Money

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("detections", sa.Column("acknowledged", Money(), nullable=False, server_default="0.00"))
    op.add_column("detections", sa.Column("payer_name", sa.Text(), nullable=False, server_default=""))
    op.add_column("detections", sa.Column("patient_name", sa.Text(), nullable=False, server_default=""))
    op.add_column("refund_workflow", sa.Column("needs_sync", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table(
        "decision_records",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("facts", sa.String(length=200), nullable=False),
        sa.Column("config", sa.String(length=64), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("decision_records")
    op.drop_column("refund_workflow", "needs_sync")
    op.drop_column("detections", "patient_name")
    op.drop_column("detections", "payer_name")
    op.drop_column("detections", "acknowledged")
