"""The shared send budget: one budget row and the send leases of every process.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    budget = op.create_table(
        "send_budget",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("paused_until", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_send_budget"),
    )
    op.bulk_insert(budget, [{"id": 1, "paused_until": 0.0}])
    op.create_table(
        "send_leases",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("send_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("released_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_send_leases"),
    )
    op.create_index("ix_send_leases_send_at", "send_leases", ["send_at"])


def downgrade() -> None:
    op.drop_index("ix_send_leases_send_at", "send_leases")
    op.drop_table("send_leases")
    op.drop_table("send_budget")
