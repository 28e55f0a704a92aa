"""A restart after a crash: the leases of a process that is gone count until its own
time-outs would have ended its queries, not for the whole lease; a holder that may still
live (running pid, another host, our own process) keeps its full lease."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from prefetch.clock import FakeClock
from prefetch.errors import OverloadError
from prefetch.limiter import SharedLimiter
from prefetch.liveness import holder_gone, holder_name
from prefetch.throttle import ThrottleConfig

HOST = socket.gethostname()
LEASE = 30.0
GONE = 3.0


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def running_pid() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_holder_gone_only_for_a_pid_of_this_host_that_no_longer_runs(running_pid: int) -> None:
    assert holder_gone(f"{HOST}:{_dead_pid()}:ab12")
    assert not holder_gone(f"{HOST}:{running_pid}:ab12")
    assert not holder_gone(holder_name("mine"))  # this process
    assert not holder_gone(f"other-host-{HOST}:{_dead_pid()}:ab12")
    assert not holder_gone("dead")  # not host:pid:tag
    assert not holder_gone(f"{HOST}:not-a-pid:ab12")


def test_a_killed_unreaped_process_is_gone() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert not holder_gone(f"{HOST}:{proc.pid}:x")
        os.kill(proc.pid, signal.SIGKILL)
        for _ in range(200):  # a zombie until waited for
            if holder_gone(f"{HOST}:{proc.pid}:x"):
                break
            os.sched_yield()
            subprocess.run(["true"], check=True)
        assert holder_gone(f"{HOST}:{proc.pid}:x")
    finally:
        proc.kill()
        proc.wait()


def _config() -> ThrottleConfig:
    return ThrottleConfig(rate_per_second=100, max_in_flight=1, slot_timeout_seconds=10.0)


def _limiters(engine: Engine, first_holder: str) -> tuple[FakeClock, float, SharedLimiter]:
    """A first limiter (as `first_holder`) sends and never releases; a restarted one,
    on the same clock, that knows gone holders. Returns the first send time."""
    clock = FakeClock(dt.datetime(2026, 12, 2, 1, 0, tzinfo=dt.UTC))
    first = SharedLimiter(_config(), engine, clock=clock, holder=first_holder, lease_seconds=LEASE)
    held = first.reserve_many(1)[0]  # a query in flight when its process died
    again = SharedLimiter(
        _config(), engine, clock=clock, lease_seconds=LEASE, gone_lease_seconds=GONE
    )
    return clock, held.reservation.send_at, again


def test_a_gone_holders_lease_counts_until_its_time_outs(migrated_engine: Engine) -> None:
    _clock, sent_at, again = _limiters(migrated_engine, f"{HOST}:{_dead_pid()}:dead")
    assert again.shared_in_flight() == 1
    slot = again.reserve_many(1)[0]
    # not before the dead query's time-outs ran out, but long before its lease
    assert sent_at + GONE <= slot.reservation.send_at < sent_at + GONE + 1.0
    slot.release()


@pytest.mark.parametrize("where", ["running", "other_host"])
def test_a_holder_that_may_live_keeps_its_whole_lease(
    migrated_engine: Engine, running_pid: int, where: str
) -> None:
    holder = f"{HOST}:{running_pid}:alive" if where == "running" else f"elsewhere:{_dead_pid()}:x"
    clock, sent_at, again = _limiters(migrated_engine, holder)
    with pytest.raises(OverloadError):  # 10 s of slot time-out: the lease is 30 s
        again.reserve_many(1)
    clock.sleep(LEASE)
    slot = again.reserve_many(1)[0]
    assert slot.reservation.send_at >= sent_at + LEASE
    slot.release()
