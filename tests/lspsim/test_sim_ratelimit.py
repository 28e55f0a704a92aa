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
    assert report.violations == {"rate": 30, "concurrency": 0}
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
