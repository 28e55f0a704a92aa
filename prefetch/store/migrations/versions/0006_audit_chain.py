"""The audit log becomes a hash chain with signed checkpoints.

- `audit_log.prev_hash` / `row_hash`: each row's SHA-256 over its canonical content and
  the previous row's hash (`prefetch/store/audit_chain.py`). Rows written before this
  revision get none and are reported by `prefetch audit verify` as unchained.
- `audit_checkpoints`: the chain head signed with the hospital's system certificate (daily)
  and the anchor that a purge of old audit rows leaves behind. Append-only like the log.
- The append-only triggers now allow exactly one kind of DELETE: a row older than the
  first row a *purge* checkpoint keeps (`anchor_id`), once that checkpoint is stored.
  UPDATE and TRUNCATE stay refused.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_DELETE_GUARD = """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
   WHEN NOT EXISTS (SELECT 1 FROM audit_checkpoints c
                    WHERE c.kind = 'purge' AND OLD.id < c.anchor_id)
   BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"""
_SQLITE_OLD_DELETE_GUARD = """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
   BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"""
_SQLITE_CHECKPOINT_GUARDS = (
    """CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
       BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END""",
    """CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
       BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END""",
)

_POSTGRES_GUARD = """CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger
   LANGUAGE plpgsql AS $$
   BEGIN
     IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_log' AND EXISTS (
         SELECT 1 FROM audit_checkpoints c WHERE c.kind = 'purge' AND OLD.id < c.anchor_id)
     THEN
       RETURN OLD;
     END IF;
     RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
   END $$"""
_POSTGRES_OLD_GUARD = """CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger
   LANGUAGE plpgsql AS $$
   BEGIN
     RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
   END $$"""
_POSTGRES_CHECKPOINT_GUARDS = (
    """CREATE TRIGGER audit_checkpoints_no_update_delete
       BEFORE UPDATE OR DELETE ON audit_checkpoints
       FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
    """CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
       FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()""",
)


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("prev_hash", sa.String(64), nullable=True))
    op.add_column("audit_log", sa.Column("row_hash", sa.String(64), nullable=True))
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("head_id", sa.BigInteger(), nullable=True),
        sa.Column("head_hash", sa.String(64), nullable=True),
        sa.Column("anchor_id", sa.BigInteger(), nullable=True),
        sa.Column("anchor_prev_hash", sa.String(64), nullable=True),
        sa.Column("rows_removed", sa.Integer(), nullable=False),
        sa.Column("signer", sa.Text(), nullable=False),
        sa.Column("certificate_pem", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_checkpoints"),
        sa.CheckConstraint("kind IN ('daily', 'purge')", name="ck_audit_checkpoints_kind"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRES_GUARD)
        for statement in _POSTGRES_CHECKPOINT_GUARDS:
            op.execute(statement)
    else:
        op.execute("DROP TRIGGER audit_log_no_delete")
        op.execute(_SQLITE_DELETE_GUARD)
        for statement in _SQLITE_CHECKPOINT_GUARDS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_POSTGRES_OLD_GUARD)
        op.execute("DROP TABLE audit_checkpoints")  # its triggers go with it
        op.execute("ALTER TABLE audit_log DROP COLUMN row_hash")
        op.execute("ALTER TABLE audit_log DROP COLUMN prev_hash")
        return
    op.execute("DROP TRIGGER audit_log_no_delete")
    op.execute(_SQLITE_OLD_DELETE_GUARD)
    op.drop_table("audit_checkpoints")
    # SQLite >= 3.35 drops a column in place (the triggers on the table stay).
    op.execute("ALTER TABLE audit_log DROP COLUMN row_hash")
    op.execute("ALTER TABLE audit_log DROP COLUMN prev_hash")
