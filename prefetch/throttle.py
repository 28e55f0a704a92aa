"""Protect the national network: a global query rate, a cap on queries in flight, a pause
on overload signals, and a circuit breaker. The clock is injected. It fails closed: when
anything in here cannot decide (an error, a time-out waiting for a slot, an open breaker),
nothing is sent.

Sends are paced evenly, one per `1 / rate_per_second`, and never more than
`capacity = floor(rate * window)` in any window of `window_seconds` plus a safety margin
for jitter between here and the receiver, so no receiver-side window of one second ever
sees more than the allowed rate. A caller reserves its send time under the lock and sleeps
until it outside the lock, so waiting threads do not poll.

Overload answers (`pause`): one 503 with Retry-After concerns the query it answered (its
retry waits); only `overload_burst` of them within the Retry-After pause every send.
"""

from __future__ import annotations

import collections
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prefetch.clock import SYSTEM_CLOCK, SystemClock
from prefetch.errors import OverloadError
from prefetch.ports import Clock


@dataclass(frozen=True, slots=True)
class ThrottleConfig:
    rate_per_second: float
    max_in_flight: int
    breaker_failures: int = 5
    breaker_reset_seconds: float = 60.0
    window_seconds: float = 1.0
    margin_seconds: float = 0.02  # widen the window against jitter on the wire
    slot_timeout_seconds: float = 300.0
    overload_burst: int = 3  # overload answers within their Retry-After that pause all

    @property
    def window(self) -> float:
        """The rate window, widened below one send per window so that one send fits."""
        return max(self.window_seconds, 1.0 / self.rate_per_second)

    @property
    def capacity(self) -> int:
        """Sends allowed in one window; rounded down, never above the receiver's count."""
        return max(1, math.floor(self.rate_per_second * self.window))

    @property
    def interval(self) -> float:
        return 1.0 / self.rate_per_second

    @property
    def late_tolerance(self) -> float:
        """How late a send may still leave on its slot: half the margin. A send late by
        the whole margin would use it up, so the next window's sends, leaving on time,
        would reach the receiver with no room left for jitter on the way."""
        return self.margin_seconds / 2


class OverloadSignals:
    """Decides when overload answers concern every send: `burst` of them within the
    Retry-After of the latest. Thread-safe."""

    def __init__(self, burst: int) -> None:
        self._burst = max(1, burst)
        self._seen: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def global_pause(self, now: float, seconds: float) -> bool:
        with self._lock:
            horizon = now - max(seconds, 1.0)
            while self._seen and self._seen[0] < horizon:
                self._seen.popleft()
            self._seen.append(now)
            return len(self._seen) >= self._burst


class CircuitBreaker:
    """Closed -> open after N consecutive failures -> half-open after the reset time:
    one trial call; success closes, failure opens again."""

    def __init__(self, failures: int, reset_seconds: float, clock: Clock) -> None:
        self._threshold = failures
        self._reset = reset_seconds
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_out = False
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        with self._lock:
            return self._state_locked()

    def _state_locked(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock.monotonic() - self._opened_at >= self._reset:
            return "half_open"
        return "open"

    def before_call(self) -> None:
        """Raise OverloadError when calls must not be made now."""
        with self._lock:
            state = self._state_locked()
            if state == "open":
                assert self._opened_at is not None
                remaining = self._reset - (self._clock.monotonic() - self._opened_at)
                raise OverloadError("circuit breaker open", retry_after=max(remaining, 0.0))
            if state == "half_open":
                if self._trial_out:
                    raise OverloadError(
                        "circuit breaker half-open: trial call under way", retry_after=1.0
                    )
                self._trial_out = True

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None
            self._trial_out = False

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial_out = False
            if self._opened_at is not None or self._failures >= self._threshold:
                self._opened_at = self._clock.monotonic()


class Throttle:
    """Thread-safe gate around every LSP call in one process: `with throttle.slot(): send()`.

    `prefetch.limiter.SharedLimiter` is the same gate shared through the database."""

    HORIZON = 0.25  # reserve a send time at most this far ahead

    def __init__(self, config: ThrottleConfig, clock: Clock | None = None) -> None:
        if config.rate_per_second <= 0 or config.max_in_flight < 1:
            raise ValueError("throttle needs a positive rate and at least one slot")
        self.config = config
        self._clock = clock or SYSTEM_CLOCK
        self._real_time = isinstance(self._clock, SystemClock)
        self.breaker = CircuitBreaker(
            config.breaker_failures, config.breaker_reset_seconds, self._clock
        )
        self._overloads = OverloadSignals(config.overload_burst)
        self._cond = threading.Condition()
        self._sent: collections.deque[float] = collections.deque(maxlen=config.capacity)
        self._in_flight = 0
        self._paused_until = 0.0
        self.total_sent = 0

    def pause(self, seconds: float) -> None:
        """An overload answer with Retry-After `seconds`: pause every send when they come
        in a burst (an isolated one only delays the retry of its own query)."""
        now = self._clock.monotonic()
        if self._overloads.global_pause(now, seconds):
            with self._cond:
                self._paused_until = max(self._paused_until, now + seconds)

    def _send_time(self, now: float) -> float:
        """The earliest send time that keeps pause, pacing and window. Lock held."""
        at = max(now, self._paused_until)
        if self._sent:
            at = max(at, self._sent[-1] + self.config.interval)
            if len(self._sent) == self.config.capacity:
                at = max(at, self._sent[0] + self.config.window + self.config.margin_seconds)
        return at

    def _wait(self, seconds: float) -> None:
        """Wait outside the lock: on a condition with the real clock (a release wakes us),
        on the clock otherwise (a fake clock advances)."""
        if self._real_time:
            with self._cond:
                self._cond.wait(timeout=seconds)
        else:
            self._clock.sleep(max(seconds, 0.001))

    def _take(self, lead: float = 0.0) -> float:
        """Reserve the next send time (monotonic), at least `lead` from now; raises
        OverloadError when none comes within the time-out or the breaker is open."""
        deadline = self._clock.monotonic() + self.config.slot_timeout_seconds
        while True:
            with self._cond:
                now = self._clock.monotonic()
                if self._in_flight >= self.config.max_in_flight:
                    wait = 0.05
                else:
                    at = self._send_time(now + lead)
                    wait = at - now - lead - self.HORIZON
                    if wait <= 0:
                        self.breaker.before_call()
                        self._in_flight += 1
                        self._sent.append(at)
                        self.total_sent += 1
                        return at
            if now + wait > deadline:
                raise OverloadError("no send slot within the time-out", retry_after=wait)
            self._wait(wait)

    def _retake(self, late: float) -> float:
        """A send time instead of one that passed `late` seconds ago (the in-flight slot
        stays held)."""
        with self._cond:
            if late in self._sent:
                self._sent.remove(late)  # never used: it must not count as a send
            at = self._send_time(self._clock.monotonic())
            self._sent.append(at)
            return at

    def reserve_many(self, count: int, lead: float = 0.0) -> list[_ThrottleSlot]:
        """At least one and up to `count` slots (see `prefetch.ports.SendSlot`); the
        first waits for its turn, the others are taken only if free now. `lead`: no send
        time earlier than this many seconds from now (time to prepare the queries)."""
        slots = [_ThrottleSlot(self, self._take(lead))]
        while len(slots) < count:
            with self._cond:
                now = self._clock.monotonic()
                if self._in_flight >= self.config.max_in_flight:
                    break
                at = self._send_time(now + lead)
                if at - now > self.HORIZON + lead:
                    break
                self.breaker.before_call()
                self._in_flight += 1
                self._sent.append(at)
                self.total_sent += 1
            slots.append(_ThrottleSlot(self, at))
        return slots

    @contextmanager
    def reserve(self) -> Iterator[_ThrottleSlot]:
        """A slot reserved ahead of its send time (see `prefetch.ports.SendSlot`)."""
        slot = self.reserve_many(1)[0]
        try:
            yield slot
        finally:
            slot.release()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Wait for a send slot; raise OverloadError (nothing sent) when none comes."""
        with self.reserve() as slot:
            slot.wait()
            yield

    @property
    def in_flight(self) -> int:
        with self._cond:
            return self._in_flight


def keep_send_time(
    now: Callable[[], float],
    send_at: Callable[[], float],
    sleep: Callable[[float], None],
    margin: float,
    exchange: Callable[[], None],
) -> None:
    """Return at the slot's send time. A slot whose time passed by more than `margin`
    (the query was not ready, or the thread woke late on a busy machine) is exchanged for
    a new one first: sent late it could break the rate (`ThrottleConfig.late_tolerance`)."""
    while True:
        late = now() - send_at()
        if late < 0:
            sleep(-late)
            late = now() - send_at()
        if late <= margin:
            return
        exchange()


class _ThrottleSlot:
    def __init__(self, throttle: Throttle, at: float) -> None:
        self._throttle = throttle
        self.send_at = at
        self.cancelled = False
        self._released = False

    def wait(self) -> None:
        """Return at the send time (see `keep_send_time`)."""
        throttle = self._throttle

        def exchange() -> None:
            self.send_at = throttle._retake(self.send_at)

        keep_send_time(
            throttle._clock.monotonic,
            lambda: self.send_at,
            throttle._clock.sleep,
            throttle.config.late_tolerance,
            exchange,
        )

    def cancel(self) -> None:
        throttle = self._throttle
        with throttle._cond:
            if self._released:
                return
            if self.send_at in throttle._sent:
                throttle._sent.remove(self.send_at)
            throttle.total_sent -= 1
        self.cancelled = True
        self.release()

    def release(self) -> None:
        throttle = self._throttle
        with throttle._cond:
            if self._released:
                return
            self._released = True
            throttle._in_flight -= 1
            throttle._cond.notify_all()
