"""The daemon's decisions with a fake clock and the real run ledger (SQLite): a schedule
runs its clinic day once; a day missed while down is caught up once if still useful; the
ledger, not the scheduler, decides; DST nights neither skip nor double a run; followers
do not schedule; a lost leadership stops scheduling at once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from daemon_helpers import FakeClock, FlagLock, LedgerRunner, write_schedule
from structlog.testing import capture_logs

from prefetch.daemon.core import Daemon, RunResult
from prefetch.daemon.ledger import SqlRunLedger
from prefetch.daemon.runner import NoAppointmentsError
from prefetch.daemon.schedules import ScheduleBook
from prefetch.daemon.timing import fires_between, trigger_for
from prefetch.domain.localtime import AMSTERDAM
from prefetch.domain.run import NewItem
from prefetch.store.db import make_engine, upgrade
from prefetch.store.runs import RunRepository


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=AMSTERDAM)


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[RunRepository]:
    url = f"sqlite:///{tmp_path / 'daemon.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield RunRepository(engine)
    engine.dispose()


def make_daemon(
    tmp_path: Path, runs: RunRepository, clock: FakeClock, *, run_at: str = "19:00", **kw: object
) -> tuple[Daemon, LedgerRunner, FlagLock]:
    sched_dir = tmp_path / "schedules"
    sched_dir.mkdir(exist_ok=True)
    write_schedule(sched_dir, "card", run_at=run_at)
    runner = LedgerRunner(runs, clock)
    lock = FlagLock(**kw)  # type: ignore[arg-type]
    daemon = Daemon(
        book=ScheduleBook(sched_dir),
        runner=runner,
        ledger=SqlRunLedger(runs._sessions.engine, runs),
        lock=lock,
        clock=clock,
    )
    return daemon, runner, lock


def test_a_firing_runs_its_clinic_day_once(tmp_path: Path, runs: RunRepository) -> None:
    clock = FakeClock(local(2026, 11, 24, 19, 0, 1))
    daemon, runner, _ = make_daemon(tmp_path, runs, clock)
    assert daemon.poll_leadership()
    daemon.fire("card")
    clock.set(local(2026, 11, 24, 19, 10))
    daemon.fire("card")  # APScheduler fired again (a restart, a second job): ledger says done
    daemon.sweep()
    assert runner.days == [("card", dt.date(2026, 11, 25))]


def test_a_day_missed_while_down_is_caught_up_once_if_still_useful(
    tmp_path: Path, runs: RunRepository
) -> None:
    clock = FakeClock(local(2026, 11, 24, 23, 40))  # came up after the 19:00 firing
    daemon, runner, _ = make_daemon(tmp_path, runs, clock)
    daemon.poll_leadership()
    assert daemon.sweep() == [("card", dt.date(2026, 11, 25))]
    assert daemon.sweep() == []  # once
    # down from before 19:00 on the 25th until the clinic day of the 26th began: not useful
    clock.set(local(2026, 11, 26, 7, 30))
    assert daemon.sweep() == []
    assert runner.days == [("card", dt.date(2026, 11, 25))]


def test_an_unfinished_run_of_the_day_is_resumed_not_skipped(
    tmp_path: Path, runs: RunRepository
) -> None:
    clock = FakeClock(local(2026, 11, 24, 20, 0))
    day = dt.date(2026, 11, 25)
    runs.create_run(
        "card:2026-11-25", "card", day, "scheduled", clock(), [NewItem("p", "999990019", ("CARD",))]
    )
    runs.start_run("card:2026-11-25", clock())  # a crashed daemon left it running
    daemon, runner, _ = make_daemon(tmp_path, runs, clock)
    daemon.poll_leadership()
    daemon.sweep()
    assert runner.days == [("card", day)]


@pytest.mark.parametrize("run_at", ["19:00", "02:30", "00:15"])
def test_dst_nights_neither_skip_nor_double_a_run(
    tmp_path: Path, runs: RunRepository, run_at: str
) -> None:
    """Drive the daemon as APScheduler would (at every firing) plus a sweep every hour,
    through the spring and autumn weekends of 2026 and 2027."""
    clock = FakeClock(local(2026, 3, 1))
    daemon, runner, _ = make_daemon(tmp_path, runs, clock, run_at=run_at)
    daemon.poll_leadership()
    schedule = daemon.book.get("card")
    assert schedule is not None
    for friday in (
        local(2026, 3, 27),
        local(2026, 10, 23),
        local(2027, 3, 26),
        local(2027, 10, 29),
    ):
        end = friday + dt.timedelta(days=4)
        fires = [f.astimezone(dt.UTC) for f in fires_between(trigger_for(schedule), friday, end)]
        moment = friday.astimezone(dt.UTC)
        while moment < end.astimezone(dt.UTC):
            clock.set(moment)
            if fires and fires[0] <= moment:
                fires.pop(0)
                daemon.fire("card")
            daemon.sweep()
            moment += (
                dt.timedelta(hours=1)
                if not fires
                else min(dt.timedelta(hours=1), max(fires[0] - moment, dt.timedelta(seconds=1)))
            )
    days = [d for _, d in runner.days]
    assert len(days) == len(set(days)), "a clinic day ran twice"
    for friday in (
        dt.date(2026, 3, 28),
        dt.date(2026, 10, 24),
        dt.date(2027, 3, 27),
        dt.date(2027, 10, 30),
    ):
        for k in range(3):  # Sat, Sun (the DST night), Mon each ran
            assert friday + dt.timedelta(days=k) in days


def test_followers_do_not_schedule_and_a_lost_lock_stops_scheduling(
    tmp_path: Path, runs: RunRepository
) -> None:
    clock = FakeClock(local(2026, 11, 24, 19, 0, 1))
    daemon, runner, lock = make_daemon(tmp_path, runs, clock, available=False)
    assert not daemon.poll_leadership()
    daemon.fire("card")
    assert daemon.sweep() == []
    lock.available = True
    assert daemon.poll_leadership()
    lock.available = False  # the lock's session died (database restart, network)
    assert not daemon.poll_leadership()
    daemon.fire("card")
    assert runner.days == []


def test_every_daemon_joins_running_runs_unless_sqlite_follower(
    tmp_path: Path, runs: RunRepository
) -> None:
    clock = FakeClock(local(2026, 11, 24, 20, 0))
    runs.create_run(
        "card:2026-11-25",
        "card",
        dt.date(2026, 11, 25),
        "scheduled",
        clock(),
        [NewItem("p", "999990019", ("CARD",))],
    )
    runs.start_run("card:2026-11-25", clock())
    daemon, runner, _ = make_daemon(tmp_path, runs, clock, available=False)
    assert daemon.join_running() == ["card:2026-11-25"]  # a follower on PostgreSQL helps
    daemon.followers_work = False  # SQLite: one daemon works
    assert daemon.join_running() == []
    daemon.stop()
    assert runner.stopped.is_set()
    assert daemon.sweep() == [] and daemon.join_running() == []


def test_a_failing_day_is_said_once_per_reason(tmp_path: Path, runs: RunRepository) -> None:
    clock = FakeClock(local(2026, 11, 24, 20, 0))
    daemon, runner, _ = make_daemon(tmp_path, runs, clock)

    def empty_book(schedule: object, day: dt.date) -> RunResult:
        raise NoAppointmentsError("no appointments in the book", clinic_day=str(day))

    runner.run_day = empty_book  # type: ignore[method-assign, assignment]
    daemon.poll_leadership()
    with capture_logs() as logs:
        for _ in range(3):
            assert daemon.sweep() == []
    errors = [e for e in logs if e["event"] == "daemon_run_failed" and e["log_level"] == "error"]
    assert len(errors) == 1 and "clinic_day=2026-11-25" in errors[0]["reason"]


def test_daily_chores_run_on_the_leader_only_when_due(tmp_path: Path, runs: RunRepository) -> None:
    clock = FakeClock(local(2026, 11, 24, 3, 0))
    daemon, _, lock = make_daemon(tmp_path, runs, clock, available=False)
    last: list[dt.datetime] = []

    def checkpoint(now: dt.datetime) -> bool:  # due when the last one is a day old
        if last and now - last[-1] < dt.timedelta(hours=24):
            return False
        last.append(now)
        return True

    daemon.daily = {"audit_checkpoint": checkpoint}
    assert daemon.maintenance() == []  # a follower does not
    lock.available = True
    daemon.poll_leadership()
    assert daemon.maintenance() == ["audit_checkpoint"]
    clock.set(local(2026, 11, 24, 4, 0))
    assert daemon.maintenance() == []
    clock.set(local(2026, 11, 25, 3, 0))
    assert daemon.maintenance() == ["audit_checkpoint"]
