"""What a person's action and a refund's page need to know without reading every refund (issue
15, step 0: an action costs what it touches): ``decision_records.kept_since_sync`` says whether a
detection kept refunds since the workflow last followed every kept refund (only then can a refund
be kept and not followed, or followed and no longer kept), and an index on
``refund_workflow.needs_sync`` finds the refunds a person acted on since their last sync.  The
work queue's page is read in order by an index of the kept refunds (``detections``) by due day
and by amount (on SQLite the amount's text by its length, then itself: ``records.sorted_page``).

A store made before this revision may have such refunds: its row is marked, and the next sync
looks for them.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("decision_records", sa.Column("kept_since_sync", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE decision_records SET kept_since_sync = TRUE")
    op.create_index("ix_refund_workflow_needs_sync", "refund_workflow", ["needs_sync"])
    if op.get_bind().dialect.name == "sqlite":
        op.create_index("ix_detections_due", "detections", ["due_by", "refund_id"])
        op.create_index("ix_detections_amount", "detections", [sa.text("length(amount)"), "amount", "refund_id"])
    else:  # the ids ordered byte by byte (collation "C"), as the work queue orders them
        op.create_index("ix_detections_due_pg", "detections", ["due_by", sa.text('refund_id COLLATE "C"')])
        op.create_index("ix_detections_amount_pg", "detections", ["amount", sa.text('refund_id COLLATE "C"')])


def downgrade() -> None:
    suffix = "" if op.get_bind().dialect.name == "sqlite" else "_pg"
    op.drop_index(f"ix_detections_amount{suffix}", table_name="detections")
    op.drop_index(f"ix_detections_due{suffix}", table_name="detections")
    op.drop_index("ix_refund_workflow_needs_sync", table_name="refund_workflow")
    op.drop_column("decision_records", "kept_since_sync")  # plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+)
