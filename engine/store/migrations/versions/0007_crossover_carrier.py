"""claim_payments: the crossover carrier a payer names (835 loop 2100 NM1*TT, NM109), to which it
forwarded the claim on the provider's behalf, so that the unbilled-payer rule (docs/rules.md, rule 5)
knows that carrier was billed.  Claim payments stored before this revision keep NULL: what they
named is not known, and the rule does not judge their encounters.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('claim_payments', sa.Column('crossover_carrier_id', sa.String(length=80), nullable=True))


def downgrade() -> None:
    # a plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch copy of claim_payments would
    # break the foreign keys of payment_lines and adjustments
    op.drop_column('claim_payments', 'crossover_carrier_id')
