"""Protect the national network: a global query rate, a cap on queries in flight, a pause
on overload signals, and a circuit breaker. The clock is injected. It fails closed: when
anything in here cannot decide (an error, a time-out waiting for a slot, an open breaker),
nothing is sent.

The rate is a sliding window: at most `rate_per_second` sends in any window of
`window_seconds` (plus a safety margin for network jitter), so no receiver-side window of
one second ever sees more than the allowed rate.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from prefetch.clock import SYSTEM_CLOCK
from prefetch.errors import OverloadError
from prefetch.ports import Clock


@dataclass(frozen=True, slots=True)
class ThrottleConfig:
    rate_per_second: float
    max_in_flight: int
    breaker_failures: int = 5
    breaker_reset_seconds: float = 60.0
    window_seconds: float = 1.0
    margin_seconds: float = 0.05  # widen the window against jitter on the wire
    slot_timeout_seconds: float = 300.0


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
    """Thread-safe gate around every LSP call: `with throttle.slot(): send()`."""

    def __init__(self, config: ThrottleConfig, clock: Clock | None = None) -> None:
        if config.rate_per_second <= 0 or config.max_in_flight < 1:
            raise ValueError("throttle needs a positive rate and at least one slot")
        self.config = config
        self._clock = clock or SYSTEM_CLOCK
        self.breaker = CircuitBreaker(
            config.breaker_failures, config.breaker_reset_seconds, self._clock
        )
        self._cond = threading.Condition()
        self._sent: collections.deque[float] = collections.deque()
        self._in_flight = 0
        self._paused_until = 0.0
        self.total_sent = 0
        # Below one query per window, widen the window so that one send fits in it.
        self._window = max(config.window_seconds, 1.0 / config.rate_per_second)
        self._capacity = max(1, int(config.rate_per_second * self._window))

    def pause(self, seconds: float) -> None:
        """Honour an overload signal (Retry-After): send nothing for `seconds`."""
        with self._cond:
            self._paused_until = max(self._paused_until, self._clock.monotonic() + seconds)

    def _wait_needed(self, now: float) -> float:
        """Seconds until a send is allowed (0 = now). Called with the lock held."""
        if self._in_flight >= self.config.max_in_flight:
            return 0.05
        wait = self._paused_until - now
        horizon = now - (self._window + self.config.margin_seconds)
        while self._sent and self._sent[0] <= horizon:
            self._sent.popleft()
        if len(self._sent) >= self._capacity:
            # sent[0] > horizon, so this is > 0 even in floating point (a != b => a - b != 0)
            wait = max(wait, self._sent[0] - horizon)
        return max(wait, 0.0)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Wait for a send slot; raise OverloadError (nothing sent) when none comes."""
        deadline = self._clock.monotonic() + self.config.slot_timeout_seconds
        while True:
            with self._cond:
                now = self._clock.monotonic()
                wait = self._wait_needed(now)
                if wait == 0.0:
                    self.breaker.before_call()
                    self._in_flight += 1
                    self._sent.append(now)
                    self.total_sent += 1
                    break
            if now + wait > deadline:
                raise OverloadError("no send slot within the time-out", retry_after=wait)
            self._clock.sleep(min(max(wait, 0.001), 0.25))  # at least 1 ms: time must pass
        try:
            yield
        finally:
            with self._cond:
                self._in_flight -= 1
                self._cond.notify_all()

    @property
    def in_flight(self) -> int:
        with self._cond:
            return self._in_flight
