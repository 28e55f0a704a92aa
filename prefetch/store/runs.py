"""The durable run ledger and work queue (`RunStore` on SQLAlchemy; the queue's
statements are in `prefetch.store.run_queue`). A claim and the audit row of the query
about to leave are written in one transaction; so are an answer, its dispenses and its
audit row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from prefetch.domain.dispense import Dispense, DispenseProvenance
from prefetch.domain.outcome import OutcomeKind
from prefetch.errors import InvalidValueError, StopError
from prefetch.store import run_queue
from prefetch.store._support import Sessions
from prefetch.store.records import (
    AuditEvent,
    ClaimedItem,
    ItemRecord,
    ItemState,
    NewItem,
    Recording,
    RecordResult,
    RunKind,
    RunRecord,
    RunState,
    RunSummary,
)
from prefetch.store.tables import RunItemRow, RunRow

_IN_CHUNK = 500  # BSNs per IN (...) list
_ITEM_CHUNK = 2000  # run items per INSERT (one statement, bounded memory)

DEFAULT_LEASE = dt.timedelta(seconds=15)


def _run(row: RunRow) -> RunRecord:
    return RunRecord(
        id=row.id,
        schedule_id=row.schedule_id,
        clinic_day=row.clinic_day,
        kind=RunKind(row.kind),
        state=RunState(row.state),
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        counts=row.counts,
    )


def _item(row: RunItemRow) -> ItemRecord:
    return ItemRecord(
        id=row.id,
        run_id=row.run_id,
        patient_local_id=row.patient_local_id,
        bsn=row.bsn,
        clinics=tuple(row.clinics),
        state=ItemState(row.state),
        skip_reason=row.skip_reason,
        outcome_kind=row.outcome_kind,
        outcome_code=row.outcome_code,
        outcome_detail=row.outcome_detail,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        claimed_by=row.claimed_by,
        claimed_at=row.claimed_at,
        updated_at=row.updated_at,
        dispense_count=row.dispense_count,
    )


def _new_item_row(run_id: str, item: NewItem, at: dt.datetime) -> dict[str, Any]:
    state = ItemState.SKIPPED if item.skip_reason is not None else ItemState.PENDING
    return {
        "run_id": run_id,
        "patient_local_id": item.patient_local_id,
        "bsn": item.bsn,
        "clinics": list(item.clinics),
        "state": state.value,
        "skip_reason": item.skip_reason,
        "attempts": 0,
        "updated_at": at,
        "dispense_count": 0,
    }


def _chunks(items: Iterable[NewItem], size: int) -> Iterator[list[NewItem]]:
    chunk: list[NewItem] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _insert_items(session: Session, run_id: str, items: Sequence[NewItem], at: dt.datetime) -> None:
    if items:
        session.execute(insert(RunItemRow), [_new_item_row(run_id, i, at) for i in items])


class RunRepository:
    """`RunStore` on SQLAlchemy (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = Sessions(engine)

    # ------------------------------------------------------------------ runs
    def create_run(  # noqa: PLR0917 - the contract's positional signature
        self,
        run_id: str,
        schedule_id: str,
        clinic_day: dt.date,
        kind: RunKind | str,
        created_at: dt.datetime,
        items: Iterable[NewItem],
    ) -> bool:
        run_kind = RunKind(kind)
        try:
            with self._sessions.write() as session:
                if self._existing(session, run_id, schedule_id, clinic_day, run_kind):
                    return False
                session.add(
                    RunRow(
                        id=run_id,
                        schedule_id=schedule_id,
                        clinic_day=clinic_day,
                        kind=run_kind.value,
                        state=RunState.PLANNED.value,
                        created_at=created_at,
                        started_at=None,
                        finished_at=None,
                        counts=None,
                    )
                )
                session.flush()
                seen: set[str] = set()
                for chunk in _chunks(items, _ITEM_CHUNK):
                    for item in chunk:
                        if item.patient_local_id in seen:
                            raise InvalidValueError("a run has one item per patient", run_id=run_id)
                        seen.add(item.patient_local_id)
                    _insert_items(session, run_id, chunk, created_at)
                return True
        except StopError:
            # Lost a race with another process creating the same run: that is a resume.
            with self._sessions.read() as session:
                if self._existing(session, run_id, schedule_id, clinic_day, run_kind):
                    return False
            raise

    @staticmethod
    def _existing(
        session: Session, run_id: str, schedule_id: str, clinic_day: dt.date, kind: RunKind
    ) -> bool:
        same = RunRow.id == run_id
        if kind is RunKind.SCHEDULED:  # one scheduled run per schedule and day
            same = or_(
                same,
                and_(
                    RunRow.schedule_id == schedule_id,
                    RunRow.clinic_day == clinic_day,
                    RunRow.kind == kind.value,
                ),
            )
        return session.scalar(select(RunRow.id).where(same).limit(1)) is not None

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._sessions.read() as session:
            row = session.get(RunRow, run_id)
            return _run(row) if row is not None else None

    def find_run(
        self, schedule_id: str, clinic_day: dt.date, kind: RunKind | str
    ) -> RunRecord | None:
        with self._sessions.read() as session:
            row = session.scalar(
                select(RunRow)
                .where(
                    RunRow.schedule_id == schedule_id,
                    RunRow.clinic_day == clinic_day,
                    RunRow.kind == RunKind(kind).value,
                )
                .order_by(RunRow.created_at.desc(), RunRow.id.desc())
                .limit(1)
            )
            return _run(row) if row is not None else None

    def queried_elsewhere(
        self, clinic_day: dt.date, schedule_id: str, bsns: Iterable[str]
    ) -> dict[str, str]:
        wanted = sorted(set(bsns))
        found: dict[str, str] = {}
        with self._sessions.read() as session:
            for start in range(0, len(wanted), _IN_CHUNK):
                rows = session.execute(
                    select(RunItemRow.bsn, RunRow.schedule_id)
                    .join(RunRow, RunRow.id == RunItemRow.run_id)
                    .where(
                        RunRow.clinic_day == clinic_day,
                        RunRow.kind == RunKind.SCHEDULED.value,
                        RunRow.schedule_id != schedule_id,
                        RunItemRow.skip_reason.is_(None),
                        RunItemRow.bsn.in_(wanted[start : start + _IN_CHUNK]),
                    )
                    .order_by(RunRow.created_at, RunRow.id)
                )
                for bsn, other in rows:
                    if bsn is not None:
                        found.setdefault(bsn, other)
        return found

    def extend_run(self, run_id: str, items: Iterable[NewItem], at: dt.datetime) -> tuple[int, int]:
        with self._sessions.write() as session:
            run = session.get(RunRow, run_id, with_for_update=True)
            if run is None:
                raise StopError("unknown run", run_id=run_id)
            if run.state == RunState.ABORTED.value:
                return 0, 0
            # The known items' ids and states only (not whole rows): a resume of a big day.
            rows = session.execute(
                select(RunItemRow.patient_local_id, RunItemRow.state).where(
                    RunItemRow.run_id == run_id
                )
            )
            known: dict[str, str] = {row[0]: row[1] for row in rows}
            open_states = (ItemState.PENDING.value, ItemState.RETRY_WAIT.value)
            added = withdrawn = 0
            to_query = False
            for chunk in _chunks(items, _ITEM_CHUNK):
                new = [i for i in chunk if i.patient_local_id not in known]
                _insert_items(session, run_id, new, at)
                known.update((i.patient_local_id, "new") for i in new)
                added += len(new)
                to_query = to_query or any(i.skip_reason is None for i in new)
                cancelled = [
                    i.patient_local_id
                    for i in chunk
                    if i.skip_reason == "cancelled" and known.get(i.patient_local_id) in open_states
                ]
                if cancelled:
                    done = session.execute(
                        update(RunItemRow)
                        .where(
                            RunItemRow.run_id == run_id,
                            RunItemRow.patient_local_id.in_(cancelled),
                            RunItemRow.state.in_(open_states),
                        )
                        .values(
                            state=ItemState.SKIPPED.value, skip_reason="cancelled", updated_at=at
                        )
                        .execution_options(synchronize_session=False)
                    )
                    withdrawn += cast("CursorResult[Any]", done).rowcount
                    known.update(dict.fromkeys(cancelled, ItemState.SKIPPED.value))
            if to_query and run.state == RunState.FINISHED.value:
                run.state = RunState.PLANNED.value  # new patients to query: work it again
                run.finished_at = None
            return added, withdrawn

    def start_run(self, run_id: str, at: dt.datetime) -> None:
        with self._sessions.write() as session:
            row = session.get(RunRow, run_id, with_for_update=True)
            if row is None:
                raise StopError("unknown run", run_id=run_id)
            if row.state == RunState.RUNNING.value:
                return
            if row.state not in (RunState.PLANNED.value, RunState.INCOMPLETE.value):
                raise StopError("run already ended", run_id=run_id, state=row.state)
            row.state = RunState.RUNNING.value
            row.started_at = row.started_at or at
            row.finished_at = None

    def finish_run(
        self, run_id: str, at: dt.datetime, *, state: RunState = RunState.FINISHED
    ) -> RunSummary:
        with self._sessions.write() as session:
            row = session.get(RunRow, run_id, with_for_update=True)
            if row is None:
                raise StopError("unknown run", run_id=run_id)
            summary = self._summary(session, run_id)
            row.state = state.value
            row.finished_at = at
            row.counts = {
                "total": summary.total,
                "by_state": dict(summary.by_state),
                "by_outcome": dict(summary.by_outcome),
                "by_skip_reason": dict(summary.by_skip_reason),
                "dispenses": summary.dispenses,
            }
            return summary

    # ------------------------------------------------------------------ queue
    def claim_next(
        self,
        run_id: str,
        worker_id: str,
        now: dt.datetime,
        *,
        lease: dt.timedelta = DEFAULT_LEASE,
        sent: Callable[[ClaimedItem], AuditEvent] | None = None,
    ) -> ClaimedItem | None:
        claimed = self.claim_batch(run_id, worker_id, now, count=1, lease=lease, sent=sent)
        return claimed[0] if claimed else None

    def claim_batch(
        self,
        run_id: str,
        worker_id: str,
        now: dt.datetime,
        *,
        count: int,
        lease: dt.timedelta = DEFAULT_LEASE,
        sent: Callable[[ClaimedItem], AuditEvent] | None = None,
        fresh_first: bool = False,
    ) -> list[ClaimedItem]:
        with self._sessions.write() as session:
            return run_queue.claim(
                session,
                run_id,
                worker_id,
                now,
                lease=lease,
                sent=sent,
                count=count,
                fresh_first=fresh_first,
            )

    def extend_leases(self, worker_id: str, item_ids: Sequence[int], until: dt.datetime) -> int:
        with self._sessions.write() as session:
            return run_queue.extend(session, worker_id, item_ids, until)

    def reclaim_expired(
        self, run_id: str, now: dt.datetime, *, max_attempts: int, everything: bool = False
    ) -> list[dt.datetime]:
        with self._sessions.write() as session:
            return run_queue.reclaim(session, run_id, now, max_attempts, everything=everything)

    def next_due_at(self, run_id: str, now: dt.datetime) -> dt.datetime | None:
        with self._sessions.read() as session:
            return run_queue.next_due(session, run_id, now)

    def record_outcome(
        self,
        item_id: int,
        *,
        outcome_kind: OutcomeKind,
        outcome_code: str | None,
        detail: str | None,
        dispenses: Sequence[tuple[Dispense, DispenseProvenance]],
        audit: AuditEvent,
        worker_id: str | None = None,
    ) -> RecordResult:
        if not outcome_kind.is_final:
            raise InvalidValueError(
                "a transient outcome is recorded with record_retry", item_id=item_id
            )
        recording = Recording(
            item_id,
            audit,
            outcome_kind,
            outcome_code,
            detail,
            tuple(dispenses),
            worker_id=worker_id,
        )
        return self.record_many([recording])[0]

    def record_retry(
        self,
        item_id: int,
        *,
        code: str | None,
        next_attempt_at: dt.datetime,
        audit: AuditEvent,
        dispenses: Sequence[tuple[Dispense, DispenseProvenance]] = (),
        worker_id: str | None = None,
    ) -> RecordResult:
        recording = Recording(
            item_id,
            audit,
            OutcomeKind.TRANSIENT,
            code,
            None,
            tuple(dispenses),
            next_attempt_at=next_attempt_at,
            worker_id=worker_id,
        )
        return self.record_many([recording])[0]

    def record_many(self, recordings: Sequence[Recording]) -> list[RecordResult]:
        for recording in recordings:
            if recording.next_attempt_at is None and not recording.outcome_kind.is_final:
                raise InvalidValueError(
                    "a transient outcome is recorded as a retry", item_id=recording.item_id
                )
        with self._sessions.write() as session:
            return run_queue.record(session, recordings)

    # ------------------------------------------------------------------ read
    def summary(self, run_id: str) -> RunSummary:
        with self._sessions.read() as session:
            return self._summary(session, run_id)

    @staticmethod
    def _summary(session: Session, run_id: str) -> RunSummary:
        def counts(column: Any) -> dict[str, int]:
            rows = session.execute(
                select(column, func.count())
                .where(RunItemRow.run_id == run_id, column.is_not(None))
                .group_by(column)
            )
            return {str(key): int(n) for key, n in rows}

        by_state = counts(RunItemRow.state)
        dispenses = session.scalar(
            select(func.coalesce(func.sum(RunItemRow.dispense_count), 0)).where(
                RunItemRow.run_id == run_id
            )
        )
        return RunSummary(
            run_id=run_id,
            total=sum(by_state.values()),
            by_state=by_state,
            by_outcome=counts(RunItemRow.outcome_kind),
            by_skip_reason=counts(RunItemRow.skip_reason),
            dispenses=int(dispenses or 0),
        )

    def items(self, run_id: str) -> list[ItemRecord]:
        with self._sessions.read() as session:
            rows = session.scalars(
                select(RunItemRow).where(RunItemRow.run_id == run_id).order_by(RunItemRow.id)
            )
            return [_item(row) for row in rows]

    def list_runs(self, limit: int = 20) -> list[RunRecord]:
        with self._sessions.read() as session:
            rows = session.scalars(
                select(RunRow).order_by(RunRow.created_at.desc(), RunRow.id.desc()).limit(limit)
            )
            return [_run(row) for row in rows]
