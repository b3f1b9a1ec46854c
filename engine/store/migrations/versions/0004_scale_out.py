"""scale-out: file parts done by workers, decisions kept per encounter, indexes for detection by key

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from edirecon.engine.store.schema import Money

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_claims_npi_member', 'claims', ['billing_npi', 'member_id'])
    op.create_index('ix_provider_adjustments_reference', 'provider_adjustments', ['reference'])
    op.create_index('ix_patient_payments_pcn', 'patient_payments', ['patient_control_number'])
    op.create_table('file_parts',
    sa.Column('file_id', sa.Integer(), sa.ForeignKey('files.id'), nullable=False),
    sa.Column('part', sa.Integer(), nullable=False),
    sa.Column('parts', sa.Integer(), nullable=False),
    sa.UniqueConstraint('file_id', 'part'),
    )
    op.create_table('detections',
    sa.Column('refund_id', sa.String(length=40), primary_key=True),
    sa.Column('patient_control_number', sa.String(length=38), nullable=False),
    sa.Column('encounter_id', sa.String(length=40), nullable=False),
    sa.Column('reason', sa.String(length=24), nullable=False),
    sa.Column('payee_type', sa.String(length=8), nullable=False),
    sa.Column('payer_id', sa.String(length=80), nullable=False),
    sa.Column('amount', Money(), nullable=False),
    sa.Column('recouped', Money(), nullable=False),
    sa.Column('status', sa.String(length=24), nullable=False),
    sa.Column('identified_on', sa.Date(), nullable=False),
    sa.Column('due_by', sa.Date(), nullable=False),
    )
    op.create_index('ix_detections_pcn', 'detections', ['patient_control_number'])
    op.create_table('job_failures',
    sa.Column('id', sa.Integer(), primary_key=True),
    sa.Column('task', sa.String(length=60), nullable=False),
    sa.Column('arguments', sa.Text(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('failed_at', sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('job_failures')
    op.drop_index('ix_detections_pcn', 'detections')
    op.drop_table('detections')
    op.drop_table('file_parts')
    op.drop_index('ix_patient_payments_pcn', 'patient_payments')
    op.drop_index('ix_provider_adjustments_reference', 'provider_adjustments')
    op.drop_index('ix_claims_npi_member', 'claims')
