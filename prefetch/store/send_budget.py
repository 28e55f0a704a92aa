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
LSP, so they count against the in-flight cap and the window after a restart. Times are
wall-clock seconds since the epoch (machines sharing a database keep their clocks in
step with NTP).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, and_, delete, func, insert, or_, select, update

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
    horizon: float = 1.0  # no reservation further ahead than this
    lead: float = 0.05  # at least this far ahead: committing must not make the slot late


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
        self, holder: str, clock: Callable[[], float], pacing: Pacing
    ) -> Reservation | Wait:
        """A send slot at `send_at >= clock()`, or how long to wait. The time is read once
        the budget lock is held (waiting for the lock must not make the slot late).
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
            now = clock()
            # Forget leases that no longer count for anything.
            session.execute(
                delete(leases).where(
                    leases.send_at < now - pacing.window - pacing.interval - 60.0,
                    or_(leases.released_at.is_not(None), leases.expires_at <= now),
                )
            )
            active = and_(leases.released_at.is_(None), leases.expires_at > now)
            in_flight = session.scalar(select(func.count()).select_from(leases).where(active))
            if (in_flight or 0) >= pacing.max_in_flight:
                return Wait(seconds=0.05, full=True)
            recent = list(
                session.scalars(
                    select(leases.send_at).order_by(leases.send_at.desc()).limit(pacing.capacity)
                )
            )
            send_at = max(now + pacing.lead, paused)
            if recent:
                send_at = max(send_at, recent[0] + pacing.interval)
            if len(recent) >= pacing.capacity:
                send_at = max(send_at, recent[-1] + pacing.window)
            if send_at > now + pacing.horizon:
                return Wait(seconds=send_at - now - pacing.horizon + pacing.lead, full=False)
            lease_id = session.execute(
                insert(leases)
                .values(
                    holder=holder,
                    send_at=send_at,
                    expires_at=send_at + pacing.lease_seconds,
                    released_at=None,
                )
                .returning(leases.id)
            ).scalar_one()
            return Reservation(int(lease_id), send_at)

    def release(self, lease_id: int, now: float) -> None:
        """The query's answer is in (or it was never sent): it no longer counts in flight."""
        with self._sessions.write() as session:
            session.execute(
                update(SendLeaseRow)
                .where(SendLeaseRow.id == lease_id, SendLeaseRow.released_at.is_(None))
                .values(released_at=now)
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
