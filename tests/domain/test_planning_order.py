"""`plan` groups and orders a day as it always did, while holding less (a patient with
one appointment is kept as that appointment): checked against the straightforward
grouping on random days."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st
from samples import DAY, schedule

from prefetch.domain.bsn import Bsn
from prefetch.domain.people import Appointment, AppointmentStatus, Consent, Patient
from prefetch.domain.planning import PlannedPatient, _merge_patient, plan

SCHEDULE = schedule(frozenset({"CARD", "INT"}))
BSNS = ["123456782", "111222333", "010000008"]


def reference(appointments: list[Appointment]) -> list[PlannedPatient]:
    """The grouping as first written: a dict of lists keyed "bsn:" / "local:"."""
    groups: dict[str, tuple[Patient, list[Appointment]]] = {}
    for a in appointments:
        if not SCHEDULE.covers(a.clinic, a.agenda) or a.start.date() != DAY:
            continue
        p = a.patient
        key = f"bsn:{p.bsn.value}" if p.bsn is not None else f"local:{p.local_id}"
        if key in groups:
            known, appts = groups[key]
            groups[key] = (_merge_patient(known, p), [*appts, a])
        else:
            groups[key] = (p, [a])
    planned = [
        PlannedPatient(p, tuple(sorted(a, key=lambda x: x.start))) for p, a in groups.values()
    ]
    planned.sort(key=lambda pp: (pp.appointments[0].start, pp.key))
    return planned


@st.composite
def appointments(draw: st.DrawFn) -> list[Appointment]:
    out = []
    for n in range(draw(st.integers(min_value=0, max_value=12))):
        bsn = draw(st.sampled_from([None, *BSNS]))
        patient = Patient(
            local_id=draw(st.sampled_from(["P1", "P2", "P3", "P4"])),
            bsn=Bsn(bsn) if bsn else None,
            bsn_verified=draw(st.booleans()),
            consent=draw(st.sampled_from(list(Consent))),
        )
        start = dt.datetime.combine(
            DAY + dt.timedelta(days=draw(st.sampled_from([0, 0, 0, 1]))),
            dt.time(draw(st.integers(min_value=8, max_value=16))),
            tzinfo=dt.UTC,
        )
        out.append(
            Appointment(
                id=f"A{n}",
                patient=patient,
                clinic=draw(st.sampled_from(["CARD", "INT", "DERM"])),
                start=start,
                appointment_type="NP",
                status=draw(st.sampled_from(list(AppointmentStatus))),
            )
        )
    return out


@settings(max_examples=200, deadline=None)
@given(day=appointments())
def test_plan_matches_the_plain_grouping(day: list[Appointment]) -> None:
    assert plan(iter(day), schedule=SCHEDULE, clinic_day=DAY) == reference(day)
