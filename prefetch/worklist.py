"""A clinic day's worklist: the appointments (from the book or a file), the objection
register applied (`refusing_of`; `run_schedule_day` applies it for every run), and each
patient's decision with its reason. Sends nothing.

Used by `prefetch plan` and by the runs: `day_appointments` is where a run gets its
clinic day (the book, or the file of `prefetch run --appointments`), `decide_day` the
decisions, with `duplicate` pointing at the earlier schedule of the same night.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefetch.domain.bsn import Bsn
from prefetch.domain.eligibility import Decision, EligibilityPolicy, Eligible, decide
from prefetch.domain.people import Appointment, AppointmentStatus, Consent, Mandate
from prefetch.domain.planning import PlannedPatient, night_order, plan
from prefetch.domain.schedule import Schedule
from prefetch.logging import get_logger

log = get_logger("prefetch.worklist")


def with_objections(appointments: Iterable[Appointment], refusing: set[str]) -> list[Appointment]:
    """The appointments with the register's objections applied to their patients."""
    out: list[Appointment] = []
    for a in appointments:
        bsn = a.patient.bsn
        if bsn is not None and bsn.value in refusing and a.patient.consent is not Consent.REFUSED:
            refused = dataclasses.replace(a.patient, consent=Consent.REFUSED)
            out.append(dataclasses.replace(a, patient=refused))
        else:
            out.append(a)
    return out


def refusing_of(
    appointments: Sequence[Appointment], refusing: Callable[[Iterable[str]], set[str]]
) -> list[Appointment]:
    bsns = {a.patient.bsn.value for a in appointments if a.patient.bsn is not None}
    return with_objections(appointments, refusing(bsns) if bsns else set())


@dataclass(frozen=True, slots=True)
class PlanLine:
    """One patient of the worklist; never holds the BSN."""

    appointment_id: str  # the patient's first booked appointment (else the first)
    patient_local_id: str
    decision: str  # "eligible" or "skipped"
    reason: str | None
    detail: str | None  # for duplicate: the schedule that queries the patient

    def as_json(self) -> dict[str, str | None]:
        out = {"appointment_id": self.appointment_id, "decision": self.decision}
        out["reason"] = self.reason  # type: ignore[assignment]
        if self.detail is not None:
            out["see"] = self.detail
        return out  # type: ignore[return-value]


def _line(planned: PlannedPatient, decision: Decision) -> PlanLine:
    booked = [a for a in planned.appointments if a.status is AppointmentStatus.BOOKED]
    first = (booked or list(planned.appointments))[0]
    if isinstance(decision, Eligible):
        return PlanLine(first.id, planned.patient.local_id, "eligible", None, None)
    return PlanLine(
        first.id, planned.patient.local_id, "skipped", decision.reason.value, decision.detail
    )


@dataclass(frozen=True, slots=True)
class DayInputs:
    """How to decide: the policy default, the clock, and the store's answers."""

    now: dt.datetime
    fresh_default: dt.timedelta
    # last fetch of each of these patients (absent: never), in one batched lookup
    last_fetched_at_many: Callable[[Iterable[Bsn]], Mapping[str, dt.datetime]]
    mandate_for: Callable[[Schedule], Mandate | None]
    appointments_for: Callable[[Schedule], list[Appointment]]


def _decisions(
    schedule: Schedule,
    clinic_day: dt.date,
    inputs: DayInputs,
    earlier: dict[str, str],
) -> list[tuple[PlannedPatient, Decision]]:
    policy = EligibilityPolicy(fresh_for=schedule.fresh_for(inputs.fresh_default))
    mandate = inputs.mandate_for(schedule)
    out: list[tuple[PlannedPatient, Decision]] = []
    day = plan(inputs.appointments_for(schedule), schedule=schedule, clinic_day=clinic_day)
    last = inputs.last_fetched_at_many(p.patient.bsn for p in day if p.patient.bsn is not None)
    for planned in day:
        bsn = planned.patient.bsn
        decision = decide(
            planned.patient,
            planned.appointments,
            schedule=schedule,
            policy=policy,
            now=inputs.now,
            last_fetched_at=last.get(bsn.value) if bsn is not None else None,
            mandate=mandate,
            earlier=earlier,
            key=planned.key,
        )
        out.append((planned, decision))
    return out


def decide_day(
    schedule: Schedule,
    clinic_day: dt.date,
    inputs: DayInputs,
    others: Sequence[Schedule] = (),
) -> list[PlanLine]:
    """The worklist of `schedule` for `clinic_day`. `others`: the hospital's other
    schedules; a patient that an earlier one of the same night queries is `duplicate`."""
    earlier: dict[str, str] = {}
    same_night = [s for s in others if s.id != schedule.id and s.days_ahead == schedule.days_ahead]
    for current in night_order([*same_night, schedule], clinic_day):
        if current.id == schedule.id:
            break
        for planned, decision in _decisions(current, clinic_day, inputs, earlier):
            if isinstance(decision, Eligible):
                earlier.setdefault(planned.key, current.id)
    return [_line(p, d) for p, d in _decisions(schedule, clinic_day, inputs, earlier)]


def day_appointments(
    schedule: Schedule,
    clinic_day: dt.date,
    *,
    book_day: Callable[[Iterable[str], dt.date], list[Appointment]],
    file: Path | None = None,
    fmt: str | None = None,
    source_options: Mapping[str, object] | None = None,
) -> list[Appointment]:
    """A run's clinic day: from `file` when given (row errors logged, place only), else
    from the appointment book. The run use case applies the objection register."""
    if file is None:
        return book_day(schedule.clinics, clinic_day)
    from prefetch.sources.formats import guess_format, read_path

    options: dict[str, Any] = dict(source_options or {})
    chosen = fmt or guess_format(file) or "csv"
    if chosen == "csv" and schedule.columns and "columns" not in options:
        options["columns"] = dict(schedule.columns)
    if chosen == "csv":  # a row at a time: a big day is not also held as bytes and text
        from prefetch.sources.csv_source import stream_csv

        return list(stream_csv(file, options.get("columns")))
    result = read_path(file, chosen, **options)
    for error in result.errors:
        log.warning("intake_row_skipped", file=error.file, where=error.where, reason=error.message)
    return list(result.appointments)
