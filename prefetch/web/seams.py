"""Where the desk meets the rest of the product: one function per neighbour.

Each function here stands in for a part that other work delivers; the desk calls only
these, so switching to the delivered part is a change in this one file:

- appointment book: `BookDay` reads the day's appointments from the appointment book
  (`prefetch.store.appointment_book`, filled by `prefetch intake`), as the runs do.
- SEAM audit (privacy issue): `record_access` writes a page view or an action through the
  store's audit insert; `audit_for_patient` reads the patient's rows.
- consent: `record_objection` / `objection_recorded` use the objection register
  (`prefetch.store.objections.ConsentRegister`), which the nightly run's eligibility reads.
- run use case: `Refetcher` runs the schedule's day for one patient through
  `run_schedule_day` (a manual run, fresh_for 0, the mandate checked).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from prefetch.domain.bsn import Bsn
from prefetch.domain.localtime import AMSTERDAM
from prefetch.domain.people import Appointment, AppointmentStatus, Mandate, Patient
from prefetch.domain.run import RunKind
from prefetch.domain.schedule import Schedule
from prefetch.errors import MandateError, PrefetchError
from prefetch.logging import get_logger
from prefetch.run_day import RunRequest, RunResult
from prefetch.store.audit import AuditLog
from prefetch.store.desk_users import DeskUser
from prefetch.store.objections import ConsentRegister
from prefetch.store.records import AuditAction, AuditEvent
from prefetch.store.tables import RunItemRow, RunRow
from prefetch.web.worklist import Slot

SOURCE_SYSTEM = "prefetch/desk"
log = get_logger("prefetch.web")
AppointmentSlots = Callable[[dt.date], Mapping[str, Sequence[Slot]]]


# ---------------------------------------------------------------- appointment book
BookDayReader = Callable[[Iterable[str], dt.date], list[Appointment]]


class BookDay:
    """A clinic day's appointments from the appointment book (filled by `prefetch intake
    load|listen`), read as the runs read it: `day_appointments` for the clinics of the
    hospital's schedules. Cancelled appointments stay in the book; a patient's time on
    the worklist is that of a booked appointment, a cancelled one's only when the patient
    has nothing booked that day (the run's skip reason says why)."""

    def __init__(self, book_day: BookDayReader, schedules: Callable[[], Sequence[Schedule]]):
        self.book_day = book_day
        self.schedules = schedules

    def appointments(self, day: dt.date) -> list[Appointment]:
        from prefetch.worklist import day_appointments

        try:
            schedules = list(self.schedules())
        except PrefetchError as exc:  # a broken schedule file: no times, the page still shows
            log.warning("desk_schedules_unreadable", reason=exc.message)
            return []
        seen: dict[tuple[str, str, str, dt.datetime], Appointment] = {}
        for schedule in schedules:
            for a in day_appointments(schedule, day, book_day=self.book_day):
                seen.setdefault((a.id, a.patient.local_id, a.clinic, a.start), a)
        return sorted(seen.values(), key=lambda a: (a.start, a.id))

    def slots(self, day: dt.date) -> Mapping[str, Sequence[Slot]]:
        by_patient: dict[str, list[Appointment]] = {}
        for a in self.appointments(day):
            by_patient.setdefault(a.patient.local_id, []).append(a)
        out: dict[str, list[Slot]] = {}
        for patient, own in by_patient.items():
            booked = [a for a in own if a.status is not AppointmentStatus.CANCELLED]
            out[patient] = [Slot(a.start, a.clinic) for a in booked or own]
        return out

    def for_patient(self, patient_local_id: str, day: dt.date) -> list[Appointment]:
        return [a for a in self.appointments(day) if a.patient.local_id == patient_local_id]


def no_slots(_day: dt.date) -> Mapping[str, Sequence[Slot]]:
    return {}


# ---------------------------------------------------------------- audit
@dataclass(frozen=True, slots=True)
class Actor:
    """The signed-in user as the audit log records them, with their mandate."""

    user: DeskUser
    mandate: Mandate | None
    workstation: str | None

    @property
    def user_id(self) -> str:
        return f"desk:{self.user.username}"

    def event(
        self,
        event_type: str,
        action: AuditAction,
        *,
        bsn: str | None,
        detail: Mapping[str, str | int | None],
        outcome: str,
        now: dt.datetime,
    ) -> AuditEvent:
        return AuditEvent(
            event_id=uuid.uuid4().hex,
            event_type=event_type,
            action=action,
            occurred_at=now,
            user_id=self.user_id,
            user_role=self.user.role.value,
            responsible_user_id=self.mandate.mandating.uzi_number if self.mandate else None,
            patient_bsn=bsn,
            object_detail=dict(detail),
            authorisation_basis=self.mandate.id if self.mandate else None,
            source_system=SOURCE_SYSTEM,
            source_workstation=self.workstation,
            outcome=outcome,
        )


def record_access(engine: Engine, event: AuditEvent) -> None:
    """SEAM (audit): append one desk event (page view, re-fetch, objection, export)."""
    AuditLog(engine).append(event)


def audit_for_patient(engine: Engine, bsn: str) -> list[AuditEvent]:
    """SEAM (audit report): every audit row of the patient, oldest first."""
    return AuditLog(engine).for_patient(bsn)


# ---------------------------------------------------------------- consent
DESK_OBJECTION = "vastgelegd aan de balie"


def record_objection(engine: Engine, actor: Actor, bsn: str, *, now: dt.datetime) -> None:
    """The patient objects to LSP queries from now on: into the objection register that the
    nightly run's eligibility reads (its own audit row), plus the desk's action row with the
    signed-in user's role and mandate."""
    ConsentRegister(engine).refuse(bsn, reason=DESK_OBJECTION, user=actor.user_id, now=now)
    record_access(
        engine,
        actor.event(
            "consent_refused",
            AuditAction.CREATE,
            bsn=bsn,
            detail={"page": "patient", "via": "desk"},
            outcome="success",
            now=now,
        ),
    )


def objection_recorded(engine: Engine, bsn: str) -> bool:
    """Is an objection recorded for this patient in the register?"""
    return bool(ConsentRegister(engine).refusing([bsn]))


# ---------------------------------------------------------------- re-fetch
@dataclass(frozen=True, slots=True)
class RefetchResult:
    ok: bool
    message: str  # Dutch, for the page
    run_id: str | None = None


def _stand_in(item: RunItemRow, run: RunRow, bsn: str) -> Appointment:
    """The patient's appointment when the source no longer has it: as the run knew it."""
    noon = dt.datetime.combine(run.clinic_day, dt.time(12, 0), tzinfo=AMSTERDAM)
    return Appointment(
        id=f"refetch-{item.id}",
        patient=Patient(item.patient_local_id, Bsn(bsn), bsn_verified=True),
        clinic=item.clinics[0] if item.clinics else "?",
        start=noon,
        appointment_type="REFETCH",
    )


@dataclass(frozen=True, slots=True)
class Refetcher:
    """SEAM (run use case): re-fetch one patient now, as a manual run of the schedule's day
    with only this patient's appointments, through `run_schedule_day` (mandate checked)."""

    schedules: Callable[[str], Schedule | None]
    appointments: Callable[[str, dt.date], Sequence[Appointment]]
    run: Callable[[RunRequest], RunResult]

    def __call__(self, item: RunItemRow, run: RunRow) -> RefetchResult:
        if item.bsn is None:
            return RefetchResult(False, "Opnieuw ophalen kan niet: geen BSN bekend.")
        schedule = self.schedules(run.schedule_id)
        if schedule is None:
            return RefetchResult(
                False, f"Opnieuw ophalen kan niet: schema '{run.schedule_id}' is niet bekend."
            )
        own = list(self.appointments(item.patient_local_id, run.clinic_day))
        request = RunRequest(
            schedule=schedule,
            clinic_day=run.clinic_day,
            appointments=own or [_stand_in(item, run, item.bsn)],
            kind=RunKind.MANUAL,
            fresh_for=dt.timedelta(0),
        )
        try:
            result = self.run(request)
        except MandateError:
            return RefetchResult(False, "Opnieuw ophalen kan niet: geen geldig mandaat.")
        except PrefetchError as exc:
            return RefetchResult(False, f"Opnieuw ophalen mislukt: {exc.message}")
        except OSError as exc:  # e.g. the UZI key file cannot be read
            return RefetchResult(
                False, f"Opnieuw ophalen mislukt: {exc.strerror or type(exc).__name__}"
            )
        if result.stopped:
            return RefetchResult(
                False, "Opnieuw ophalen mislukt: de run is gestopt.", result.run_id
            )
        if result.to_query == 0:
            return RefetchResult(False, "Niet opnieuw opgehaald: de patiënt werd overgeslagen.")
        if result.summary.by_state.get("failed", 0):
            return RefetchResult(
                False,
                "Opnieuw ophalen mislukt: geen bruikbaar antwoord van het LSP. "
                "Probeer het later nog eens.",
                result.run_id,
            )
        return RefetchResult(True, "Opnieuw opgehaald.", result.run_id)
