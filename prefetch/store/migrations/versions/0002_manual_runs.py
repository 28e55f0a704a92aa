"""Several manual runs per schedule and day; a scheduled run stays unique per day.

0001 made (schedule_id, clinic_day, kind) unique for every kind, so a second manual run
(a desk re-fetch, a second demo) on the same day was taken for a resume. Now only
scheduled runs are unique per schedule and day (a partial unique index).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_UNIQUE = "uq_runs_schedule_id_clinic_day_kind"
_NEW_INDEX = "uq_runs_scheduled_once"
_SCHEDULED = sa.text("kind = 'scheduled'")
_COLUMNS = ["schedule_id", "clinic_day", "kind"]


def _runs_0001() -> sa.Table:
    """`runs` as 0001 created it: the source of SQLite's table rebuild (no reflection,
    so the CHECK constraints survive)."""
    return sa.Table(
        "runs",
        sa.MetaData(),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("schedule_id", sa.String(128), nullable=False),
        sa.Column("clinic_day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("counts", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.UniqueConstraint(*_COLUMNS, name=_OLD_UNIQUE),
        sa.CheckConstraint(
            "state IN ('planned', 'running', 'finished', 'aborted')", name="ck_runs_state"
        ),
        sa.CheckConstraint("kind IN ('scheduled', 'manual')", name="ck_runs_kind"),
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("runs", copy_from=_runs_0001(), recreate="always") as batch:
            batch.drop_constraint(_OLD_UNIQUE, type_="unique")
    else:
        op.drop_constraint(_OLD_UNIQUE, "runs", type_="unique")
    op.create_index(
        _NEW_INDEX,
        "runs",
        _COLUMNS,
        unique=True,
        sqlite_where=_SCHEDULED,
        postgresql_where=_SCHEDULED,
    )


def downgrade() -> None:
    """Fails if a schedule has several manual runs on one day (they cannot be merged)."""
    op.drop_index(_NEW_INDEX, "runs")
    if op.get_bind().dialect.name == "sqlite":
        table = _runs_0001()
        table.constraints.discard(next(c for c in table.constraints if c.name == _OLD_UNIQUE))
        with op.batch_alter_table("runs", copy_from=table, recreate="always") as batch:
            batch.create_unique_constraint(_OLD_UNIQUE, _COLUMNS)
    else:
        op.create_unique_constraint(_OLD_UNIQUE, "runs", _COLUMNS)
