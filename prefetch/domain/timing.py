"""When a schedule runs: a daily local time or a cron expression, in Europe/Amsterdam (pure).

`parse_cron("30 19 * * mon-fri")` -> `Cron` (minute hour day-of-month month day-of-week;
`*`, numbers, `a-b`, lists, `*/n` and `a-b/n`; day-of-week 0-7 with 0 and 7 Sunday, or
mon..sun). `next_runs(schedule, after, n)` gives the next local run times: a wall-clock
time that does not exist (spring forward) is skipped and one that exists twice (autumn)
fires once, at its first occurrence, so a nightly run neither skips nor doubles on a DST
night (`schedules check` refuses run times between 02:00 and 03:00 anyway).
`window_opens(schedule, clinic_day)` is when the run of a clinic day may start ("not
before"): the start of `run_window` at or before the day's nominal run time (`run_at`,
`days_ahead` days before the clinic day); its end ("not after") is `domain.run.run_deadline`.
`trigger_args(schedule)` gives the same timing as keyword arguments for APScheduler's
`CronTrigger` (whose day_of_week counts from Monday: names avoid the confusion).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from prefetch.domain.localtime import AMSTERDAM
from prefetch.domain.schedule import Schedule

_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))
DST_HOUR = 2  # 02:00-03:00 local: skipped in March, repeated in October


class CronError(ValueError):
    """The expression is not valid; the message says which field and how."""


@dataclass(frozen=True, slots=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday ... 6 = Saturday
    any_day: bool
    any_weekday: bool

    def matches_day(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        weekday = (day.weekday() + 1) % 7
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return weekday in self.weekdays
        if self.any_weekday:
            return day.day in self.days
        return day.day in self.days or weekday in self.weekdays  # cron: either restricts


def _number(text: str, name: str, low: int, high: int) -> int:
    value = text.strip().lower()
    if name == "weekday" and value[:3] in _DAY_NAMES and len(value) == 3:
        return _DAY_NAMES.index(value[:3])
    if not value.isdigit() or not low <= int(value) <= high:
        raise CronError(f"{name} field: '{text[:10]}' is not a number from {low} to {high}")
    return int(value)


def _field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    found: set[int] = set()
    for item in text.split(","):
        step = 1
        part = item
        if "/" in item:
            part, step_text = item.split("/", 1)
            step = _number(step_text, name, 1, high)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _number(a, name, low, high), _number(b, name, low, high)
            if end < start:
                raise CronError(f"{name} field: range {part[:12]} runs backwards")
        else:
            start = _number(part, name, low, high)
            end = high if step > 1 else start
        found.update(range(start, end + 1, step))
    if name == "weekday" and 7 in found:
        found = (found - {7}) | {0}
    return frozenset(found)


def parse_cron(expression: str) -> Cron:
    parts = expression.split()
    if len(parts) != 5:
        raise CronError("cron needs five fields: minute hour day-of-month month day-of-week")
    minutes, hours, days, months, weekdays = (
        _field(p, name, low, high) for p, (name, low, high) in zip(parts, _FIELDS, strict=True)
    )
    return Cron(
        minutes, hours, days, months, weekdays, any_day=parts[2] == "*", any_weekday=parts[4] == "*"
    )


def cron_of(schedule: Schedule) -> Cron:
    if schedule.cron:
        return parse_cron(schedule.cron)
    at = schedule.run_at
    every = frozenset(range(0, 7))
    return Cron(
        frozenset({at.minute}),
        frozenset({at.hour}),
        frozenset(range(1, 32)),
        frozenset(range(1, 13)),
        every,
        any_day=True,
        any_weekday=True,
    )


def _local(day: dt.date, hour: int, minute: int) -> dt.datetime | None:
    """The first occurrence of a wall-clock time, or None when it does not exist."""
    naive = dt.datetime.combine(day, dt.time(hour, minute))
    first = naive.replace(tzinfo=AMSTERDAM, fold=0)
    if first.astimezone(dt.UTC).astimezone(AMSTERDAM).replace(tzinfo=None) != naive:
        return None  # in the spring-forward gap
    return first


def next_runs(schedule: Schedule, after: dt.datetime, count: int = 3) -> list[dt.datetime]:
    """The next `count` run times strictly after `after`, local (Europe/Amsterdam)."""
    cron = cron_of(schedule)
    start = after.astimezone(AMSTERDAM)
    found: list[dt.datetime] = []
    day = start.date()
    for _ in range(366 * 5):
        if cron.matches_day(day):
            for hour in sorted(cron.hours):
                for minute in sorted(cron.minutes):
                    when = _local(day, hour, minute)
                    if when is not None and when > start:
                        found.append(when)
                        if len(found) == count:
                            return found
        day += dt.timedelta(days=1)
    return found


def window_opens(schedule: Schedule, clinic_day: dt.date) -> dt.datetime | None:
    """When the run of `clinic_day` may start, aware UTC; None without a `run_window`.

    The window instance is the one holding the nominal run time (`run_at` on the day
    `days_ahead` before the clinic day): it opens at `run_from` that day, or the day
    before when `run_from` is later than `run_at` (a window across midnight).
    """
    if schedule.run_from is None:
        return None
    runs_on = clinic_day - dt.timedelta(days=schedule.days_ahead)
    opens_on = runs_on if schedule.run_from <= schedule.run_at else runs_on - dt.timedelta(days=1)
    naive = dt.datetime.combine(opens_on, schedule.run_from)
    return naive.replace(tzinfo=AMSTERDAM, fold=0).astimezone(dt.UTC)


def dst_hour_runs(schedule: Schedule) -> bool:
    """True when the schedule may run between 02:00 and 03:00 local."""
    return DST_HOUR in cron_of(schedule).hours


def trigger_args(schedule: Schedule) -> dict[str, str]:
    """Keyword arguments for `apscheduler.triggers.cron.CronTrigger`."""
    cron = cron_of(schedule)

    def listed(values: frozenset[int]) -> str:
        return ",".join(str(v) for v in sorted(values))

    weekdays = (
        "*"
        if cron.any_weekday
        else ",".join(_DAY_NAMES[d] for d in sorted(cron.weekdays, key=lambda d: (d + 6) % 7))
    )
    return {
        "minute": listed(cron.minutes),
        "hour": listed(cron.hours),
        "day": "*" if cron.any_day else listed(cron.days),
        "month": "*" if cron.months == frozenset(range(1, 13)) else listed(cron.months),
        "day_of_week": weekdays,
        "timezone": "Europe/Amsterdam",
    }
