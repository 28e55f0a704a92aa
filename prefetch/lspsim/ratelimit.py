"""Rate and concurrency enforcement per connected system, with an injected clock.

`admit(client)` decides for one arriving query: over the rate (more admitted queries in the
sliding window than allowed) or over the concurrency (too many in flight) it is refused
and counted as a violation; otherwise it is admitted and counted in flight until
`release(client)`. Peaks are measured over every arrival, admitted or not.
"""

from __future__ import annotations

import enum
import threading
from collections import deque
from dataclasses import dataclass, field

from prefetch.lspsim.clock import Clock


class Refusal(enum.Enum):
    RATE = "rate"
    CONCURRENCY = "concurrency"


@dataclass(slots=True)
class _ClientState:
    admitted: deque[float] = field(default_factory=deque)
    arrivals: deque[float] = field(default_factory=deque)
    in_flight: int = 0
    peak_rate: int = 0
    peak_concurrency: int = 0
    violations: dict[str, int] = field(default_factory=lambda: {r.value: 0 for r in Refusal})


@dataclass(frozen=True, slots=True)
class ClientReport:
    """What the enforcer saw of one client."""

    client: str
    peak_rate: int
    peak_concurrency: int
    violations: dict[str, int]


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
        if window_s <= tolerance_s:
            raise ValueError("window must be longer than the tolerance")
        self.max_rate = max_rate
        self.max_concurrency = max_concurrency
        self._clock = clock
        self._window = window_s - tolerance_s
        self._clients: dict[str, _ClientState] = {}
        self._in_flight_total = 0
        self._peak_total = 0
        self._all_arrivals: deque[float] = deque()
        self._peak_rate_total = 0
        self._lock = threading.Lock()

    def _trim(self, q: deque[float], now: float) -> None:
        while q and q[0] <= now - self._window:
            q.popleft()

    def admit(self, client: str) -> Refusal | None:
        """None when admitted (call `release` later), else why it was refused."""
        now = self._clock.monotonic()
        with self._lock:
            state = self._clients.setdefault(client, _ClientState())
            for q in (state.admitted, state.arrivals, self._all_arrivals):
                self._trim(q, now)
            state.arrivals.append(now)
            self._all_arrivals.append(now)
            state.peak_rate = max(state.peak_rate, len(state.arrivals))
            self._peak_rate_total = max(self._peak_rate_total, len(self._all_arrivals))
            refusal: Refusal | None = None
            if self.max_concurrency is not None and state.in_flight >= self.max_concurrency:
                refusal = Refusal.CONCURRENCY
            elif self.max_rate is not None and len(state.admitted) + 1 > self.max_rate:
                refusal = Refusal.RATE
            if refusal is not None:
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
                state.peak_rate = 0
                state.peak_concurrency = state.in_flight
                state.violations = {r.value: 0 for r in Refusal}
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
                )
                for c, s in self._clients.items()
            )

    @property
    def peak_rate(self) -> int:
        """Most arrivals (all clients) seen in one window."""
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
