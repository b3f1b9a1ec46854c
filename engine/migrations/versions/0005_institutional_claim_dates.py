"""institutional claims: the 837I's type of bill (CLM05-1 + CLM05-3), statement period (DTP*434)
and admission date (DTP*435) on each claim, for the CMS-838.  Claims stored before this revision
keep an empty type of bill and no such dates.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.add_column(sa.Column('type_of_bill', sa.String(length=4), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('statement_from', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('statement_to', sa.Date(), nullable=True))
        batch_op.add_column(sa.Column('admission_date', sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.drop_column('admission_date')
        batch_op.drop_column('statement_to')
        batch_op.drop_column('statement_from')
        batch_op.drop_column('type_of_bill')
