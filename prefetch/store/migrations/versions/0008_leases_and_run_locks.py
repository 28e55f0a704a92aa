"""Leases on items in flight, runs that end incomplete, and named locks.

- `run_items.lease_until`: an item in flight belongs to its worker until then (renewed by
  a heartbeat); after it, a restart reclaims the item at once instead of after a fixed
  stale time. `run_items.sent_at`: when the current attempt's query left. Items in flight
  before this migration get a lease of ten minutes from their claim (the old stale time).
- `runs.state` may be `incomplete`: the run stopped at the end of its time window with
  items left (it can be resumed).
- `locks`: who holds a named lock (one run per schedule and clinic day; the daemon
  leader): process id, host and heartbeat. On PostgreSQL the lock itself is an advisory
  lock and the row only names the holder.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_STATES = ("planned", "running", "finished", "aborted")
_NEW_STATES = (*_OLD_STATES, "incomplete")
_SCHEDULED = sa.text("kind = 'scheduled'")
_TEN_MINUTES = dt.timedelta(minutes=10)
_CHECK_NAMES = ("ck_runs_ck_runs_state", "ck_runs_state")  # PostgreSQL: before, after


def _states(values: tuple[str, ...]) -> str:
    return f"state IN ({', '.join(repr(v) for v in values)})"


def _runs(states: tuple[str, ...]) -> sa.Table:
    """`runs` as 0002 left it, with the given state list: the source of SQLite's table
    rebuild (no reflection, so the CHECK constraints and the partial index survive)."""
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
        sa.Index(
            "uq_runs_scheduled_once",
            "schedule_id",
            "clinic_day",
            "kind",
            unique=True,
            sqlite_where=_SCHEDULED,
        ),
        sa.CheckConstraint(_states(states), name="ck_runs_state"),
        sa.CheckConstraint("kind IN ('scheduled', 'manual')", name="ck_runs_kind"),
    )


def _set_run_states(new: tuple[str, ...]) -> None:
    if op.get_bind().dialect.name == "sqlite":
        # The rebuild copies every row into `runs` as defined with the new state list.
        with op.batch_alter_table("runs", copy_from=_runs(new), recreate="always"):
            pass
    else:
        # 0001 named it twice over (the naming convention applied to "ck_runs_state").
        old_name, new_name = _CHECK_NAMES if new == _NEW_STATES else _CHECK_NAMES[::-1]
        op.drop_constraint(op.f(old_name), "runs", type_="check")
        op.create_check_constraint(op.f(new_name), "runs", sa.text(_states(new)))


def upgrade() -> None:
    op.add_column("run_items", sa.Column("lease_until", sa.DateTime(timezone=True)))
    op.add_column("run_items", sa.Column("sent_at", sa.DateTime(timezone=True)))
    items = sa.table(
        "run_items",
        sa.column("state", sa.String),
        sa.column("claimed_at", sa.DateTime(timezone=True)),
        sa.column("lease_until", sa.DateTime(timezone=True)),
        sa.column("sent_at", sa.DateTime(timezone=True)),
    )
    rows = op.get_bind().execute(
        sa.select(items.c.claimed_at).where(items.c.state == "in_flight").distinct()
    )
    for (claimed_at,) in list(rows):
        lease = None if claimed_at is None else claimed_at + _TEN_MINUTES
        op.execute(
            items.update()
            .where(items.c.state == "in_flight", items.c.claimed_at == claimed_at)
            .values(lease_until=lease, sent_at=claimed_at)
        )
    _set_run_states(_NEW_STATES)
    op.create_table(
        "locks",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_locks"),
    )


def downgrade() -> None:
    """Fails if a run ended incomplete (the old schema has no such state)."""
    op.drop_table("locks")
    _set_run_states(_OLD_STATES)
    op.drop_column("run_items", "sent_at")
    op.drop_column("run_items", "lease_until")
