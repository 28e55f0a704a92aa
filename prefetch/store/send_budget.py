"""The shared send budget in the database: reservations of send slots under a lease.

Every process (every schedule, every daemon) that sends to the LSP reserves its send
slots here, so one budget holds for all of them. A reservation runs in one write
transaction that holds the budget lock (`SELECT ... FOR UPDATE` of the budget row on
PostgreSQL, `BEGIN IMMEDIATE` on SQLite):

- queries in flight are the leases neither released nor expired; at the cap, no slot;
- the send time is the earliest moment, at least `lead` ahead, that keeps the pacing
  (one send per `interval` after the last one reserved), the window (at most `capacity`
  sends in any `window`) and a pause the LSP asked for; a lease is written with that
  send time.

A process that dies keeps its leases until they expire: its queries may still be at the
LSP, so they count against the in-flight cap and the window after a restart. When the
holder is known gone (`Pacing.gone_lease_seconds` and an `is_gone` test, see
`prefetch.liveness`), its unreleased leases count until `send_at + gone_lease_seconds`
instead (the connect and read time-outs: the longest a live client waits for an answer
before it gives the slot back itself), not the live lease's margin for a release written
late. A send time never changes: the window still counts every send. Times are
wall-clock seconds since the epoch (machines sharing a database keep their clocks in
step with NTP).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import (
    Engine,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from prefetch.store._support import Sessions, translate_errors
from prefetch.store.tables import SendBudgetRow, SendLeaseRow

BUDGET_ID = 1


@dataclass(frozen=True, slots=True)
class Pacing:
    """The limits a reservation keeps."""

    interval: float  # seconds between two sends
    window: float  # at most `capacity` sends in any window this long
    capacity: int
    max_in_flight: int
    lease_seconds: float  # an unreleased lease counts this long after its send time
    # No reservation further ahead than this: slots are claimed for (and their items
    # marked in flight) only this far ahead, so a crash strands few unsent claims.
    horizon: float = 0.25
    lead: float = 0.05  # at least this far ahead: committing must not make the slot late
    # A holder known gone: its unreleased leases count this long after their send time
    # (None: until they expire, as any other).
    gone_lease_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Reservation:
    lease_id: int
    send_at: float


@dataclass(frozen=True, slots=True)
class Wait:
    """No slot now; ask again after `seconds` (`full`: the in-flight cap is reached)."""

    seconds: float
    full: bool


class SendBudgetStore:
    """Reservations, releases and the global pause, on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = Sessions(engine)

    def reserve(
        self,
        holder: str,
        clock: Callable[[], float],
        pacing: Pacing,
        *,
        count: int = 1,
        released: Sequence[tuple[int, float]] = (),
        clean: bool = True,
        is_gone: Callable[[str], bool] | None = None,
    ) -> list[Reservation] | Wait:
        """Up to `count` send slots, paced, at `send_at >= clock()`, or how long to wait.
        The time is read once the budget lock is held (waiting for the lock must not make
        the slot late). `released` (lease, when) are released first, in the same
        transaction; with `clean`, leases that count for nothing any more are deleted, and
        the leases of holders `is_gone` names are shortened (`Pacing.gone_lease_seconds`).
        Raises StoreUnavailableError / StoreError when the database cannot decide."""
        leases = SendLeaseRow
        with self._sessions.write() as session:
            paused = session.scalar(
                select(SendBudgetRow.paused_until)
                .where(SendBudgetRow.id == BUDGET_ID)
                .with_for_update()
            )
            if paused is None:
                session.add(SendBudgetRow(id=BUDGET_ID, paused_until=0.0))
                paused = 0.0
            self._release(session, released)
            now = clock()
            if clean:
                session.execute(
                    delete(leases).where(
                        leases.send_at < now - pacing.window - pacing.interval - 60.0,
                        or_(leases.released_at.is_not(None), leases.expires_at <= now),
                    )
                )
                if is_gone is not None and pacing.gone_lease_seconds is not None:
                    self._end_gone(session, holder, now, pacing.gone_lease_seconds, is_gone)
            active = and_(leases.released_at.is_(None), leases.expires_at > now)
            in_flight = session.scalar(select(func.count()).select_from(leases).where(active))
            free = pacing.max_in_flight - (in_flight or 0)
            if free <= 0:
                return Wait(seconds=0.05, full=True)
            # A process asks for what its own senders can take (its share of the cap).
            wanted = max(1, min(count, free, pacing.capacity))
            last = session.scalar(select(func.max(leases.send_at)))
            # The sends at positions capacity - wanted + 1 .. capacity, newest first: the
            # j-th new send must come a window after the one at position capacity - j.
            first_position = pacing.capacity - wanted + 1
            older = list(
                session.scalars(
                    select(leases.send_at)
                    .order_by(leases.send_at.desc())
                    .limit(wanted)
                    .offset(first_position - 1)
                )
            )
            times: list[float] = []
            at = now
            for j in range(wanted):
                at = max(now + pacing.lead, paused)
                previous = times[-1] if times else last
                if previous is not None:
                    at = max(at, previous + pacing.interval)
                index = pacing.capacity - j - first_position
                if index < len(older):
                    at = max(at, older[index] + pacing.window)
                if at > now + pacing.horizon:
                    break
                times.append(at)
            if not times:
                return Wait(seconds=at - now - pacing.horizon + pacing.lead, full=False)
            ids = session.scalars(
                insert(leases).returning(leases.id, sort_by_parameter_order=True),
                [
                    {
                        "holder": holder,
                        "send_at": t,
                        "expires_at": t + pacing.lease_seconds,
                        "released_at": None,
                    }
                    for t in times
                ],
            ).all()
            return [Reservation(int(i), t) for i, t in zip(ids, times, strict=True)]

    @staticmethod
    def _end_gone(
        session: Session,
        holder: str,
        now: float,
        seconds: float,
        is_gone: Callable[[str], bool],
    ) -> None:
        """Leases of holders that are gone count until `send_at + seconds` (if sooner)."""
        leases = SendLeaseRow
        longer = and_(
            leases.released_at.is_(None),
            leases.expires_at > now,
            leases.expires_at > leases.send_at + seconds,
        )
        holders = session.scalars(
            select(leases.holder).where(longer, leases.holder != holder).distinct()
        ).all()
        gone = [h for h in holders if is_gone(h)]
        if gone:
            session.execute(
                update(leases)
                .where(longer, leases.holder.in_(gone))
                .values(expires_at=leases.send_at + seconds)
            )

    def release_many(self, released: Sequence[tuple[int, float]]) -> None:
        """The queries' answers are in: (lease, when) no longer count in flight."""
        with self._sessions.write() as session:
            self._release(session, released)

    @staticmethod
    def _release(session: Session, released: Sequence[tuple[int, float]]) -> None:
        if released:
            table = cast(Table, SendLeaseRow.__table__)
            session.execute(
                update(table)
                .where(table.c.id == bindparam("lease"), table.c.released_at.is_(None))
                .values(released_at=bindparam("at")),
                [{"lease": lease, "at": at} for lease, at in released],
            )

    def cancel(self, lease_id: int) -> None:
        """A reservation that was not used: it neither counts in flight nor as a send."""
        with self._sessions.write() as session:
            session.execute(delete(SendLeaseRow).where(SendLeaseRow.id == lease_id))

    def pause_until(self, until: float) -> None:
        """Send nothing, from any process, before `until` (never shortens a pause)."""
        with self._sessions.write() as session:
            session.execute(
                update(SendBudgetRow)
                .where(SendBudgetRow.id == BUDGET_ID, SendBudgetRow.paused_until < until)
                .values(paused_until=until)
            )

    def in_flight(self, now: float) -> int:
        leases = SendLeaseRow
        with translate_errors(), self._sessions.read() as session:
            count = session.scalar(
                select(func.count())
                .select_from(leases)
                .where(leases.released_at.is_(None), leases.expires_at > now)
            )
            return int(count or 0)
