"""Where the desk meets the rest of the product: one function per neighbour.

Each function here stands in for a part that other work delivers; the desk calls only
these, so switching to the delivered part is a change in this one file:

- SEAM appointment book (intake issue): `csv_slots` reads the day's times from the
  appointment CSV of the day (`appointments-<day>.csv` in the data directory).
- SEAM audit (privacy issue): `record_access` writes a page view or an action through the
  store's audit insert; `audit_for_patient` reads the patient's rows.
- SEAM consent register (intake issue): `record_objection` / `objection_recorded` keep a
  recorded objection as an audit row of type `consent_refused`.
- SEAM run use case (nightly-run issue): `refetch_patient` queues a one-patient manual run
  and works it with the current engine (`Prefetcher.execute`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select

from prefetch.domain.people import Mandate
from prefetch.domain.schedule import Schedule
from prefetch.errors import PrefetchError
from prefetch.store.audit import AuditLog
from prefetch.store.desk_users import DeskUser
from prefetch.store.records import AuditAction, AuditEvent, NewItem
from prefetch.store.runs import RunRepository
from prefetch.store.tables import AuditRow, RunItemRow, RunRow
from prefetch.web.worklist import REFETCH_PREFIX, Slot

SOURCE_SYSTEM = "prefetch/desk"
AppointmentSlots = Callable[[dt.date], Mapping[str, Sequence[Slot]]]


# ---------------------------------------------------------------- appointment book
def csv_slots(directory: Path) -> AppointmentSlots:
    """SEAM (appointment book): the day's appointment times from `appointments-<day>.csv`."""
    from prefetch.sources.csv_source import read_appointments_csv

    def slots(day: dt.date) -> Mapping[str, Sequence[Slot]]:
        path = directory / f"appointments-{day.isoformat()}.csv"
        if not path.is_file():
            return {}
        try:
            appointments = read_appointments_csv(path)
        except PrefetchError:
            return {}
        out: dict[str, list[Slot]] = {}
        for a in appointments:
            out.setdefault(a.patient.local_id, []).append(Slot(a.start, a.clinic))
        return out

    return slots


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
def record_objection(engine: Engine, actor: Actor, bsn: str, *, now: dt.datetime) -> None:
    """SEAM (consent register): the patient objects to LSP queries from now on."""
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
    """SEAM (consent register): has an objection been recorded for this patient?"""
    from prefetch.store._support import Sessions

    with Sessions(engine).read() as session:
        found = session.scalar(
            select(AuditRow.id)
            .where(AuditRow.patient_bsn == bsn, AuditRow.event_type == "consent_refused")
            .limit(1)
        )
    return found is not None


# ---------------------------------------------------------------- re-fetch
@dataclass(frozen=True, slots=True)
class RefetchResult:
    ok: bool
    message: str  # Dutch, for the page
    run_id: str | None = None


#: Runs one run id to the end (schedule, mandate and day given); built by the composition.
RunExecutor = Callable[[str, Schedule, Mandate | None, dt.date], None]
#: Finds what a run needs: the schedule and the mandate of a schedule id (None: unknown).
ScheduleLookup = Callable[[str], tuple[Schedule, Mandate | None] | None]


@dataclass(frozen=True, slots=True)
class Refetcher:
    """SEAM (run use case): re-fetch one patient now, as a one-patient manual run."""

    engine: Engine
    lookup: ScheduleLookup
    execute: RunExecutor
    clock: Callable[[], dt.datetime]

    def __call__(self, item: RunItemRow, run: RunRow) -> RefetchResult:
        if item.bsn is None:
            return RefetchResult(False, "Opnieuw ophalen kan niet: geen BSN bekend.")
        schedule_id = run.schedule_id
        found = self.lookup(schedule_id)
        if found is None:
            return RefetchResult(
                False, f"Opnieuw ophalen kan niet: schema '{schedule_id}' is niet bekend."
            )
        schedule, mandate = found
        now = self.clock()
        if mandate is None or not mandate.covers(schedule.id, now):
            return RefetchResult(False, "Opnieuw ophalen kan niet: geen geldig mandaat.")
        run_id = f"{REFETCH_PREFIX}{uuid.uuid4().hex[:12]}"
        RunRepository(self.engine).create_run(
            run_id,
            schedule.id,
            run.clinic_day,
            "manual",
            now,
            [NewItem(item.patient_local_id, item.bsn, tuple(item.clinics))],
        )
        try:
            self.execute(run_id, schedule, mandate, run.clinic_day)
        except PrefetchError as exc:
            return RefetchResult(False, f"Opnieuw ophalen mislukt: {exc.message}", run_id)
        return RefetchResult(True, "Opnieuw opgehaald.", run_id)
