import dataclasses
import datetime as dt
import itertools

import pytest
from samples import schedule

from prefetch.domain.localtime import AMSTERDAM
from prefetch.domain.timing import CronError, next_runs, parse_cron, trigger_args


def dst_nights() -> list[dt.date]:
    """The nights (local dates) on which Europe/Amsterdam changes offset, 2026-2030."""
    nights = []
    day = dt.date(2026, 1, 1)
    while day.year <= 2030:
        a = dt.datetime.combine(day, dt.time(0), tzinfo=AMSTERDAM).utcoffset()
        b = dt.datetime.combine(day, dt.time(12), tzinfo=AMSTERDAM).utcoffset()
        if a != b:
            nights.append(day)
        day += dt.timedelta(days=1)
    return nights


@pytest.mark.parametrize(
    "run_at", [dt.time(19, 0), dt.time(23, 30), dt.time(1, 30), dt.time(3, 30)]
)
def test_nightly_run_fires_exactly_once_on_each_dst_night(run_at: dt.time) -> None:
    nights = dst_nights()
    assert len(nights) == 10
    sched = schedule()
    sched = dataclasses.replace(sched, run_at=run_at)
    for night in nights:
        start = dt.datetime.combine(night - dt.timedelta(days=1), dt.time(12), tzinfo=AMSTERDAM)
        runs = next_runs(sched, start, 3)
        days = [r.date() for r in runs]
        assert days == [start.date() + dt.timedelta(days=i) for i in (0, 1, 2)] or days == [
            start.date() + dt.timedelta(days=i) for i in (1, 2, 3)
        ]
        on_night = [r for r in runs if r.date() == night]
        assert len(on_night) == 1 and on_night[0].time() == run_at
        gaps = {(b - a) for a, b in itertools.pairwise(runs)}
        assert gaps <= {dt.timedelta(hours=23), dt.timedelta(hours=24), dt.timedelta(hours=25)}


def test_cron_next_runs_and_trigger_args() -> None:
    sched = schedule()
    sched = dataclasses.replace(sched, cron="30 19 * * mon-fri")
    friday = dt.datetime(2026, 11, 27, 20, 0, tzinfo=AMSTERDAM)
    runs = next_runs(sched, friday, 3)
    assert [r.strftime("%a %H:%M") for r in runs] == ["Mon 19:30", "Tue 19:30", "Wed 19:30"]
    assert trigger_args(sched) == {
        "minute": "30",
        "hour": "19",
        "day": "*",
        "month": "*",
        "day_of_week": "mon,tue,wed,thu,fri",
        "timezone": "Europe/Amsterdam",
    }
    assert parse_cron("0 */6 1,15 * 0").hours == frozenset({0, 6, 12, 18})
    assert parse_cron("0 6 * * 7").weekdays == frozenset({0})


@pytest.mark.parametrize(
    "bad", ["", "* * * *", "60 19 * * *", "0 25 * * *", "0 19 * * xyz", "0 5-2 * * *"]
)
def test_bad_cron(bad: str) -> None:
    with pytest.raises(CronError):
        parse_cron(bad)
