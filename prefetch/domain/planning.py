"""Planning: appointments of a clinic day -> the patients to consider (pure).

One query per patient per run, even with several appointments in several clinics: the
patients are grouped by BSN when they have a valid one, else by the hospital patient id.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable
from dataclasses import dataclass

from prefetch.domain.localtime import AMSTERDAM
from prefetch.domain.people import Appointment, Patient
from prefetch.domain.schedule import Schedule


@dataclass(frozen=True, slots=True)
class PlannedPatient:
    patient: Patient
    appointments: tuple[Appointment, ...]

    @property
    def clinics(self) -> tuple[str, ...]:
        return tuple(sorted({a.clinic for a in self.appointments}))

    @property
    def key(self) -> str:
        """Stable identity within a run (never shown, never logged)."""
        p = self.patient
        return f"bsn:{p.bsn.value}" if p.bsn is not None else f"local:{p.local_id}"


def _merge_patient(a: Patient, b: Patient) -> Patient:
    """Two records of one person: the stricter facts win (refusal, unverified)."""
    refused = a.consent if a.consent.value == "refused" else b.consent
    return Patient(
        local_id=a.local_id,
        bsn=a.bsn,
        bsn_verified=a.bsn_verified and b.bsn_verified,
        consent=refused,
        bsn_invalid=a.bsn_invalid,
    )


def night_order(schedules: Iterable[Schedule], clinic_day: dt.date) -> list[Schedule]:
    """Schedules preparing `clinic_day`, in the order they run (then by id): for one query
    per patient per night, the first schedule that reaches a patient queries them."""

    def starts(s: Schedule) -> dt.datetime:
        day = clinic_day - dt.timedelta(days=s.days_ahead)
        return dt.datetime.combine(day, s.run_at, tzinfo=AMSTERDAM)

    return sorted(schedules, key=lambda s: (starts(s), s.id))


def plan(
    appointments: Iterable[Appointment], *, schedule: Schedule, clinic_day: dt.date
) -> list[PlannedPatient]:
    """Patients with an appointment in the schedule's clinics on `clinic_day` (local date).

    Cancelled appointments are kept so that eligibility can say "cancelled" for a patient
    whose only appointment was cancelled; order follows the first appointment time.
    """
    # Grouped by the BSN's own string (no new string per appointment); a hospital id is
    # "local:<id>" (a BSN is digits only), which sorts as the key does. A patient with
    # one appointment (most of a big day) is held as that appointment alone.
    groups: dict[str, Appointment | list[Appointment]] = {}
    for appt in appointments:
        if not schedule.covers(appt.clinic, appt.agenda):
            continue
        if appt.start.astimezone(AMSTERDAM).date() != clinic_day:
            continue
        p = appt.patient
        group = p.bsn.value if p.bsn is not None else f"local:{p.local_id}"
        known = groups.get(group)
        if known is None:
            groups[group] = appt
        elif isinstance(known, list):
            known.append(appt)
        else:
            groups[group] = [known, appt]
    order: list[tuple[dt.datetime, str, PlannedPatient]] = []
    while groups:
        group, found = groups.popitem()
        every = found if isinstance(found, list) else [found]  # in the order given
        patient = functools.reduce(_merge_patient, (a.patient for a in every))
        appts = sorted(every, key=lambda x: x.start)
        order.append((appts[0].start, group, PlannedPatient(patient, tuple(appts))))
    order.sort(key=lambda entry: (entry[0], entry[1]))
    return [entry[2] for entry in order]
