"""drop folders: inbound files claimed by `edirecon watch`, and the 835s it re-emits

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inbound_files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('work_name', sa.Text(), nullable=False),
    sa.Column('original_name', sa.Text(), nullable=False),
    sa.Column('partner', sa.String(length=120), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('isa06', sa.String(length=15), nullable=False),
    sa.Column('isa08', sa.String(length=15), nullable=False),
    sa.Column('isa13', sa.String(length=9), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('disposition', sa.String(length=12), nullable=False),
    sa.Column('duplicate_reason', sa.Text(), nullable=False),
    sa.Column('ack_name', sa.Text(), nullable=False),
    sa.Column('destination', sa.Text(), nullable=False),
    sa.Column('transaction_sets', sa.Integer(), nullable=False),
    sa.Column('transaction_sets_ingested', sa.Integer(), nullable=False),
    sa.Column('claims', sa.Integer(), nullable=False),
    sa.Column('claim_payments', sa.Integer(), nullable=False),
    sa.Column('patient_payments', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('received_at', sa.DateTime(), nullable=False),
    sa.Column('claimed_at', sa.DateTime(), nullable=True),
    sa.Column('ingested_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('inbound_files', schema=None) as batch_op:
        batch_op.create_index('ix_inbound_files_sha256', ['sha256'], unique=False)
        batch_op.create_index('ix_inbound_files_interchange', ['isa06', 'isa13'], unique=False)
        batch_op.create_index('ix_inbound_files_work_name', ['work_name'], unique=False)

    op.create_table('outbound_interchanges',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('file_name', sa.Text(), nullable=False),
    sa.Column('payer_id', sa.String(length=80), nullable=False),
    sa.Column('payee_npi', sa.String(length=80), nullable=False),
    sa.Column('transaction_sets', sa.Integer(), nullable=False),
    sa.Column('claim_payments', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('outbound_interchanges')
    with op.batch_alter_table('inbound_files', schema=None) as batch_op:
        batch_op.drop_index('ix_inbound_files_work_name')
        batch_op.drop_index('ix_inbound_files_interchange')
        batch_op.drop_index('ix_inbound_files_sha256')

    op.drop_table('inbound_files')
