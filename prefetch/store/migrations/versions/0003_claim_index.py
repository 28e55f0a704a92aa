"""Index run items by (run_id, state, id) so that a claim is an index seek.

With (run_id, state) only, "the lowest pending id of this run" read and sorted every
item of the run: quadratic over a run.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_run_items_run_id_state", "run_items")
    op.create_index("ix_run_items_run_id_state_id", "run_items", ["run_id", "state", "id"])


def downgrade() -> None:
    op.drop_index("ix_run_items_run_id_state_id", "run_items")
    op.create_index("ix_run_items_run_id_state", "run_items", ["run_id", "state"])
