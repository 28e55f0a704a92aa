import itertools
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prefetch.errors import OverloadError
from prefetch.throttle import Throttle, ThrottleConfig


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(min_value=0.5, max_value=20),
    calls=st.integers(min_value=1, max_value=60),
    gaps=st.lists(st.floats(min_value=0, max_value=0.7), min_size=60, max_size=60),
)
def test_no_one_second_window_exceeds_the_rate(rate: float, calls: int, gaps: list[float]) -> None:
    clock = FakeClock()
    throttle = Throttle(ThrottleConfig(rate_per_second=rate, max_in_flight=4), clock)
    sent: list[float] = []
    for i in range(calls):
        with throttle.slot():
            sent.append(clock.now)
        clock.now += gaps[i]
    allowed = max(int(rate), 1)
    for t in sent:
        assert sum(1 for s in sent if t <= s < t + 1.0) <= allowed


def test_in_flight_cap_and_pause() -> None:
    clock = FakeClock()
    throttle = Throttle(
        ThrottleConfig(rate_per_second=100, max_in_flight=2, slot_timeout_seconds=60.0), clock
    )
    with throttle.slot(), throttle.slot():
        assert throttle.in_flight == 2
        with pytest.raises(OverloadError), throttle.slot():
            pass  # pragma: no cover - never entered
    throttle.pause(30)  # one overload answer concerns its own query only
    start = clock.now
    with throttle.slot():
        assert clock.now - start < 1
    throttle.pause(30)
    throttle.pause(30)  # the third within 30 s: everything waits
    start = clock.now
    with throttle.slot():
        assert clock.now - start >= 30 - 0.01


def test_sends_are_paced_evenly() -> None:
    clock = FakeClock()
    throttle = Throttle(ThrottleConfig(rate_per_second=20, max_in_flight=50), clock)
    sent = []
    for _ in range(100):
        with throttle.slot():
            sent.append(clock.now)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= 0.05 - 1e-9
    # 20 per window of 1 s plus the margin: close to the rate, never above it
    assert 0.95 * 20 <= 99 / (sent[-1] - sent[0]) <= 20


def test_circuit_breaker_fails_closed_then_half_opens() -> None:
    clock = FakeClock()
    throttle = Throttle(
        ThrottleConfig(
            rate_per_second=100, max_in_flight=4, breaker_failures=3, breaker_reset_seconds=60
        ),
        clock,
    )
    for _ in range(3):
        throttle.breaker.failure()
    sent_before = throttle.total_sent
    with pytest.raises(OverloadError, match="open"), throttle.slot():
        pass  # pragma: no cover
    assert throttle.total_sent == sent_before
    clock.now += 61
    assert throttle.breaker.state == "half_open"
    with throttle.slot():
        pass
    with pytest.raises(OverloadError, match="half-open"), throttle.slot():
        pass  # pragma: no cover
    throttle.breaker.success()
    assert throttle.breaker.state == "closed"


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(min_value=0.2, max_value=20),
    window=st.floats(min_value=0.3, max_value=3),
    start=st.floats(min_value=0, max_value=1e6),
)
def test_rounding_never_lets_a_burst_through(rate: float, window: float, start: float) -> None:
    """Back-to-back sends (no time passing between them unless the throttle sleeps) never
    exceed the capacity of any window, whatever the float rounding at the window's edge."""
    clock = FakeClock()
    clock.now = start
    throttle = Throttle(
        ThrottleConfig(
            rate_per_second=rate, max_in_flight=4, window_seconds=window, margin_seconds=0.0
        ),
        clock,
    )
    sent: list[float] = []
    for _ in range(30):
        with throttle.slot():
            sent.append(clock.now)
    span = max(window, 1.0 / rate)
    capacity = max(1, int(rate * span))
    for t in sent:
        assert sum(1 for s in sent if t <= s < t + span) <= capacity


class OversleepingClock(FakeClock):
    """A busy machine: every sleep ends some time after it should."""

    def __init__(self, oversleeps: list[float]) -> None:
        super().__init__()
        self._oversleeps = itertools.cycle(oversleeps)

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds + next(self._oversleeps)


@settings(max_examples=80, deadline=None)
@given(
    oversleeps=st.lists(st.floats(min_value=0, max_value=0.15), min_size=1, max_size=50),
    transits=st.lists(st.floats(min_value=0, max_value=1), min_size=70, max_size=70),
)
def test_late_wakeups_and_jitter_on_the_way_never_overfill_a_window_at_the_receiver(
    oversleeps: list[float], transits: list[float]
) -> None:
    """A sender that wakes late still sends within the late tolerance (or takes a new
    slot); the rest of the margin covers the way to the receiver, which counts every
    window (t - 1 s, t] strictly."""
    config = ThrottleConfig(rate_per_second=20, max_in_flight=50, margin_seconds=0.05)
    way = config.margin_seconds / 2  # half the margin is for the way
    clock = OversleepingClock(oversleeps)
    throttle = Throttle(config, clock)
    arrivals: list[float] = []
    for transit in transits:
        with throttle.reserve() as slot:
            slot.wait()
            assert clock.now - slot.send_at <= config.late_tolerance
            arrivals.append(clock.now + transit * way * 0.999)
    arrivals.sort()
    for last, at in enumerate(arrivals):
        in_window = [a for a in arrivals[: last + 1] if a > at - 1.0]
        assert len(in_window) <= config.capacity


@pytest.mark.parametrize("late", [0.0, 0.024, 0.026, 0.049])
def test_a_late_first_send_of_a_window_leaves_half_the_margin_for_the_way(late: float) -> None:
    """The worst case: the first send of a full window leaves late and takes the longest
    way, the last leaves on time and arrives at once. Half the margin is for the way."""
    config = ThrottleConfig(rate_per_second=20, max_in_flight=50, margin_seconds=0.05)
    way = config.margin_seconds / 2 * 0.99
    clock = FakeClock()
    throttle = Throttle(config, clock)
    arrivals: list[float] = []
    for i in range(config.capacity + 1):
        with throttle.reserve() as slot:
            first = i == 0
            clock.now = max(clock.now, slot.send_at) + (late if first else 0.0)  # wakes late
            slot.wait()
            arrivals.append(clock.now + (way if first else 0.0))
    assert arrivals[-1] - arrivals[0] > 1.0  # the receiver's (t - 1 s, t] holds capacity
