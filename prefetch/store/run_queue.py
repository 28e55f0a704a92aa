"""The work queue of a run, inside the caller's transaction: claim an item (with its
lease and the audit row of the query about to leave), renew leases, reclaim the items of
workers that died, and record an answer.

Claiming is atomic on both backends: PostgreSQL locks the chosen row with
`SELECT ... FOR UPDATE SKIP LOCKED` (concurrent workers skip it instead of waiting);
SQLite write transactions start with `BEGIN IMMEDIATE`, so claims are serialised on the
database lock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from prefetch.domain.outcome import OutcomeKind
from prefetch.domain.run import ClaimedItem, ItemState
from prefetch.errors import StopError
from prefetch.store.audit import insert_audits
from prefetch.store.dispenses import upsert_dispenses
from prefetch.store.records import AuditEvent, Recording, RecordResult
from prefetch.store.tables import RunItemRow

LOST_IN_FLIGHT = "LOST_IN_FLIGHT"
_OPEN = (ItemState.PENDING.value, ItemState.RETRY_WAIT.value, ItemState.IN_FLIGHT.value)


def claim(
    session: Session,
    run_id: str,
    worker_id: str,
    now: dt.datetime,
    *,
    lease: dt.timedelta,
    sent: Callable[[ClaimedItem], AuditEvent] | None,
    count: int = 1,
    fresh_first: bool = False,
) -> list[ClaimedItem]:
    """Up to `count` items, due retries first (earliest due), then pending ones (lowest
    id), marked in flight for `worker_id`, each with its `sent` audit row. With
    `fresh_first`, pending items first, then due retries with the fewest attempts (a
    circuit breaker's trial query: if the LSP is still down it costs an attempt of a
    patient with the most attempts left)."""
    retry_due = (
        select(RunItemRow.id)
        .where(
            RunItemRow.run_id == run_id,
            RunItemRow.state == ItemState.RETRY_WAIT.value,
            RunItemRow.next_attempt_at <= now,
        )
        .order_by(
            *((RunItemRow.attempts,) if fresh_first else ()),
            RunItemRow.next_attempt_at,
            RunItemRow.id,
        )
    )
    pending = (
        select(RunItemRow.id)
        .where(RunItemRow.run_id == run_id, RunItemRow.state == ItemState.PENDING.value)
        .order_by(RunItemRow.id)
    )
    item_ids: list[int] = []
    order = (pending, retry_due) if fresh_first else (retry_due, pending)
    for candidates in order:  # each an index seek on (run, state, id)
        if len(item_ids) >= count:
            break
        # PostgreSQL: rows other workers hold are skipped, not waited for.
        # SQLite: the IMMEDIATE transaction already serialises claims.
        item_ids += session.scalars(
            candidates.limit(count - len(item_ids)).with_for_update(skip_locked=True)
        ).all()
    if not item_ids:
        return []
    rows = session.execute(
        update(RunItemRow)
        .where(RunItemRow.id.in_(item_ids))
        .values(
            state=ItemState.IN_FLIGHT.value,
            claimed_by=worker_id,
            claimed_at=now,
            updated_at=now,
            next_attempt_at=None,
            lease_until=now + lease,
            sent_at=now,
            attempts=RunItemRow.attempts + 1,
        )
        .returning(
            RunItemRow.id,
            RunItemRow.patient_local_id,
            RunItemRow.bsn,
            RunItemRow.clinics,
            RunItemRow.attempts,
        )
    ).all()
    position = {item_id: n for n, item_id in enumerate(item_ids)}
    items: list[ClaimedItem] = []
    for row in sorted(rows, key=lambda r: position[r.id]):
        if row.bsn is None:
            raise StopError("queued item without a BSN", item_id=row.id)
        items.append(
            ClaimedItem(
                id=row.id,
                run_id=run_id,
                patient_local_id=row.patient_local_id,
                bsn=row.bsn,
                clinics=tuple(row.clinics),
                attempts=row.attempts,
                claimed_by=worker_id,
                claimed_at=now,
            )
        )
    if sent is not None:  # the queries' audit rows, before they leave (same transaction)
        insert_audits(session, [sent(item) for item in items])
    return items


def extend(session: Session, worker_id: str, item_ids: Sequence[int], until: dt.datetime) -> int:
    if not item_ids:
        return 0
    result = session.execute(
        update(RunItemRow)
        .where(
            RunItemRow.id.in_(list(item_ids)),
            RunItemRow.state == ItemState.IN_FLIGHT.value,
            RunItemRow.claimed_by == worker_id,
        )
        .values(lease_until=until)
        .returning(RunItemRow.id)
    )
    return len(result.all())


def reclaim(
    session: Session, run_id: str, now: dt.datetime, max_attempts: int, *, everything: bool
) -> list[dt.datetime]:
    """Items in flight whose lease ran out (all of them with `everything`) go back to the
    queue, due now; those that used their last attempt fail. Returns their send times."""
    held = RunItemRow.run_id == run_id, RunItemRow.state == ItemState.IN_FLIGHT.value
    expired = held if everything else (*held, RunItemRow.lease_until < now)
    rows = session.execute(
        select(RunItemRow.id, RunItemRow.attempts, RunItemRow.sent_at)
        .where(*expired)
        .with_for_update(skip_locked=True)
    ).all()
    for item_id, attempts, _sent in rows:
        last = attempts >= max_attempts
        values: dict[str, object] = {
            "state": (ItemState.FAILED if last else ItemState.RETRY_WAIT).value,
            "claimed_by": None,
            "claimed_at": None,
            "lease_until": None,
            "next_attempt_at": None if last else now,
            "updated_at": now,
        }
        if last:
            values |= {
                "outcome_kind": "failed",
                "outcome_code": LOST_IN_FLIGHT,
                "outcome_detail": f"no answer recorded after {attempts} attempts "
                "(the process sending the last one stopped)",
            }
        session.execute(update(RunItemRow).where(RunItemRow.id == item_id).values(**values))
    return [sent for _id, _attempts, sent in rows if sent is not None]


def next_due(session: Session, run_id: str, now: dt.datetime) -> dt.datetime | None:
    """When an item of the run can next be claimed (or reclaimed): `now` when one is due,
    else the earliest retry time or lease end; None when no item is open."""
    if session.scalar(
        select(RunItemRow.id)
        .where(RunItemRow.run_id == run_id, RunItemRow.state == ItemState.PENDING.value)
        .limit(1)
    ):
        return now
    waits = [
        session.scalar(
            select(func.min(column)).where(RunItemRow.run_id == run_id, RunItemRow.state == state)
        )
        for column, state in (
            (RunItemRow.next_attempt_at, ItemState.RETRY_WAIT.value),
            (RunItemRow.lease_until, ItemState.IN_FLIGHT.value),
        )
    ]
    found = [w for w in waits if w is not None]
    if found:
        return max(min(found), now)
    open_left = session.scalar(
        select(func.count()).where(RunItemRow.run_id == run_id, RunItemRow.state.in_(_OPEN))
    )
    return now if open_left else None


def record(session: Session, recordings: Sequence[Recording]) -> list[RecordResult]:
    """Record answers in the caller's transaction: their audit rows (even when the lease
    was lost), their dispenses, and each item's next state (final, or retry_wait). The
    items are read and locked with one statement and updated with one per kind."""
    insert_audits(session, [recording.audit for recording in recordings])
    ids = [recording.item_id for recording in recordings]
    found = {
        row.id: row
        for row in session.execute(
            select(RunItemRow.id, RunItemRow.state, RunItemRow.claimed_by, RunItemRow.bsn)
            .where(RunItemRow.id.in_(ids))
            .with_for_update()
        )
    }
    results: list[RecordResult] = []
    finals: list[dict[str, object]] = []
    retries: list[dict[str, object]] = []
    for recording in recordings:
        row = found.get(recording.item_id)
        if row is None:
            raise StopError("unknown run item", item_id=recording.item_id)
        if row.state == ItemState.SKIPPED.value:
            raise StopError("a skipped item cannot get an outcome", item_id=row.id)
        worker_id = recording.worker_id
        if worker_id is not None and (
            row.state != ItemState.IN_FLIGHT.value or row.claimed_by != worker_id
        ):
            results.append(RecordResult(inserted=0, updated=0, lease_lost=True))
            continue
        if recording.dispenses and row.bsn is None:
            raise StopError("dispenses for an item without a BSN", item_id=row.id)
        results.append(
            upsert_dispenses(session, row.bsn, recording.dispenses)
            if recording.dispenses and row.bsn is not None
            else RecordResult(inserted=0, updated=0)
        )
        values: dict[str, object] = {
            "item": row.id,
            "at": recording.audit.occurred_at,
            "code": recording.outcome_code,
        }
        if recording.next_attempt_at is not None:
            retries.append(values | {"due": recording.next_attempt_at})
        else:
            failed = recording.outcome_kind is OutcomeKind.FAILED
            finals.append(
                values
                | {
                    "state": (ItemState.FAILED if failed else ItemState.DONE).value,
                    "kind": recording.outcome_kind.value,
                    "detail": recording.detail,
                    "count": len({d.key for d, _ in recording.dispenses}),
                }
            )
    connection = session.connection()
    if finals:
        connection.execute(_FINAL, finals)
    if retries:
        connection.execute(_RETRY, retries)
    return results


_ITEMS = cast(Table, RunItemRow.__table__)
_RELEASED: dict[str, object] = {"claimed_by": None, "claimed_at": None, "lease_until": None}
_FINAL = (
    update(_ITEMS)
    .where(_ITEMS.c.id == bindparam("item"))
    .values(
        **_RELEASED,
        next_attempt_at=None,
        updated_at=bindparam("at"),
        outcome_code=bindparam("code"),
        state=bindparam("state"),
        outcome_kind=bindparam("kind"),
        outcome_detail=bindparam("detail"),
        dispense_count=bindparam("count"),
    )
)
_RETRY = (
    update(_ITEMS)
    .where(_ITEMS.c.id == bindparam("item"))
    .values(
        **_RELEASED,
        updated_at=bindparam("at"),
        outcome_code=bindparam("code"),
        state=ItemState.RETRY_WAIT.value,
        outcome_kind=OutcomeKind.TRANSIENT.value,
        next_attempt_at=bindparam("due"),
    )
)
