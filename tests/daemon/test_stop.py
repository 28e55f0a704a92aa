"""SIGTERM's path into a run: after `stop()` the daemon's limiter hands out no slot and
its breaker stops idle workers (StopError: the run stops, it is not finished); a query
already holding a slot completes and its slot is given back."""

from __future__ import annotations

import pytest

from prefetch.daemon.runner import SHUTDOWN, StoppableLimiter
from prefetch.errors import StopError
from prefetch.throttle import Throttle, ThrottleConfig


def test_stop_lets_the_query_in_flight_finish_and_sends_nothing_new() -> None:
    throttle = Throttle(ThrottleConfig(rate_per_second=50, max_in_flight=2))
    limiter = StoppableLimiter(throttle)
    assert limiter.breaker.state == "closed"
    with limiter.slot():
        assert limiter.in_flight == 1
        limiter.stop()  # SIGTERM arrives while this query is out
        finished = True
    assert finished and limiter.in_flight == 0
    with pytest.raises(StopError, match=SHUTDOWN), limiter.slot():
        pytest.fail("a slot after stop")
    with pytest.raises(StopError, match=SHUTDOWN):
        _ = limiter.breaker.state
    assert throttle.total_sent == 1
