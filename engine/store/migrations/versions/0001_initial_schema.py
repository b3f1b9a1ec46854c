"""initial schema

Revision ID: 0001
Revises: 
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from edirecon.engine.store.schema import Money

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('files',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('complete', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sha256')
    )
    op.create_table('ingest_exceptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('severity', sa.String(length=8), nullable=False),
    sa.Column('source_file', sa.Text(), nullable=False),
    sa.Column('segment', sa.Integer(), nullable=False),
    sa.Column('patient_control_number', sa.String(length=38), nullable=False),
    sa.Column('payer_id', sa.String(length=80), nullable=False),
    sa.Column('amount', Money(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    op.create_table('refund_history',
    sa.Column('refund_id', sa.String(length=32), nullable=False),
    sa.Column('identified_on', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('refund_id')
    )
    op.create_table('patient_payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('payment_id', sa.String(length=80), nullable=False),
    sa.Column('file_id', sa.Integer(), nullable=False),
    sa.Column('row_number', sa.Integer(), nullable=False),
    sa.Column('patient_control_number', sa.String(length=38), nullable=False),
    sa.Column('amount', Money(), nullable=False),
    sa.Column('paid_on', sa.Date(), nullable=False),
    sa.Column('billing_npi', sa.String(length=80), nullable=False),
    sa.Column('member_id', sa.String(length=80), nullable=False),
    sa.ForeignKeyConstraint(['file_id'], ['files.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('payment_id')
    )
    op.create_table('transactions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('file_id', sa.Integer(), nullable=False),
    sa.Column('ordinal', sa.Integer(), nullable=False),
    sa.Column('isa13', sa.String(length=9), nullable=False),
    sa.Column('gs06', sa.String(length=9), nullable=False),
    sa.Column('st02', sa.String(length=9), nullable=False),
    sa.Column('transaction_type', sa.String(length=8), nullable=False),
    sa.Column('ingested', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['file_id'], ['files.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('file_id', 'ordinal')
    )
    op.create_table('claims',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('transaction_id', sa.Integer(), nullable=False),
    sa.Column('transaction_type', sa.String(length=8), nullable=False),
    sa.Column('patient_control_number', sa.String(length=38), nullable=False),
    sa.Column('billing_npi', sa.String(length=80), nullable=False),
    sa.Column('billing_tin', sa.String(length=80), nullable=False),
    sa.Column('member_id', sa.String(length=80), nullable=False),
    sa.Column('other_member_ids', sa.Text(), nullable=False),
    sa.Column('patient_last', sa.String(length=60), nullable=False),
    sa.Column('patient_first', sa.String(length=35), nullable=False),
    sa.Column('patient_dob', sa.Date(), nullable=True),
    sa.Column('service_from', sa.Date(), nullable=True),
    sa.Column('service_to', sa.Date(), nullable=True),
    sa.Column('total_charge', Money(), nullable=True),
    sa.Column('frequency', sa.String(length=2), nullable=False),
    sa.Column('original_reference', sa.String(length=50), nullable=False),
    sa.Column('payer_id', sa.String(length=80), nullable=False),
    sa.Column('payer_name', sa.String(length=60), nullable=False),
    sa.Column('payer_responsibility', sa.String(length=2), nullable=False),
    sa.Column('filing_indicator', sa.String(length=2), nullable=False),
    sa.Column('created_on', sa.Date(), nullable=True),
    sa.Column('source_file', sa.Text(), nullable=False),
    sa.Column('segment', sa.Integer(), nullable=False),
    sa.Column('byte_offset', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['transaction_id'], ['transactions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.create_index('ix_claims_pcn', ['patient_control_number', 'billing_npi'], unique=False)

    op.create_table('remittances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('transaction_id', sa.Integer(), nullable=False),
    sa.Column('payer_id', sa.String(length=80), nullable=False),
    sa.Column('payer_name', sa.String(length=60), nullable=False),
    sa.Column('trace_number', sa.String(length=50), nullable=False),
    sa.Column('payment_amount', Money(), nullable=True),
    sa.Column('credit_debit', sa.String(length=1), nullable=False),
    sa.Column('payment_date', sa.Date(), nullable=True),
    sa.Column('production_date', sa.Date(), nullable=True),
    sa.Column('payee_npi', sa.String(length=80), nullable=False),
    sa.Column('payee_tin', sa.String(length=80), nullable=False),
    sa.Column('source_file', sa.Text(), nullable=False),
    sa.Column('segment', sa.Integer(), nullable=False),
    sa.Column('byte_offset', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['transaction_id'], ['transactions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('payer_id', 'trace_number', name='uq_remittance_payer_trace')
    )
    op.create_table('claim_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('claim_id', sa.Integer(), nullable=False),
    sa.Column('line_number', sa.String(length=6), nullable=False),
    sa.Column('procedure_code', sa.String(length=48), nullable=False),
    sa.Column('modifiers', sa.String(length=20), nullable=False),
    sa.Column('charge', Money(), nullable=True),
    sa.Column('units', sa.Numeric(precision=15, scale=3), nullable=True),
    sa.Column('service_date', sa.Date(), nullable=True),
    sa.Column('line_item_control_number', sa.String(length=50), nullable=False),
    sa.ForeignKeyConstraint(['claim_id'], ['claims.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('claim_lines', schema=None) as batch_op:
        batch_op.create_index('ix_claim_lines_claim', ['claim_id'], unique=False)

    op.create_table('claim_payments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('remittance_id', sa.Integer(), nullable=False),
    sa.Column('ordinal', sa.Integer(), nullable=False),
    sa.Column('patient_control_number', sa.String(length=38), nullable=False),
    sa.Column('status', sa.String(length=2), nullable=False),
    sa.Column('charge', Money(), nullable=True),
    sa.Column('paid', Money(), nullable=True),
    sa.Column('patient_responsibility', Money(), nullable=True),
    sa.Column('filing_indicator', sa.String(length=2), nullable=False),
    sa.Column('payer_claim_control_number', sa.String(length=50), nullable=False),
    sa.Column('member_id', sa.String(length=80), nullable=False),
    sa.Column('patient_last', sa.String(length=60), nullable=False),
    sa.Column('patient_first', sa.String(length=35), nullable=False),
    sa.Column('service_from', sa.Date(), nullable=True),
    sa.Column('service_to', sa.Date(), nullable=True),
    sa.Column('source_file', sa.Text(), nullable=False),
    sa.Column('segment', sa.Integer(), nullable=False),
    sa.Column('byte_offset', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['remittance_id'], ['remittances.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('claim_payments', schema=None) as batch_op:
        batch_op.create_index('ix_claim_payments_pcn', ['patient_control_number'], unique=False)

    op.create_table('provider_adjustments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('remittance_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.String(length=50), nullable=False),
    sa.Column('fiscal_period_date', sa.Date(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=2), nullable=False),
    sa.Column('reference', sa.String(length=50), nullable=False),
    sa.Column('amount', Money(), nullable=True),
    sa.Column('segment', sa.Integer(), nullable=False),
    sa.Column('byte_offset', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['remittance_id'], ['remittances.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('adjustments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('claim_payment_id', sa.Integer(), nullable=False),
    sa.Column('line_ordinal', sa.Integer(), nullable=True),
    sa.Column('group_code', sa.String(length=2), nullable=False),
    sa.Column('reason', sa.String(length=5), nullable=False),
    sa.Column('amount', Money(), nullable=True),
    sa.ForeignKeyConstraint(['claim_payment_id'], ['claim_payments.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('adjustments', schema=None) as batch_op:
        batch_op.create_index('ix_adjustments_payment', ['claim_payment_id'], unique=False)

    op.create_table('payment_lines',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('claim_payment_id', sa.Integer(), nullable=False),
    sa.Column('ordinal', sa.Integer(), nullable=False),
    sa.Column('procedure_code', sa.String(length=48), nullable=False),
    sa.Column('modifiers', sa.String(length=20), nullable=False),
    sa.Column('charge', Money(), nullable=True),
    sa.Column('paid', Money(), nullable=True),
    sa.Column('units', sa.Numeric(precision=15, scale=3), nullable=True),
    sa.Column('service_date', sa.Date(), nullable=True),
    sa.Column('line_item_control_number', sa.String(length=50), nullable=False),
    sa.ForeignKeyConstraint(['claim_payment_id'], ['claim_payments.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('payment_lines', schema=None) as batch_op:
        batch_op.create_index('ix_payment_lines_payment', ['claim_payment_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('payment_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_lines_payment')

    op.drop_table('payment_lines')
    with op.batch_alter_table('adjustments', schema=None) as batch_op:
        batch_op.drop_index('ix_adjustments_payment')

    op.drop_table('adjustments')
    op.drop_table('provider_adjustments')
    with op.batch_alter_table('claim_payments', schema=None) as batch_op:
        batch_op.drop_index('ix_claim_payments_pcn')

    op.drop_table('claim_payments')
    with op.batch_alter_table('claim_lines', schema=None) as batch_op:
        batch_op.drop_index('ix_claim_lines_claim')

    op.drop_table('claim_lines')
    op.drop_table('remittances')
    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.drop_index('ix_claims_pcn')

    op.drop_table('claims')
    op.drop_table('transactions')
    op.drop_table('patient_payments')
    op.drop_table('refund_history')
    op.drop_table('ingest_exceptions')
    op.drop_table('files')
