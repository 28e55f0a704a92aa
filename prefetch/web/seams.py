"""Where the desk meets the rest of the product: one function per neighbour.

Each function here stands in for a part that other work delivers; the desk calls only
these, so switching to the delivered part is a change in this one file:

- SEAM appointment book (intake issue): `CsvDay` reads the day's appointments from the
  appointment CSV of the day (`appointments-<day>.csv` in the data directory).
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from prefetch.domain.bsn import Bsn
from prefetch.domain.localtime import AMSTERDAM
from prefetch.domain.people import Appointment, Mandate, Patient
from prefetch.domain.run import RunKind
from prefetch.domain.schedule import Schedule
from prefetch.errors import MandateError, PrefetchError
from prefetch.run_day import RunRequest, RunResult
from prefetch.store.audit import AuditLog
from prefetch.store.desk_users import DeskUser
from prefetch.store.objections import ConsentRegister
from prefetch.store.records import AuditAction, AuditEvent
from prefetch.store.tables import RunItemRow, RunRow
from prefetch.web.worklist import Slot

SOURCE_SYSTEM = "prefetch/desk"
AppointmentSlots = Callable[[dt.date], Mapping[str, Sequence[Slot]]]


# ---------------------------------------------------------------- appointment book
class CsvDay:
    """SEAM (appointment book): a day's appointments from the EPD's CSV export of the day,
    `<data_dir>/appointments-<day>.csv` (the demo's) or `<exports_dir>/<day>.csv` (the
    daemon's), read again only when the file changes."""

    def __init__(self, data_dir: Path, exports_dir: Path | None = None) -> None:
        self.data_dir = data_dir
        self.exports_dir = exports_dir
        self._cache: dict[dt.date, tuple[float, list[Appointment]]] = {}

    def _path(self, day: dt.date) -> Path | None:
        candidates = [self.data_dir / f"appointments-{day.isoformat()}.csv"]
        if self.exports_dir is not None:
            candidates.append(self.exports_dir / f"{day.isoformat()}.csv")
        return next((c for c in candidates if c.is_file()), None)

    def appointments(self, day: dt.date) -> list[Appointment]:
        from prefetch.sources.csv_source import read_appointments_csv

        path = self._path(day)
        if path is None:
            return []
        try:
            mtime = path.stat().st_mtime
        except OSError:
            return []
        cached = self._cache.get(day)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        try:
            found = read_appointments_csv(path)
        except PrefetchError:
            found = []
        self._cache[day] = (mtime, found)
        return found

    def slots(self, day: dt.date) -> Mapping[str, Sequence[Slot]]:
        out: dict[str, list[Slot]] = {}
        for a in self.appointments(day):
            out.setdefault(a.patient.local_id, []).append(Slot(a.start, a.clinic))
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
