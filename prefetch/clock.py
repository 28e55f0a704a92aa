"""The clock adapters (`prefetch.ports.Clock`): the system's, and a fake for tests and
dry runs that only moves when slept on or told to."""

from __future__ import annotations

import datetime as dt
import threading
import time


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SystemClock:
    def now(self) -> dt.datetime:
        return utc_now()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()


class FakeClock:
    """Time stands still until `sleep` or `advance`; both move wall and monotonic time."""

    def __init__(self, start: dt.datetime, monotonic_start: float = 1000.0) -> None:
        self._now = start
        self._mono = monotonic_start
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += dt.timedelta(seconds=seconds)
            self._mono += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0.0))
