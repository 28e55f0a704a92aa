import datetime as dt

import pytest
from sqlalchemy import Engine

from prefetch.domain.bsn import Bsn
from prefetch.domain.people import Appointment, AppointmentStatus, Patient
from prefetch.errors import InvalidValueError
from prefetch.sources.intake import Received
from prefetch.store.appointment_book import AppointmentBook, BookReport
from prefetch.store.audit import AuditLog
from prefetch.store.objections import ConsentRegister

BSN = "123456782"
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
DAY = dt.date(2026, 11, 24)


def appt(
    aid: str = "A1", *, hour: int = 9, status: str = "booked", clinic: str = "CARD"
) -> Appointment:
    return Appointment(
        id=aid,
        patient=Patient(local_id="P1", bsn=Bsn(BSN), bsn_verified=True),
        clinic=clinic,
        start=dt.datetime(2026, 11, 24, hour, 0, tzinfo=dt.UTC),
        appointment_type="NP",
        status=AppointmentStatus(status),
    )


def at(minutes: int) -> dt.datetime:
    return NOW + dt.timedelta(minutes=minutes)


def test_book_applies_in_order_and_never_resurrects(migrated_engine: Engine) -> None:
    book = AppointmentBook(migrated_engine)
    s12 = Received(appt(), at(1))
    s15 = Received(appt(status="cancelled"), at(2))
    assert book.apply("feed", [s12], now=NOW) == BookReport(added=1)
    assert book.apply("feed", [s12], now=NOW) == BookReport(ignored=1)  # idempotent
    assert [a.id for a in book.day({"CARD"}, DAY)] == ["A1"]
    assert book.apply("feed", [s15], now=NOW) == BookReport(cancelled=1)
    assert book.apply("feed", [s12], now=NOW) == BookReport(ignored=1)  # replayed S12
    (stored,) = book.day({"CARD"}, DAY)
    assert stored.status is AppointmentStatus.CANCELLED
    # an older update does not overwrite a newer one; another source is another key
    book.apply("feed", [Received(appt("A2", hour=10), at(5))], now=NOW)
    report = book.apply("feed", [Received(appt("A2", hour=11), at(4))], now=NOW)
    assert report == BookReport(ignored=1)
    assert book.apply("other", [s12], now=NOW) == BookReport(added=1)
    hours = sorted(a.start.hour for a in book.day({"CARD"}, DAY))
    assert hours == [9, 9, 10]
    assert book.day({"INT"}, DAY) == [] and book.day({"CARD"}, DAY + dt.timedelta(1)) == []


def test_consent_register_is_audited(migrated_engine: Engine) -> None:
    register = ConsentRegister(migrated_engine)
    assert register.refusing([BSN]) == set()
    assert register.refuse(BSN, reason="told the desk", user="desk-1", now=NOW)
    assert not register.refuse(Bsn(BSN), reason="again", user="desk-1", now=NOW)
    assert register.refusing([BSN, "111222333"]) == {BSN}
    assert register.reason(BSN) == "told the desk"
    assert register.allow(BSN, user="desk-2", now=at(1))
    assert not register.allow(BSN, user="desk-2", now=at(1))
    assert register.refusing([BSN]) == set()
    events = AuditLog(migrated_engine).for_patient(BSN)
    assert [(e.event_type, e.action.value, e.user_id) for e in events] == [
        ("objection_recorded", "C", "desk-1"),
        ("objection_withdrawn", "D", "desk-2"),
    ]
    assert all("told" not in str(e.object_detail) for e in events)
    with pytest.raises(InvalidValueError) as info:
        register.refuse("123456789", reason="x", user="u")
    assert "123456789" not in str(info.value)
