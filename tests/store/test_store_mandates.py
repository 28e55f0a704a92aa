"""MandateRepository: save/get round trip, lookup by schedule and time, revocation."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine
from store_samples import T0

from prefetch.domain.people import Clinician, Mandate
from prefetch.errors import ConfigError, InvalidValueError
from prefetch.store.repositories import MandateRepository

CARDIOLOGIST = Clinician("000018389", "01.010", "Dr. A. Cardioloog", ura="00012345")
CREATED = T0 - dt.timedelta(days=30)


def _mandate(mid: str, schedules: set[str], start: dt.datetime, days: int) -> Mandate:
    return Mandate(
        id=mid,
        mandating=CARDIOLOGIST,
        mandated_id="000143554",
        schedules=frozenset(schedules),
        valid_from=start,
        valid_until=start + dt.timedelta(days=days),
        token_xml=b"<saml:Assertion>\xe2\x9c\x93</saml:Assertion>",
    )


@pytest.fixture
def mandates(migrated_engine: Engine) -> MandateRepository:
    return MandateRepository(migrated_engine, clock=lambda: CREATED)


def test_save_and_get_round_trip(mandates: MandateRepository) -> None:
    mandate = _mandate("m1", {"cardiologie", "interne"}, T0, 365)
    mandates.save(mandate)
    assert mandates.get("m1") == mandate
    assert mandates.get("unknown") is None
    renewed = _mandate("m1", {"cardiologie"}, T0, 730)
    mandates.save(renewed)  # replace: same id
    assert mandates.get("m1") == renewed


def test_add_never_overwrites(mandates: MandateRepository) -> None:
    first = _mandate("m2", {"cardiologie"}, T0, 365)
    mandates.add(first)
    with pytest.raises(ConfigError, match="exists already"):
        mandates.add(_mandate("m2", {"interne"}, T0, 30))
    assert mandates.get("m2") == first


def test_for_schedule_filters_by_schedule_time_and_revocation(
    mandates: MandateRepository,
) -> None:
    short = _mandate("short", {"cardiologie"}, T0, 10)
    long = _mandate("long", {"cardiologie"}, T0, 100)
    other = _mandate("other", {"interne"}, T0, 100)
    future = _mandate("future", {"cardiologie"}, T0 + dt.timedelta(days=50), 100)
    for m in (short, long, other, future):
        mandates.save(m)
    at = T0 + dt.timedelta(days=5)
    assert mandates.for_schedule("cardiologie", at) == [long, short]
    assert mandates.for_schedule("cardiologie", T0 + dt.timedelta(days=10)) == [long]
    assert mandates.for_schedule("cardiologie", T0 - dt.timedelta(seconds=1)) == []
    assert mandates.for_schedule("interne", at) == [other]

    revoked_at = T0 + dt.timedelta(days=3)
    assert mandates.revoke("long", revoked_at)
    assert not mandates.revoke("long", revoked_at)
    assert not mandates.revoke("unknown", revoked_at)
    assert mandates.revoked_at("long") == revoked_at
    assert mandates.for_schedule("cardiologie", at) == [short]
    assert mandates.for_schedule("cardiologie", T0 + dt.timedelta(days=1)) == [long, short]
    mandates.save(long)  # saving again does not undo a revocation
    assert mandates.revoked_at("long") == revoked_at
    assert mandates.get("long") == long


def test_revoke_refuses_a_naive_time(mandates: MandateRepository) -> None:
    mandates.save(_mandate("m1", {"cardiologie"}, T0, 10))
    with pytest.raises(InvalidValueError):
        mandates.revoke("m1", dt.datetime(2026, 11, 21, 8, 0))
    assert mandates.revoked_at("m1") is None
