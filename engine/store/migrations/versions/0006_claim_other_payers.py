"""claims: the other payers a claim names (837 loop 2330B payer ids), so that a payer no claim
of an encounter names is known (docs/rules.md, rule 5).  Claims stored before this revision keep NULL:
their other payers are not known, and the rule does not judge their encounters.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('claims', sa.Column('other_payer_ids', sa.Text(), nullable=True))


def downgrade() -> None:
    # a plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch copy of claims would break the
    # foreign keys of claim_lines
    op.drop_column('claims', 'other_payer_ids')
