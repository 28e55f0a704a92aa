"""The appointment book (feeds and file loads, per source and appointment id) and the
local objection register.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from prefetch.store.db import UtcDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "appointment_book",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("appointment_id", sa.String(256), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", UtcDateTime(), nullable=True),
        sa.Column("start_at", UtcDateTime(), nullable=False),
        sa.Column("end_at", UtcDateTime(), nullable=True),
        sa.Column("clinic", sa.String(256), nullable=False),
        sa.Column("agenda", sa.String(256), nullable=True),
        sa.Column("appointment_type", sa.String(256), nullable=False),
        sa.Column("patient_local_id", sa.String(256), nullable=False),
        sa.Column("bsn", sa.String(9), nullable=True),
        sa.Column("bsn_verified", sa.Boolean(), nullable=False),
        sa.Column("bsn_invalid", sa.Boolean(), nullable=False),
        sa.Column("consent", sa.String(16), nullable=False),
        sa.Column("clinician_uzi", sa.String(256), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", "appointment_id", name="pk_appointment_book"),
    )
    op.create_index(
        "ix_appointment_book_clinic_start_at", "appointment_book", ["clinic", "start_at"]
    )
    op.create_index("ix_appointment_book_bsn", "appointment_book", ["bsn"])
    op.create_table(
        "objections",
        sa.Column("bsn", sa.String(9), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("recorded_at", UtcDateTime(), nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("bsn", name="pk_objections"),
    )


def downgrade() -> None:
    op.drop_table("objections")
    op.drop_index("ix_appointment_book_bsn", "appointment_book")
    op.drop_index("ix_appointment_book_clinic_start_at", "appointment_book")
    op.drop_table("appointment_book")
