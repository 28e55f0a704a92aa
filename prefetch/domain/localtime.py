"""Local (Europe/Amsterdam) wall-clock times, resolved strictly (pure).

A time without an offset is Europe/Amsterdam. A wall-clock time that does not exist (the
spring-forward gap) or exists twice (the autumn fold) is refused, never shifted: the
source system must send an offset for those.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from prefetch.errors import InvalidValueError

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


def resolve_local(naive: dt.datetime, tz: dt.tzinfo = AMSTERDAM) -> dt.datetime:
    """Attach `tz` to a naive wall-clock time; refuse non-existent or ambiguous times."""
    if naive.tzinfo is not None:
        return naive
    first = naive.replace(tzinfo=tz, fold=0)
    second = naive.replace(tzinfo=tz, fold=1)
    roundtrip = first.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None)
    if roundtrip != naive:
        raise InvalidValueError(
            "non-existent local time (clocks go forward): add a UTC offset", time=naive.isoformat()
        )
    if first.utcoffset() != second.utcoffset():
        raise InvalidValueError(
            "ambiguous local time (clocks go back): add a UTC offset", time=naive.isoformat()
        )
    return first


def parse_local_datetime(text: str, tz: dt.tzinfo = AMSTERDAM) -> dt.datetime:
    """ISO 8601 date-time; with an offset it is taken as is, without one it is local."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidValueError(
            "not an ISO 8601 date-time like 2026-11-24T09:30", value=text[:40]
        ) from None
    return resolve_local(value, tz)
