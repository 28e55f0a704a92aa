"""Values shared by the domain and engine tests: one clinic, one overseer, one mandate."""

import datetime as dt

from prefetch.domain.people import Clinician, Mandate
from prefetch.domain.schedule import Schedule

NOW = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)
DAY = dt.date(2026, 11, 24)
OVERSEER = Clinician("900000011", "01.010", "Dr. A. de Vries")


def schedule(clinics: frozenset[str] = frozenset({"CARD", "CARD2"})) -> Schedule:
    return Schedule(
        id="card",
        clinics=clinics,
        appointment_types=frozenset(),
        excluded_appointment_types=frozenset({"TEL"}),
        overseer=OVERSEER,
        mandate_id="m1",
        run_at=dt.time(19, 0),
    )


def mandate(
    token: bytes | None = None, *, days_left: int = 30, mandating: Clinician = OVERSEER
) -> Mandate:
    return Mandate(
        id="m1",
        mandating=mandating,
        mandated_id="000000123",
        schedules=frozenset({"card"}),
        valid_from=NOW - dt.timedelta(days=10),
        valid_until=NOW + dt.timedelta(days=days_left),
        token_xml=token,
    )
