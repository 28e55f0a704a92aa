"""The simulator's clock: a port with the real clock and a fake for tests.

`monotonic()` drives rate windows and outages, `now()` stamps messages, `sleep()` is how
latency is simulated. `FakeClock.sleep` advances the fake time instead of waiting, so a
test of the `realistic` profile runs instantly and still sees the time it would take.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Time source for the simulator. Implementations must be thread-safe."""

    def monotonic(self) -> float:
        """Seconds on a monotonic scale (only differences matter)."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware UTC."""

    def sleep(self, seconds: float) -> None:
        """Let `seconds` pass (really, or on the fake scale)."""


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock that only moves when told to (or when something sleeps on it)."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._start = start or dt.datetime(2026, 1, 5, 18, 0, tzinfo=dt.UTC)
        self._offset = 0.0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self._offset

    def now(self) -> dt.datetime:
        with self._lock:
            return self._start + dt.timedelta(seconds=self._offset)

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        with self._lock:
            self._offset += seconds
