"""Rate and concurrency enforcement with a fake clock."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from prefetch.lspsim.clock import FakeClock
from prefetch.lspsim.ratelimit import RateEnforcer, Refusal


def test_a_client_at_the_limit_is_never_refused() -> None:
    clock = FakeClock()
    limiter = RateEnforcer(max_rate=2, max_concurrency=4, clock=clock, tolerance_s=0.05)
    for _ in range(100):
        assert limiter.admit("hospital") is None
        limiter.release("hospital")
        clock.advance(0.5)
    assert all(sum(c.violations.values()) == 0 for c in limiter.report())
    assert limiter.peak_rate == 2


def test_a_too_fast_client_is_caught() -> None:
    clock = FakeClock()
    limiter = RateEnforcer(max_rate=2, max_concurrency=4, clock=clock)
    refusals = []
    for _ in range(40):  # 8 queries per second for 5 seconds
        refusals.append(limiter.admit("fast"))
        if refusals[-1] is None:
            limiter.release("fast")
        clock.advance(0.125)
    admitted = refusals.count(None)
    assert admitted == 10  # 2 per second
    (report,) = limiter.report()
    assert report.refused == {"rate": 30, "concurrency": 0}
    # Strictly: every arrival after the first two had two others in the second before it.
    assert report.violations == {"rate": 38, "concurrency": 0}
    assert report.peak_rate == 8


def test_concurrency_is_capped_per_client() -> None:
    clock = FakeClock()
    limiter = RateEnforcer(max_rate=None, max_concurrency=2, clock=clock)
    assert limiter.admit("a") is None
    assert limiter.admit("a") is None
    assert limiter.admit("a") is Refusal.CONCURRENCY
    assert limiter.admit("b") is None  # another client has its own budget
    limiter.release("a")
    assert limiter.admit("a") is None
    assert limiter.peak_concurrency == 3
    assert {r.client: r.violations["concurrency"] for r in limiter.report()} == {"a": 1, "b": 0}


def test_reset_forgets_peaks_and_violations() -> None:
    clock = FakeClock()
    limiter = RateEnforcer(max_rate=1, max_concurrency=None, clock=clock)
    limiter.admit("a")
    limiter.release("a")
    assert limiter.admit("a") is Refusal.RATE
    limiter.reset()
    assert limiter.report()[0].violations["rate"] == 0
    assert limiter.peak_rate == 0


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.floats(min_value=0.0, max_value=0.6), min_size=1, max_size=80),
    rate=st.integers(min_value=1, max_value=5),
)
def test_admitted_queries_never_exceed_the_rate_in_any_window(gaps: list[float], rate: int) -> None:
    clock = FakeClock()
    limiter = RateEnforcer(max_rate=rate, max_concurrency=None, clock=clock)
    admitted: list[float] = []
    for gap in gaps:
        clock.advance(gap)
        if limiter.admit("c") is None:
            admitted.append(clock.monotonic())
            limiter.release("c")
    for i, start in enumerate(admitted):
        in_window = [t for t in admitted[i:] if t < start + 1.0]
        assert len(in_window) <= rate


def test_a_rate_below_one_per_second_admits_a_client_at_that_rate() -> None:
    clock = FakeClock()
    limiter = RateEnforcer(max_rate=0.5, max_concurrency=None, clock=clock, tolerance_s=0.05)
    results = []
    for _ in range(10):  # 0.5/s for 20 s
        results.append(limiter.admit("slow"))
        if results[-1] is None:
            limiter.release("slow")
        clock.advance(2.0)
    assert results == [None] * 10
    assert limiter.report()[0].violations == {"rate": 0, "concurrency": 0}


def test_a_two_second_window_admits_a_client_at_the_rate() -> None:
    clock = FakeClock()
    limiter = RateEnforcer(max_rate=2, max_concurrency=None, clock=clock, window_s=2.0)
    for _ in range(40):
        assert limiter.admit("c") is None
        limiter.release("c")
        clock.advance(0.5)
    assert limiter.peak_rate == 2


def test_the_peak_is_measured_over_a_full_second_whatever_the_tolerance() -> None:
    clock = FakeClock()
    limiter = RateEnforcer(max_rate=2, max_concurrency=None, clock=clock, tolerance_s=0.05)
    refused = 0
    for _ in range(4):  # 4 queries within 0.9 s
        if limiter.admit("c") is None:
            limiter.release("c")
        else:
            refused += 1
        clock.advance(0.3)
    assert limiter.peak_rate == 4
    assert refused == 2


def test_jitter_within_the_tolerance_is_forgiven_but_still_reported() -> None:
    clock = FakeClock()
    limiter = RateEnforcer(max_rate=1, max_concurrency=None, clock=clock, tolerance_s=0.05)
    assert limiter.admit("c") is None
    limiter.release("c")
    clock.advance(0.97)  # 30 ms early
    assert limiter.admit("c") is None
    assert limiter.peak_rate == 2  # two arrivals within one second, reported as such


def _drive(limiter: RateEnforcer, clock: FakeClock, gap: float, count: int) -> int:
    refused = 0
    for _ in range(count):
        if limiter.admit("c") is None:
            limiter.release("c")
        else:
            refused += 1
        clock.advance(gap)
    return refused


@settings(max_examples=150, deadline=None)
@given(
    rate=st.floats(min_value=0.2, max_value=20.0),
    window=st.floats(min_value=0.5, max_value=10.0),
)
def test_a_client_at_the_allowed_rate_is_never_refused(rate: float, window: float) -> None:
    clock = FakeClock()
    limiter = RateEnforcer(
        max_rate=rate, max_concurrency=None, clock=clock, window_s=window, tolerance_s=0.05
    )
    # Evenly spaced at the most the window admits (capacity per window <= rate).
    gap = limiter.window_s / limiter.capacity
    assert limiter.capacity / limiter.window_s <= rate + 1e-9
    assert _drive(limiter, clock, gap, 3 * limiter.capacity + 5) == 0


@settings(max_examples=150, deadline=None)
@given(
    rate=st.floats(min_value=0.2, max_value=20.0),
    window=st.floats(min_value=0.5, max_value=10.0),
    margin=st.floats(min_value=0.0, max_value=0.05),
)
def test_a_bursting_client_at_the_allowed_rate_is_never_refused(
    rate: float, window: float, margin: float
) -> None:
    """Greedy like prefetch.throttle: `capacity` at once, then wait for the window."""
    clock = FakeClock()
    limiter = RateEnforcer(
        max_rate=rate, max_concurrency=None, clock=clock, window_s=window, tolerance_s=0.05
    )
    sent: list[float] = []
    for _ in range(4 * limiter.capacity + 3):
        if len(sent) >= limiter.capacity:
            due = sent[-limiter.capacity] + limiter.window_s + margin
            clock.advance(max(0.0, due - clock.monotonic()))
        assert limiter.admit("c") is None
        limiter.release("c")
        sent.append(clock.monotonic())


@settings(max_examples=150, deadline=None)
@given(
    rate=st.floats(min_value=0.2, max_value=20.0),
    window=st.floats(min_value=0.5, max_value=10.0),
)
def test_a_client_twice_as_fast_is_caught(rate: float, window: float) -> None:
    clock = FakeClock()
    limiter = RateEnforcer(
        max_rate=rate, max_concurrency=None, clock=clock, window_s=window, tolerance_s=0.05
    )
    gap = limiter.window_s / limiter.capacity / 2
    assert _drive(limiter, clock, gap, 4 * limiter.capacity + 4) > 0


def test_an_arrival_the_tolerance_admits_is_still_a_violation() -> None:
    clock = FakeClock()
    limiter = RateEnforcer(max_rate=2, max_concurrency=None, clock=clock, tolerance_s=0.05)
    for gap in (0.0, 0.5, 0.48):  # the third arrives 0.98 s after the first
        clock.advance(gap)
        assert limiter.admit("c") is None
        limiter.release("c")
    (report,) = limiter.report()
    assert report.refused == {"rate": 0, "concurrency": 0}
    assert report.violations == {"rate": 1, "concurrency": 0}
    clock.advance(0.52)  # 1.0 s after the second: the window (t - 1, t] holds two
    assert limiter.admit("c") is None
    assert limiter.report()[0].violations["rate"] == 1
