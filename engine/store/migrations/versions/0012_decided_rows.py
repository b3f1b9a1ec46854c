"""The API's lists read from records (issue 15, step 0): ``decided_rows`` holds the rows of the
recoupments, credit balances and exceptions ``run`` decided, as the API's JSON items ordered by
an indexed sort key, and ``decided_lists`` the facts, configuration and day they were decided
from.

A store made before this revision has no ``decided_lists`` row: its first list call decides
everything once and records the rows.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decided_rows",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("sort_key", sa.Text().with_variant(sa.Text(collation="C"), "postgresql"), nullable=False),
        sa.Column("row_json", sa.Text(), nullable=False),
    )
    op.create_index("ix_decided_rows_kind_key", "decided_rows", ["kind", "sort_key", "seq"])
    op.create_table(
        "decided_lists",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("facts", sa.String(length=200), nullable=False),
        sa.Column("config", sa.String(length=64), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("decided_lists")
    op.drop_index("ix_decided_rows_kind_key", table_name="decided_rows")
    op.drop_table("decided_rows")
