"""When schedules fire: once per local day through every DST night 2026-2030, also for a
time inside the DST hour, and APScheduler's own loop never spins on the autumn night."""

from __future__ import annotations

import datetime as dt

import pytest
from daemon_helpers import schedule

from prefetch.daemon.timing import (
    AmsterdamCron,
    clinic_day_for,
    due_days,
    fires_between,
    latest_fire,
    trigger_for,
)
from prefetch.domain.localtime import AMSTERDAM


def _dst_sundays(year: int) -> list[dt.date]:
    """The last Sundays of March and October (EU rule)."""
    days = []
    for month in (3, 10):
        last = dt.date(year, month, 31)
        days.append(last - dt.timedelta(days=(last.weekday() + 1) % 7))
    return days


DST_NIGHTS = [d for y in range(2026, 2031) for d in _dst_sundays(y)]


@pytest.mark.parametrize("run_at", [dt.time(19, 0), dt.time(2, 30), dt.time(2, 0), dt.time(3, 0)])
def test_fires_once_per_local_day_on_every_dst_night(run_at: dt.time) -> None:
    trigger = trigger_for(schedule(run_at=run_at))
    for sunday in DST_NIGHTS:
        start = dt.datetime.combine(sunday - dt.timedelta(days=2), dt.time(12), AMSTERDAM)
        fires = list(fires_between(trigger, start, start + dt.timedelta(days=4)))
        local_days = [f.astimezone(AMSTERDAM).date() for f in fires]
        assert len(local_days) == 4, sunday  # four days in the window, one firing each
        assert local_days == [local_days[0] + dt.timedelta(days=k) for k in range(4)], sunday
        assert sunday in local_days
        for fire in fires:  # on time, or at the end of the spring gap
            local = fire.astimezone(AMSTERDAM)
            assert (local.hour, local.minute) in (
                (run_at.hour, run_at.minute),
                (run_at.hour + 1, run_at.minute),
            )


def test_spring_gap_time_fires_at_the_end_of_the_gap() -> None:
    fire = latest_fire(
        schedule(run_at=dt.time(2, 30)), dt.datetime(2026, 3, 29, 4, 0, tzinfo=AMSTERDAM)
    )
    assert fire is not None
    assert fire.astimezone(dt.UTC) == dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC)  # 03:30 CEST


def test_autumn_fold_repeat_is_not_fired_and_the_scheduler_loop_ends() -> None:
    trigger = AmsterdamCron(hour=2, minute=30, timezone=AMSTERDAM)
    first = dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC)  # 02:30 CEST
    # APScheduler 3 asks "next after the previous, now" and loops while the answer <= now
    now = dt.datetime(2026, 10, 25, 1, 30, 5, tzinfo=dt.UTC)  # just after the 2nd 02:30
    nxt = trigger.get_next_fire_time(first, now)
    assert nxt is not None
    assert nxt.astimezone(dt.UTC) == dt.datetime(2026, 10, 26, 1, 30, tzinfo=dt.UTC)
    assert trigger.get_next_fire_time(first, first + dt.timedelta(seconds=1)) == nxt


def test_clinic_day_of_a_firing_is_its_local_date_plus_days_ahead() -> None:
    s = schedule(run_at=dt.time(0, 30), days_ahead=1)
    fire = dt.datetime(2026, 11, 23, 23, 30, tzinfo=dt.UTC)  # 00:30 on the 24th, local
    assert clinic_day_for(s, fire) == dt.date(2026, 11, 25)


def test_due_days_are_fired_days_that_have_not_begun() -> None:
    s = schedule(run_at=dt.time(19, 0), days_ahead=1)
    starts = dt.time(7, 0)
    early = dt.datetime(2026, 11, 24, 6, 59, tzinfo=AMSTERDAM)  # yesterday's firing, for today
    assert [d for d, _ in due_days(s, early, starts=starts)] == [dt.date(2026, 11, 24)]
    before = dt.datetime(2026, 11, 24, 18, 59, tzinfo=AMSTERDAM)  # today has begun
    assert due_days(s, before, starts=starts) == []
    after = dt.datetime(2026, 11, 24, 19, 0, tzinfo=AMSTERDAM)
    assert [d for d, _ in due_days(s, after, starts=starts)] == [dt.date(2026, 11, 25)]
    too_late = dt.datetime(2026, 11, 25, 7, 0, tzinfo=AMSTERDAM)
    assert due_days(s, too_late, starts=starts) == []
    two_ahead = schedule(days_ahead=2)  # down for a day: both days still useful
    found = [d for d, _ in due_days(two_ahead, after + dt.timedelta(days=1), starts=starts)]
    assert found == [dt.date(2026, 11, 26), dt.date(2026, 11, 27)]
