"""claims: the billing provider's name, address and contact (837 2010AA NM1/N3/N4/PER) and the
patient's address (2010CA N3/N4, else the subscriber's 2010BA); remittances: the payer's address
(835 N1*PR N3/N4).  They make the letterhead and the envelope window of the refund letters and
patient notices (``edirecon report``).  Rows stored before this revision keep NULL: not known.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

#: (suffix, length) of the address columns (schema.ADDRESS_PARTS), as they were at this revision
ADDRESS = (('address1', 55), ('address2', 55), ('city', 30), ('state', 2), ('postal_code', 15), ('country', 3))


def _address(prefix: str) -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column(f'{prefix}_{part}', sa.String(length=n), nullable=True) for part, n in ADDRESS]


def upgrade() -> None:
    for column in [
        sa.Column('billing_name', sa.String(length=60), nullable=True),
        *_address('billing'),
        sa.Column('billing_contact', sa.String(length=60), nullable=True),
        sa.Column('billing_phone', sa.String(length=80), nullable=True),
        *_address('patient'),
    ]:
        op.add_column('claims', column)
    for column in _address('payer'):
        op.add_column('remittances', column)


def downgrade() -> None:
    # plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch copy would break the foreign keys
    for part, _ in ADDRESS:
        op.drop_column('remittances', f'payer_{part}')
    for name in ['billing_name', *(f'billing_{p}' for p, _ in ADDRESS), 'billing_contact', 'billing_phone', *(f'patient_{p}' for p, _ in ADDRESS)]:
        op.drop_column('claims', name)
