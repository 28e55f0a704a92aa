"""Initial schema: runs, run items, dispenses, the append-only audit log, mandates.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


_SQLITE_TRIGGERS = (
    """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
    """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
       BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
)
_POSTGRES_TRIGGERS = (
    """CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
       END $$""",
    """CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
       FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
    """CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
       FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()""",
)


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("schedule_id", sa.String(128), nullable=False),
        sa.Column("clinic_day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _ts("created_at"),
        _ts("started_at", nullable=True),
        _ts("finished_at", nullable=True),
        sa.Column("counts", _JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.UniqueConstraint(
            "schedule_id", "clinic_day", "kind", name="uq_runs_schedule_id_clinic_day_kind"
        ),
        sa.CheckConstraint(
            _in("state", ("planned", "running", "finished", "aborted")), name="ck_runs_state"
        ),
        sa.CheckConstraint(_in("kind", ("scheduled", "manual")), name="ck_runs_kind"),
    )
    op.create_table(
        "run_items",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("patient_local_id", sa.String(64), nullable=False),
        sa.Column("bsn", sa.String(9), nullable=True),
        sa.Column("clinics", _JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("skip_reason", sa.String(64), nullable=True),
        sa.Column("outcome_kind", sa.String(32), nullable=True),
        sa.Column("outcome_code", sa.String(64), nullable=True),
        sa.Column("outcome_detail", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _ts("next_attempt_at", nullable=True),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        _ts("claimed_at", nullable=True),
        _ts("updated_at"),
        sa.Column("dispense_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_run_items"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], ondelete="CASCADE", name="fk_run_items_run_id_runs"
        ),
        sa.UniqueConstraint(
            "run_id", "patient_local_id", name="uq_run_items_run_id_patient_local_id"
        ),
        sa.CheckConstraint(
            _in("state", ("pending", "in_flight", "skipped", "done", "retry_wait", "failed")),
            name="ck_run_items_state",
        ),
        sa.CheckConstraint("attempts >= 0", name="ck_run_items_attempts"),
    )
    op.create_index("ix_run_items_run_id_state", "run_items", ["run_id", "state"])
    op.create_index("ix_run_items_bsn", "run_items", ["bsn"])
    op.create_table(
        "dispenses",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("id_root", sa.String(128), nullable=False),
        sa.Column("id_extension", sa.String(128), nullable=False),
        sa.Column("patient_bsn", sa.String(9), nullable=False),
        sa.Column("dispensed_on", sa.Date(), nullable=True),
        sa.Column("product_code", sa.String(64), nullable=True),
        sa.Column("product_system", sa.String(128), nullable=True),
        sa.Column("product_display", sa.Text(), nullable=True),
        sa.Column("data", _JSON, nullable=False),
        sa.Column("pharmacy_ura", sa.String(16), nullable=True),
        sa.Column("pharmacy_name", sa.Text(), nullable=True),
        sa.Column("source_application_id", sa.String(64), nullable=True),
        sa.Column("source_system_uzi", sa.String(16), nullable=True),
        sa.Column("batch_message_id", sa.String(256), nullable=True),
        sa.Column("item_message_id", sa.String(256), nullable=True),
        sa.Column("query_id", sa.String(256), nullable=False),
        _ts("fetched_at"),
        _ts("first_fetched_at"),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("responsible_uzi", sa.String(16), nullable=False),
        sa.Column("responsible_name", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dispenses"),
        sa.UniqueConstraint("id_root", "id_extension", name="uq_dispenses_id_root_id_extension"),
    )
    op.create_index("ix_dispenses_patient_bsn", "dispenses", ["patient_bsn"])
    op.create_table(
        "audit_log",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("action_code", sa.String(1), nullable=False),
        _ts("occurred_at"),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("user_role", sa.String(64), nullable=True),
        sa.Column("responsible_user_id", sa.String(128), nullable=True),
        sa.Column("patient_bsn", sa.String(9), nullable=True),
        sa.Column("object_detail", _JSON, nullable=False),
        sa.Column("authorisation_basis", sa.String(128), nullable=True),
        sa.Column("source_system", sa.String(128), nullable=False),
        sa.Column("source_workstation", sa.String(128), nullable=True),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
        sa.UniqueConstraint("event_id", name="uq_audit_log_event_id"),
        sa.CheckConstraint(
            _in("action_code", ("C", "R", "U", "D", "E")), name="ck_audit_log_action_code"
        ),
    )
    op.create_index(
        "ix_audit_log_patient_bsn_occurred_at", "audit_log", ["patient_bsn", "occurred_at"]
    )
    op.create_index("ix_audit_log_occurred_at", "audit_log", ["occurred_at"])
    op.create_table(
        "mandates",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("mandating_uzi", sa.String(16), nullable=False),
        sa.Column("mandating_role", sa.String(16), nullable=False),
        sa.Column("mandating_name", sa.Text(), nullable=False),
        sa.Column("mandating_ura", sa.String(16), nullable=True),
        sa.Column("mandated_id", sa.String(16), nullable=False),
        sa.Column("schedules", _JSON, nullable=False),
        _ts("valid_from"),
        _ts("valid_until"),
        sa.Column("token_xml", sa.LargeBinary(), nullable=True),
        _ts("created_at"),
        _ts("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_mandates"),
    )
    dialect = op.get_bind().dialect.name
    for statement in _POSTGRES_TRIGGERS if dialect == "postgresql" else _SQLITE_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE audit_log")
        op.execute("DROP FUNCTION audit_log_append_only()")
    else:
        op.drop_table("audit_log")
    op.drop_table("mandates")
    op.drop_table("dispenses")
    op.drop_table("run_items")
    op.drop_table("runs")
