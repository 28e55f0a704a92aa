"""The shared send budget on real SQLite and PostgreSQL: pacing, the in-flight cap across
limiters (and processes), leases of a killed process, overload pauses, failing closed."""

from __future__ import annotations

import datetime as dt
import itertools
import multiprocessing as mp
import os
import signal
import time
from typing import Any

import pytest
from sqlalchemy import Engine

from prefetch.clock import FakeClock
from prefetch.errors import OverloadError, StoreUnavailableError
from prefetch.limiter import SharedLimiter
from prefetch.store.db import make_engine
from prefetch.throttle import ThrottleConfig


def _clock() -> FakeClock:
    return FakeClock(dt.datetime(2026, 12, 2, 1, 0, tzinfo=dt.UTC))


def _config(rate: float, cap: int, **kwargs: Any) -> ThrottleConfig:
    return ThrottleConfig(rate_per_second=rate, max_in_flight=cap, **kwargs)


def _max_in_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    return max(sum(1 for s in times[i:] if s < t + window) for i, t in enumerate(times))


def test_sends_are_paced_evenly_and_no_window_exceeds_the_rate(migrated_engine: Engine) -> None:
    clock = _clock()
    limiter = SharedLimiter(_config(10, 4), migrated_engine, clock=clock)
    sent = []
    for _ in range(35):
        with limiter.slot():
            sent.append(clock.monotonic())
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= 0.1 - 1e-6
    assert _max_in_window(sent) <= 10
    assert 34 / (sent[-1] - sent[0]) >= 0.95 * 10
    assert limiter.in_flight == 0 and limiter.shared_in_flight() == 0


def test_two_limiters_share_one_rate(migrated_engine: Engine) -> None:
    clock = _clock()
    a = SharedLimiter(_config(5, 4), migrated_engine, clock=clock, holder="a")
    b = SharedLimiter(_config(5, 4), migrated_engine, clock=clock, holder="b")
    sent = []
    for n in range(30):
        with (a if n % 2 else b).slot():
            sent.append(clock.monotonic())
    assert _max_in_window(sent) <= 5


def test_the_in_flight_cap_holds_across_limiters_and_leases_expire(
    migrated_engine: Engine,
) -> None:
    clock = _clock()
    config = _config(100, 2, slot_timeout_seconds=5.0)
    dead = SharedLimiter(config, migrated_engine, clock=clock, holder="dead", lease_seconds=30)
    alive = SharedLimiter(config, migrated_engine, clock=clock, holder="alive", lease_seconds=30)
    # A process that dies inside its slots never releases them.
    held = [dead.slot(), dead.slot()]
    for slot in held:
        slot.__enter__()
    assert alive.shared_in_flight() == 2
    with pytest.raises(OverloadError), alive.slot():
        pass  # pragma: no cover - never entered
    clock.sleep(30)  # the dead process's leases expire
    with alive.slot():
        assert alive.shared_in_flight() == 1


def test_a_burst_of_overload_answers_pauses_every_limiter(migrated_engine: Engine) -> None:
    clock = _clock()
    a = SharedLimiter(_config(100, 4), migrated_engine, clock=clock, holder="a")
    b = SharedLimiter(_config(100, 4), migrated_engine, clock=clock, holder="b")
    a.pause(2.0)  # one 503: concerns its own query only
    start = clock.monotonic()
    with b.slot():
        assert clock.monotonic() - start < 0.1
    a.pause(2.0)
    a.pause(2.0)
    start = clock.monotonic()
    with b.slot():
        assert clock.monotonic() - start >= 2.0 - 1e-6


def test_an_unreachable_database_fails_closed() -> None:
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=1")
    limiter = SharedLimiter(_config(10, 4), engine, clock=_clock())
    entered = False
    with pytest.raises(StoreUnavailableError), limiter.slot():
        entered = True  # pragma: no cover - never entered
    assert not entered


def _hold_and_send(url: str, sends: int, out: Any, hold: bool, start: Any) -> None:
    """A separate process: take `sends` slots (recording their times); with `hold`, keep
    the last one and wait to be killed."""
    engine = make_engine(url)
    # The margin covers a process the busy machine wakes late (the pacing is not tested here).
    limiter = SharedLimiter(_config(20, 3, margin_seconds=0.1), engine, lease_seconds=60)
    start.wait(30)
    for _ in range(sends):
        with limiter.reserve() as slot:
            slot.wait()  # returns within the margin of its send time, or takes a new slot
            # The send time the budget granted: a descheduled process stamping late would
            # measure the machine, not the budget.
            out.put(slot.reservation.send_at)
    if hold:
        held = limiter.slot()  # kept referenced: a collected generator would release it
        held.__enter__()
        out.put("holding")
        time.sleep(60)


@pytest.mark.slow
def test_processes_share_the_budget_and_a_killed_holder_still_counts(
    migrated_engine: Engine, database_url: str
) -> None:
    ctx = mp.get_context("spawn")
    out, start = ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=_hold_and_send, args=(database_url, 15, out, n == 0, start))
        for n in range(3)
    ]
    for p in procs:
        p.start()
    time.sleep(1.0)
    start.set()
    sent: list[float] = []
    while len(sent) < 45 or "holding" not in sent:
        sent.append(out.get(timeout=60))
    for p in procs[1:]:
        p.join(timeout=30)
    killed = procs[0]
    assert killed.pid is not None
    os.kill(killed.pid, signal.SIGKILL)
    killed.join(timeout=10)
    times = [t for t in sent if isinstance(t, float)]
    assert _max_in_window(times, 1.0) <= 20
    limiter = SharedLimiter(_config(20, 3), migrated_engine, lease_seconds=60)
    assert limiter.shared_in_flight() == 1  # the dead process's query may still be out


def test_a_late_slot_at_the_in_flight_cap_is_exchanged_at_once(migrated_engine: Engine) -> None:
    """Every slot in flight is late (a starved machine woke its senders late): each is
    exchanged for a fresh one without waiting for its own lease to expire."""
    clock = _clock()
    config = _config(10, 2, margin_seconds=0.1)
    limiter = SharedLimiter(config, migrated_engine, clock=clock, lease_seconds=60)
    slots = limiter.reserve_many(2)
    assert len(slots) == 2 and limiter.shared_in_flight() == 2
    clock.advance(max(s.reservation.send_at for s in slots) - clock.now().timestamp() + 0.5)
    started = clock.now().timestamp()
    for slot in slots:
        late = slot.reservation
        slot.wait()
        assert slot.reservation.lease_id != late.lease_id  # exchanged, never sent late
        assert clock.now().timestamp() - slot.reservation.send_at <= config.late_tolerance
    assert clock.now().timestamp() - started < 1.0  # not the lease's 60 s
    assert limiter.shared_in_flight() == 2 and limiter.exchanged == 2
    for slot in slots:
        slot.release()
