"""refund workflow: the state of each refund (refund_workflow) and its audit trail (refund_events)

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from edirecon.engine.store.schema import Money

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('refund_workflow',
    sa.Column('refund_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=24), nullable=False),
    sa.Column('payee_type', sa.String(length=8), nullable=False),
    sa.Column('payer_id', sa.String(length=80), nullable=False),
    sa.Column('amount', Money(), nullable=False),
    sa.Column('method', sa.String(length=12), nullable=False),
    sa.Column('reference', sa.String(length=50), nullable=False),
    sa.Column('sent_on', sa.Date(), nullable=True),
    sa.Column('sent_amount', Money(), nullable=True),
    sa.Column('recouped_when_sent', Money(), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=120), nullable=False),
    sa.Column('acknowledged_on', sa.Date(), nullable=True),
    sa.Column('acknowledged_amount', Money(), nullable=True),
    sa.Column('double_refund_amount', Money(), nullable=True),
    sa.Column('double_refund_traces', sa.Text(), nullable=False),
    sa.Column('recovered_on', sa.Date(), nullable=True),
    sa.Column('recovered_amount', Money(), nullable=True),
    sa.Column('cashed_on', sa.Date(), nullable=True),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('refund_id')
    )
    op.create_table('refund_events',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('refund_id', sa.String(length=32), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('user_name', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=24), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=False),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['refund_id'], ['refund_workflow.refund_id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('refund_events', schema=None) as batch_op:
        batch_op.create_index('ix_refund_events_refund', ['refund_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('refund_events', schema=None) as batch_op:
        batch_op.drop_index('ix_refund_events_refund')

    op.drop_table('refund_events')
    op.drop_table('refund_workflow')
