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
    op.add_column('claims', sa.Column('type_of_bill', sa.String(length=4), nullable=False, server_default=''))
    op.add_column('claims', sa.Column('statement_from', sa.Date(), nullable=True))
    op.add_column('claims', sa.Column('statement_to', sa.Date(), nullable=True))
    op.add_column('claims', sa.Column('admission_date', sa.Date(), nullable=True))


def downgrade() -> None:
    # plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch copy of claims would break the
    # foreign keys of claim_lines
    for column in ('admission_date', 'statement_to', 'statement_from', 'type_of_bill'):
        op.drop_column('claims', column)
