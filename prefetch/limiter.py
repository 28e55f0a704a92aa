"""The send budget shared by every process on one database: `SharedLimiter`.

The same gate as `prefetch.throttle.Throttle` (`slot()`, `pause()`, `in_flight`,
`breaker`, `config`), with the rate, the pacing and the in-flight cap kept in the database
(`prefetch.store.send_budget`), so one budget holds for one or five daemons and for every
schedule. It fails closed: when the database cannot decide, `slot()` raises
`StoreUnavailableError` and nothing is sent.

Why not pyrate-limiter (it has SQLite and PostgreSQL buckets): its buckets count
acquisitions in a window (a burst of the whole window's worth at once is allowed), have
no notion of a query in flight, of a release or of a lease that outlives a dead process,
and keep their own connections beside SQLAlchemy's. The cap on queries in flight and the
even pacing are the point here, so a reservation with a lease is a few SQL statements in
`prefetch.store.send_budget` instead.

A send slot is a lease: reserved with its send time, released when the answer is in.
The lease of a process that dies counts in flight until it expires (`lease_seconds`, at
least the LSP read time-out), so a restart never bursts past the limits. With
`gone_lease_seconds`, the leases of a holder of this host whose process is gone
(`prefetch.liveness.holder_gone`) count that long after their send time instead: the
connect and read time-outs, after which a live process gives its slot back itself.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine

from prefetch.clock import SYSTEM_CLOCK, SystemClock
from prefetch.errors import OverloadError, StoreError
from prefetch.liveness import holder_gone, holder_name
from prefetch.logging import get_logger
from prefetch.ports import Clock
from prefetch.store.send_budget import Pacing, Reservation, SendBudgetStore
from prefetch.throttle import CircuitBreaker, OverloadSignals, ThrottleConfig, keep_send_time

log = get_logger("prefetch.limiter")

FULL_POLL_SECONDS = 0.05
"""How often a process whose cap is reached by others looks again (a release in this
process wakes it at once)."""
RELEASE_FLUSH_SECONDS = 0.25
"""Releases not carried by a reservation are written at least this often."""


class SharedLimiter:
    """Thread-safe, process-shared gate: `with limiter.slot(): send()`."""

    def __init__(
        self,
        config: ThrottleConfig,
        engine: Engine,
        *,
        lease_seconds: float = 130.0,
        clock: Clock | None = None,
        holder: str | None = None,
        gone_lease_seconds: float | None = None,
    ) -> None:
        if config.rate_per_second <= 0 or config.max_in_flight < 1:
            raise ValueError("limiter needs a positive rate and at least one slot")
        if lease_seconds <= 0:
            raise ValueError("leases need a positive duration")
        self.config = config
        self._clock: Clock = clock or SYSTEM_CLOCK
        self._real_time = isinstance(self._clock, SystemClock)
        self._store = SendBudgetStore(engine)
        self._pacing = Pacing(
            interval=config.interval,
            window=config.window + config.margin_seconds,
            capacity=config.capacity,
            max_in_flight=config.max_in_flight,
            lease_seconds=lease_seconds,
            gone_lease_seconds=(
                min(gone_lease_seconds, lease_seconds) if gone_lease_seconds else None
            ),
        )
        self.holder = holder or holder_name(uuid.uuid4().hex[:8])
        self._gone_seen: set[str] = set()
        self.breaker = CircuitBreaker(
            config.breaker_failures, config.breaker_reset_seconds, self._clock
        )
        self._overloads = OverloadSignals(config.overload_burst)
        self._cond = threading.Condition()
        # One thread of this process reserves at a time: the others queue here instead of
        # all asking the database and being told to wait (no thundering herd).
        self._reserving = threading.Lock()
        self._in_flight = 0
        self._waiting = 0  # threads of this process waiting for a slot
        self._released: list[tuple[int, float]] = []  # (lease, when) not yet written
        self._granted: collections.deque[Reservation] = collections.deque()  # for waiters
        self._cleaned_at = 0.0
        self._flushed_at = 0.0
        self._paused_until = 0.0
        self.total_sent = 0
        self.exchanged = 0  # slots whose send time passed before their query was ready

    def _time(self) -> float:
        """Wall-clock seconds since the epoch: the scale shared with other processes."""
        return self._clock.now().timestamp()

    def pause(self, seconds: float) -> None:
        """An overload answer with Retry-After `seconds`: in a burst, pause every process
        (an isolated one only delays the retry of its own query)."""
        now = self._time()
        if not self._overloads.global_pause(self._clock.monotonic(), seconds):
            return
        with self._cond:
            self._paused_until = max(self._paused_until, now + seconds)
        try:
            self._store.pause_until(now + seconds)
        except StoreError:  # this process pauses anyway; the next slot() fails closed
            log.warning("limiter_pause_not_shared", seconds=seconds)

    def _reserve(self, count: int = 1, lead: float | None = None) -> list[Reservation]:
        deadline = self._time() + self.config.slot_timeout_seconds
        with self._cond:
            self._waiting += count
        try:
            if not self._reserving.acquire(timeout=self.config.slot_timeout_seconds):
                raise OverloadError("no send slot within the time-out", retry_after=1.0)
            try:
                return self._reserve_in_turn(deadline, count, lead)
            finally:
                self._reserving.release()
        finally:
            with self._cond:
                self._waiting -= count

    def _reserve_in_turn(
        self, deadline: float, count: int, lead: float | None
    ) -> list[Reservation]:
        """Called holding `_reserving`: slots granted with an earlier batch, or a new
        batch of as many slots as threads are waiting (one transaction for all)."""
        if self._granted:
            return [self._granted.popleft() for _ in range(min(count, len(self._granted)))]
        pacing = self._pacing
        if lead is not None and lead > pacing.lead:
            pacing = dataclasses.replace(pacing, lead=lead, horizon=pacing.horizon + lead)
        while True:
            now = self._time()
            with self._cond:
                local_wait = self._paused_until - now
            if local_wait > 0:
                wait, full = local_wait, False
            else:
                released = self._take_releases()
                with self._cond:
                    wanted = max(count, self._waiting)
                clean = now - self._cleaned_at >= 1.0
                try:
                    found = self._store.reserve(
                        self.holder,
                        self._time,
                        pacing,
                        count=wanted,
                        released=released,
                        clean=clean,
                        is_gone=self._is_gone,
                    )
                except StoreError:
                    with self._cond:  # not written: try again with the next one
                        self._released[:0] = released
                    raise
                if clean:
                    self._cleaned_at = now
                if isinstance(found, list):
                    self._granted.extend(found[count:])
                    return found[:count]
                wait, full = found.seconds, found.full
            if now + wait > deadline:
                raise OverloadError("no send slot within the time-out", retry_after=wait)
            if full and self._real_time:
                with self._cond:  # a release here wakes us; others' are polled
                    self._cond.wait(timeout=min(wait, FULL_POLL_SECONDS))
            else:
                self._clock.sleep(max(wait, 0.001))

    def _is_gone(self, holder: str) -> bool:
        """The process behind `holder` is gone (its leases end sooner); said once each."""
        gone = holder_gone(holder)
        if gone and holder not in self._gone_seen:
            self._gone_seen.add(holder)
            log.info("limiter_holder_gone", holder=holder)
        return gone

    def reserve_many(self, count: int, lead: float = 0.0) -> list[_SharedSlot]:
        """At least one and up to `count` slots reserved ahead of their send times (see
        `prefetch.ports.SendSlot`), no send time earlier than `lead` seconds from now.
        Raises OverloadError (open breaker, no slot in time) or StoreUnavailableError /
        StoreError (the database cannot decide): nothing may be sent."""
        reservations = self._reserve(max(1, count), lead)
        try:
            self.breaker.before_call()
        except BaseException:
            for reservation in reservations:
                self._forget(reservation.lease_id)
            raise
        with self._cond:
            self._in_flight += len(reservations)
            self.total_sent += len(reservations)
        return [_SharedSlot(self, reservation) for reservation in reservations]

    @contextmanager
    def reserve(self) -> Iterator[_SharedSlot]:
        """One slot reserved ahead of its send time (`reserve_many`), released when the
        block ends."""
        slot = self.reserve_many(1)[0]
        try:
            yield slot
        finally:
            slot.release()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Wait for a send slot. Raises OverloadError (open breaker, no slot in time) or
        StoreUnavailableError / StoreError (the database cannot decide): nothing sent."""
        with self.reserve() as slot:
            slot.wait()
            yield

    def _exchange(self, late: Reservation) -> Reservation:
        """A new reservation for one whose send time passed (the late one is cancelled:
        sent now it could break the window)."""
        fresh = self._reserve()[0]
        self._forget(late.lease_id)
        with self._cond:
            self.exchanged += 1
        return fresh

    def _release(self, lease_id: int) -> None:
        """Release a lease. Releases are written with this process's next reservation,
        or at once when this process has nothing in flight any more or the last write
        is `RELEASE_FLUSH_SECONDS` old (other processes may wait for the slot). Until it
        is written the lease counts in flight: late, never early."""
        with self._cond:
            self._in_flight -= 1
            self._released.append((lease_id, self._time()))
            self._cond.notify_all()
            due = (
                self._in_flight == 0
                or self._clock.monotonic() - self._flushed_at >= RELEASE_FLUSH_SECONDS
            )
        if due:
            self._flush_releases()

    def _take_releases(self) -> list[tuple[int, float]]:
        with self._cond:
            taken, self._released = self._released, []
        return taken

    def _flush_releases(self) -> None:
        self._flushed_at = self._clock.monotonic()
        released = self._take_releases()
        if not released:
            return
        try:
            self._store.release_many(released)
        except StoreError:  # the leases expire by themselves: counted until then
            log.warning("limiter_release_failed", leases=len(released))

    def _forget(self, lease_id: int) -> None:
        try:
            self._store.cancel(lease_id)
        except StoreError:
            log.warning("limiter_cancel_failed", lease_id=lease_id)

    @property
    def in_flight(self) -> int:
        """Queries in flight from this process."""
        with self._cond:
            return self._in_flight

    def shared_in_flight(self) -> int:
        """Queries in flight from every process on this database (leases that count)."""
        return self._store.in_flight(self._time())


class _SharedSlot:
    def __init__(self, limiter: SharedLimiter, reservation: Reservation) -> None:
        self._limiter = limiter
        self.reservation = reservation
        self.cancelled = False
        self._released = False

    def wait(self) -> None:
        """Return at the send time (see `prefetch.throttle.keep_send_time`)."""
        limiter = self._limiter

        def exchange() -> None:
            self.reservation = limiter._exchange(self.reservation)

        keep_send_time(
            limiter._time,
            lambda: self.reservation.send_at,
            limiter._clock.sleep,
            limiter.config.late_tolerance,
            exchange,
        )

    def cancel(self) -> None:
        """Nothing was sent with this slot: it counts neither in flight nor as a send."""
        limiter = self._limiter
        with limiter._cond:
            if self._released:
                return
            self._released = self.cancelled = True
            limiter._in_flight -= 1
            limiter.total_sent -= 1
            limiter._cond.notify_all()
        limiter._forget(self.reservation.lease_id)

    def release(self) -> None:
        """The answer is in (or the send failed): the slot no longer counts in flight."""
        if self._released:
            return
        self._released = True
        self._limiter._release(self.reservation.lease_id)
