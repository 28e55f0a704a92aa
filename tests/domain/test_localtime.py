import datetime as dt

import pytest

from prefetch.domain.localtime import parse_local_datetime
from prefetch.errors import InvalidValueError


def test_naive_time_is_amsterdam() -> None:
    value = parse_local_datetime("2026-11-24T09:30")
    assert value.utcoffset() == dt.timedelta(hours=1)
    summer = parse_local_datetime("2026-06-24 09:30")
    assert summer.utcoffset() == dt.timedelta(hours=2)


def test_spring_forward_gap_refused() -> None:
    with pytest.raises(InvalidValueError, match="non-existent"):
        parse_local_datetime("2026-03-29T02:30")


def test_autumn_fold_refused_without_offset_accepted_with() -> None:
    with pytest.raises(InvalidValueError, match="ambiguous"):
        parse_local_datetime("2026-10-25T02:30")
    explicit = parse_local_datetime("2026-10-25T02:30+01:00")
    assert explicit.astimezone(dt.UTC).hour == 1


def test_garbage_refused() -> None:
    with pytest.raises(InvalidValueError, match="ISO 8601"):
        parse_local_datetime("24-11-2026 9:30")
