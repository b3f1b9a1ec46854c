"""refund_workflow: whom a refund is assigned to (``refund assign``, the work queue's "assigned
to"), a user name; "" when nobody.  Refunds of stores made before this revision are assigned to
nobody.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('refund_workflow', sa.Column('assigned_to', sa.String(length=64), nullable=False, server_default=''))


def downgrade() -> None:
    # a plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch copy of refund_workflow would
    # break the foreign key of refund_events
    op.drop_column('refund_workflow', 'assigned_to')
