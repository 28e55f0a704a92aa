"""When a schedule fires and which clinic day a firing is for (pure, clock passed in).

A schedule fires on local (Europe/Amsterdam) wall-clock time. APScheduler 3's CronTrigger
repeats a time in the autumn fold (02:30 exists twice) and, asked again just after the
second one, answers the same instant, which its scheduler loop would chase forever.
`AmsterdamCron` fires once per wall-clock time: on the spring-forward night a time in the
gap fires at the end of the gap (02:30 becomes 03:30 CEST), on the autumn night only the
first 02:30 fires. The run ledger would not run the day twice anyway (both firings map to
the same clinic day), but the scheduler should not even try.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from apscheduler.triggers.cron import CronTrigger

from prefetch.domain.localtime import AMSTERDAM
from prefetch.domain.schedule import Schedule

LOOK_BACK = dt.timedelta(days=8)  # the latest firing of a daily or weekly schedule


class AmsterdamCron(CronTrigger):  # type: ignore[misc]  # apscheduler 3 is untyped
    """A CronTrigger in Europe/Amsterdam that fires each wall-clock time once."""

    def get_next_fire_time(
        self, previous_fire_time: dt.datetime | None, now: dt.datetime
    ) -> dt.datetime | None:
        nxt: dt.datetime | None = super().get_next_fire_time(previous_fire_time, now)
        if previous_fire_time is None:
            return nxt
        # Compare and step in UTC: aware datetimes of one zone compare by wall clock.
        previous = previous_fire_time.astimezone(dt.UTC)
        for _ in range(8):  # bounded: one repeat at most on a fold night
            if nxt is None:
                return None
            if nxt.astimezone(dt.UTC) > previous and _wall(nxt) != _wall(previous):
                return nxt
            # CronTrigger searches on from previous_fire_time and finds the repeat again:
            # search from just after it instead.
            after = max(now.astimezone(dt.UTC), nxt.astimezone(dt.UTC)) + dt.timedelta(seconds=1)
            nxt = super().get_next_fire_time(None, after)
        return None


def _wall(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(AMSTERDAM).replace(tzinfo=None, fold=0)


def trigger_for(schedule: Schedule) -> AmsterdamCron:
    """The schedule's firing times: daily at `run_at`, Europe/Amsterdam."""
    return AmsterdamCron(
        hour=schedule.run_at.hour, minute=schedule.run_at.minute, timezone=AMSTERDAM
    )


def fires_between(
    trigger: CronTrigger, start: dt.datetime, end: dt.datetime
) -> Iterator[dt.datetime]:
    """Every firing in [start, end], in order."""
    end = end.astimezone(dt.UTC)
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire.astimezone(dt.UTC) <= end:
        yield fire
        after = fire.astimezone(dt.UTC) + dt.timedelta(seconds=1)
        fire = trigger.get_next_fire_time(fire, after)


def latest_fire(schedule: Schedule, now: dt.datetime) -> dt.datetime | None:
    """The schedule's most recent firing at or before `now` (within the look-back)."""
    latest = None
    for fire in fires_between(trigger_for(schedule), now - LOOK_BACK, now):
        latest = fire
    return latest


def clinic_day_for(schedule: Schedule, fire: dt.datetime) -> dt.date:
    """The clinic day a firing prefetches: its local date plus `days_ahead`."""
    return fire.astimezone(AMSTERDAM).date() + dt.timedelta(days=schedule.days_ahead)


def clinic_day_start(clinic_day: dt.date, starts: dt.time) -> dt.datetime:
    """When the clinic day begins (local), as aware UTC."""
    return dt.datetime.combine(clinic_day, starts, tzinfo=AMSTERDAM).astimezone(dt.UTC)


def due_days(
    schedule: Schedule, now: dt.datetime, *, starts: dt.time
) -> list[tuple[dt.date, dt.datetime]]:
    """Clinic days this schedule has fired for (by `now`) that have not begun yet, each
    with its latest firing: the runs that are due now or were missed and are still
    useful. Whether they already ran is the ledger's to say, not this function's."""
    found: dict[dt.date, dt.datetime] = {}
    # a firing older than days_ahead + 1 days is for a clinic day that has begun
    since = now - dt.timedelta(days=schedule.days_ahead + 1)
    for fire in fires_between(trigger_for(schedule), since, now):
        day = clinic_day_for(schedule, fire)
        if now.astimezone(dt.UTC) < clinic_day_start(day, starts):
            found[day] = fire
    return sorted(found.items())
