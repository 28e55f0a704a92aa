"""The run ledger as the daemon reads it: a scheduled run of a day, the runs in progress,
the last finished run, and whether the database answers at all."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import Engine, select, text

from prefetch.domain.run import RunKind, RunRecord, RunState, RunSummary
from prefetch.store._support import Sessions
from prefetch.store.runs import RunRepository
from prefetch.store.tables import RunRow


class SqlRunLedger:
    def __init__(self, engine: Engine, runs: RunRepository | None = None) -> None:
        self._engine = engine
        self._sessions = Sessions(engine)
        self._runs = runs or RunRepository(engine)

    def scheduled_run(self, schedule_id: str, clinic_day: dt.date) -> RunRecord | None:
        return self._runs.find_run(schedule_id, clinic_day, RunKind.SCHEDULED)

    def _ids(self, state: RunState, *, newest: bool, limit: int) -> list[str]:
        order = RunRow.finished_at.desc() if newest else RunRow.created_at
        with self._sessions.read() as session:
            return list(
                session.scalars(
                    select(RunRow.id)
                    .where(RunRow.state == state.value)
                    .order_by(order)
                    .limit(limit)
                )
            )

    def running(self) -> Sequence[RunRecord]:
        found = (self._runs.get_run(i) for i in self._ids(RunState.RUNNING, newest=False, limit=50))
        return [r for r in found if r is not None]

    def last_finished(self) -> RunRecord | None:
        ids = self._ids(RunState.FINISHED, newest=True, limit=1)
        return self._runs.get_run(ids[0]) if ids else None

    def summary(self, run_id: str) -> RunSummary:
        return self._runs.summary(run_id)

    def ping(self) -> None:
        """Raise when the database does not answer."""
        with self._engine.connect() as conn:
            conn.execute(text("SELECT 1"))
