import datetime as dt

import pytest
from samples import DAY, NOW, mandate, schedule

from prefetch.domain.bsn import Bsn
from prefetch.domain.eligibility import EligibilityPolicy, Eligible, Skipped, decide
from prefetch.domain.outcome import SkipReason
from prefetch.domain.people import (
    Appointment,
    AppointmentStatus,
    Clinician,
    Consent,
    Mandate,
    Patient,
)
from prefetch.domain.planning import plan

SCHEDULE = schedule()
MANDATE = mandate()
POLICY = EligibilityPolicy(fresh_for=dt.timedelta(hours=12))


def patient(**kw: object) -> Patient:
    base: dict[str, object] = {
        "local_id": "P1",
        "bsn": Bsn.parse("123456782"),
        "bsn_verified": True,
    }
    base.update(kw)
    return Patient(**base)  # type: ignore[arg-type]


def appt(
    p: Patient,
    *,
    clinic: str = "CARD",
    typ: str = "NP",
    hour: int = 9,
    status: AppointmentStatus = AppointmentStatus.BOOKED,
    aid: str = "A1",
) -> Appointment:
    start = dt.datetime(2026, 11, 24, hour, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    return Appointment(
        id=aid, patient=p, clinic=clinic, start=start, appointment_type=typ, status=status
    )


def run(
    p: Patient,
    appts: list[Appointment] | None = None,
    *,
    last: dt.datetime | None = None,
    mandate: Mandate | None = MANDATE,
) -> object:
    return decide(
        p,
        appts or [appt(p)],
        schedule=SCHEDULE,
        policy=POLICY,
        now=NOW,
        last_fetched_at=last,
        mandate=mandate,
    )


@pytest.mark.parametrize(
    ("p", "reason"),
    [
        (patient(bsn=None), SkipReason.NO_BSN),
        (patient(bsn=None, bsn_invalid=True), SkipReason.BSN_INVALID),
        (patient(bsn_verified=False), SkipReason.BSN_UNVERIFIED),
        (patient(consent=Consent.REFUSED), SkipReason.CONSENT_REFUSED),
    ],
)
def test_identity_and_consent_reasons(p: Patient, reason: SkipReason) -> None:
    assert run(p) == Skipped(p, reason)


def test_eligible_patient() -> None:
    p = patient()
    assert run(p) == Eligible(p)


def test_cancelled_and_excluded_types() -> None:
    p = patient()
    assert run(p, [appt(p, status=AppointmentStatus.CANCELLED)]) == Skipped(p, SkipReason.CANCELLED)
    assert run(p, [appt(p, typ="TEL")]) == Skipped(p, SkipReason.APPOINTMENT_TYPE_EXCLUDED)
    assert run(p, [appt(p, typ="TEL"), appt(p, typ="NP", aid="A2")]) == Eligible(p)


def test_fresh_and_mandate() -> None:
    p = patient()
    assert run(p, last=NOW - dt.timedelta(hours=2)) == Skipped(p, SkipReason.FRESH)
    assert run(p, last=NOW - dt.timedelta(hours=13)) == Eligible(p)
    assert run(p, mandate=None) == Skipped(p, SkipReason.MANDATE_MISSING)
    expired = mandate(days_left=-1)
    assert run(p, mandate=expired) == Skipped(p, SkipReason.MANDATE_EXPIRED)
    foreign = mandate(mandating=Clinician("900000022", "01.010", "Dr. X"))
    assert run(p, mandate=foreign) == Skipped(p, SkipReason.MANDATE_MISSING)


def test_plan_deduplicates_across_clinics_and_filters_day() -> None:
    p1 = patient()
    p1_other_record = patient(local_id="P1b", bsn_verified=False)
    p2 = patient(local_id="P2", bsn=None)
    other_day = Appointment(
        id="A9",
        patient=p2,
        clinic="CARD",
        start=dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC),
        appointment_type="NP",
    )
    planned = plan(
        [
            appt(p1, aid="A1"),
            appt(p1_other_record, clinic="CARD2", aid="A2", hour=11),
            appt(p2, aid="A3", hour=10),
            appt(p2, clinic="DERM", aid="A4"),
            other_day,
        ],
        schedule=SCHEDULE,
        clinic_day=DAY,
    )
    assert [pp.patient.local_id for pp in planned] == ["P1", "P2"]
    assert planned[0].clinics == ("CARD", "CARD2")
    assert planned[0].patient.bsn_verified is False  # the stricter record wins
    assert len(planned[1].appointments) == 1
