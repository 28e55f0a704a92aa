"""Rate and concurrency enforcement per connected system, with an injected clock.

`admit(client)` decides for one arriving query: over the rate or over the concurrency (too
many in flight) it is refused and counted as a violation; otherwise it is admitted and
counted in flight until `release(client)`.

The rate is a sliding window, the same rule as the client's throttle
(`prefetch.throttle`): the window is `window_s`, widened to `1 / max_rate` when the rate
is below one query per window, and at most `capacity = max(1, floor(max_rate * window))`
admitted queries may fall in it. A client that keeps to `max_rate` (evenly spaced, or in
bursts of `capacity` per window) is never refused.

Jitter tolerance: a query that arrives up to `tolerance_s` early (the network delayed the
previous one, or the client's clock runs a little fast) is still admitted, that is, the
enforcement window is `window - tolerance_s` long. The tolerance is explicit (a profile
setting, `RateLimit.tolerance_s`) and only ever forgives refusing; it never changes what is
reported.

Violations are counted strictly, without tolerance: an arrival (admitted or refused) that
makes more than `capacity` arrivals of one client fall in a window `(t - window, t]` is a
rate violation. Every refusal for the rate is one, and so is an arrival the tolerance let
through. `refused` counts the queries actually refused.

Peaks are measured honestly over every arrival, admitted or not: `peak_rate` is the
largest number of arrivals in any full one-second window `(t - 1 s, t]`, whatever the
enforcement window or tolerance.
"""

from __future__ import annotations

import enum
import math
import threading
from collections import deque
from dataclasses import dataclass, field

from prefetch.lspsim.clock import Clock

PEAK_WINDOW_S = 1.0
"""Peaks are reported per second: arrivals in any window of this length."""


class Refusal(enum.Enum):
    RATE = "rate"
    CONCURRENCY = "concurrency"


@dataclass(slots=True)
class _ClientState:
    admitted: deque[float] = field(default_factory=deque)
    arrivals: deque[float] = field(default_factory=deque)
    strict: deque[float] = field(default_factory=deque)
    in_flight: int = 0
    peak_rate: int = 0
    peak_concurrency: int = 0
    violations: dict[str, int] = field(default_factory=lambda: {r.value: 0 for r in Refusal})
    refused: dict[str, int] = field(default_factory=lambda: {r.value: 0 for r in Refusal})


@dataclass(frozen=True, slots=True)
class ClientReport:
    """What the enforcer saw of one client."""

    client: str
    peak_rate: int
    peak_concurrency: int
    violations: dict[str, int]
    refused: dict[str, int]


def rate_window(max_rate: float, window_s: float) -> tuple[float, int]:
    """(window length, admitted queries allowed in it) for `max_rate` queries per second.

    Below one query per window the window widens so that one query fits in it.
    """
    if max_rate <= 0 or window_s <= 0:
        raise ValueError("rate and window must be positive")
    window = max(window_s, 1.0 / max_rate)
    # The small epsilon keeps 0.3 * (1 / 0.3) from flooring to 0.
    capacity = max(1, math.floor(max_rate * window + 1e-9))
    return window, capacity


class RateEnforcer:
    """Sliding-window rate and in-flight cap per client. `None` limits are not enforced."""

    def __init__(
        self,
        *,
        max_rate: float | None,
        max_concurrency: int | None,
        clock: Clock,
        window_s: float = 1.0,
        tolerance_s: float = 0.0,
    ) -> None:
        if tolerance_s < 0:
            raise ValueError("tolerance must not be negative")
        self.max_rate = max_rate
        self.max_concurrency = max_concurrency
        self._clock = clock
        self.window_s = window_s
        self.capacity = 0
        self._enforce_window = 0.0
        if max_rate is not None:
            self.window_s, self.capacity = rate_window(max_rate, window_s)
            if self.window_s <= tolerance_s:
                raise ValueError("window must be longer than the tolerance")
            self._enforce_window = self.window_s - tolerance_s
        self.tolerance_s = tolerance_s
        self._clients: dict[str, _ClientState] = {}
        self._in_flight_total = 0
        self._peak_total = 0
        self._all_arrivals: deque[float] = deque()
        self._peak_rate_total = 0
        self._lock = threading.Lock()

    @staticmethod
    def _trim(q: deque[float], now: float, window: float) -> None:
        while q and q[0] <= now - window:
            q.popleft()

    def admit(self, client: str, *, at: float | None = None) -> Refusal | None:
        """None when admitted (call `release` later), else why it was refused.

        `at` is the arrival time on the clock's monotonic scale (default: now)."""
        now = self._clock.monotonic() if at is None else at
        with self._lock:
            state = self._clients.setdefault(client, _ClientState())
            self._trim(state.arrivals, now, PEAK_WINDOW_S)
            self._trim(self._all_arrivals, now, PEAK_WINDOW_S)
            state.arrivals.append(now)
            self._all_arrivals.append(now)
            state.peak_rate = max(state.peak_rate, len(state.arrivals))
            self._peak_rate_total = max(self._peak_rate_total, len(self._all_arrivals))
            if self.max_rate is not None:
                self._trim(state.strict, now, self.window_s)
                state.strict.append(now)
                if len(state.strict) > self.capacity:
                    state.violations[Refusal.RATE.value] += 1
            refusal: Refusal | None = None
            if self.max_concurrency is not None and state.in_flight >= self.max_concurrency:
                refusal = Refusal.CONCURRENCY
            elif self.max_rate is not None:
                self._trim(state.admitted, now, self._enforce_window)
                if len(state.admitted) >= self.capacity:
                    refusal = Refusal.RATE
            if refusal is not None:
                state.refused[refusal.value] += 1
                if refusal is Refusal.CONCURRENCY:
                    state.violations[refusal.value] += 1
                return refusal
            state.admitted.append(now)
            state.in_flight += 1
            self._in_flight_total += 1
            state.peak_concurrency = max(state.peak_concurrency, state.in_flight)
            self._peak_total = max(self._peak_total, self._in_flight_total)
            return None

    def release(self, client: str) -> None:
        with self._lock:
            state = self._clients[client]
            state.in_flight -= 1
            self._in_flight_total -= 1

    def reset(self) -> None:
        """Forget peaks and violations (queries in flight stay counted)."""
        with self._lock:
            for state in self._clients.values():
                state.admitted.clear()
                state.arrivals.clear()
                state.strict.clear()
                state.peak_rate = 0
                state.peak_concurrency = state.in_flight
                state.violations = {r.value: 0 for r in Refusal}
                state.refused = {r.value: 0 for r in Refusal}
            self._all_arrivals.clear()
            self._peak_rate_total = 0
            self._peak_total = self._in_flight_total

    def report(self) -> tuple[ClientReport, ...]:
        with self._lock:
            return tuple(
                ClientReport(
                    client=c,
                    peak_rate=s.peak_rate,
                    peak_concurrency=s.peak_concurrency,
                    violations=dict(s.violations),
                    refused=dict(s.refused),
                )
                for c, s in self._clients.items()
            )

    @property
    def peak_rate(self) -> int:
        """Most arrivals (all clients) seen in any one-second window."""
        with self._lock:
            return self._peak_rate_total

    @property
    def peak_concurrency(self) -> int:
        """Most queries in flight at once (all clients)."""
        with self._lock:
            return self._peak_total

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight_total
