"""Preparing a run: plan the clinic day, decide each patient's eligibility and write the
run with one item per patient (skipped ones with their reason) in one transaction.
Preparing the same run again is a resume: it adds patients that came since, marks
cancellations, and changes nothing else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from prefetch.domain.eligibility import EligibilityPolicy, Eligible, decide
from prefetch.domain.outcome import SkipReason
from prefetch.domain.people import Appointment, AppointmentStatus, Mandate
from prefetch.domain.planning import plan
from prefetch.domain.run import EngineConfig, NewItem, PreparedRun, make_run_id
from prefetch.domain.schedule import Schedule
from prefetch.logging import get_logger
from prefetch.ports import Clock, DispenseStore, RunStore

log = get_logger("prefetch.engine")
__all__ = ["RunPlanner"]


class RunPlanner:
    """Writes a run's items; reads the store only for what the plan needs."""

    def __init__(
        self, runs: RunStore, dispenses: DispenseStore, config: EngineConfig, clock: Clock
    ) -> None:
        self.runs = runs
        self.dispenses = dispenses
        self.config = config
        self.clock = clock

    def prepare(
        self,
        schedule: Schedule,
        clinic_day: dt.date,
        appointments: Sequence[Appointment],
        *,
        mandate: Mandate | None,
        kind: str = "scheduled",
        run_id: str | None = None,
        fresh_for: dt.timedelta | None = None,
    ) -> PreparedRun:
        """Plan the clinic day and write the run (or find it, for a resume)."""
        now = self.clock.now()
        existing = (
            self.runs.find_run(schedule.id, clinic_day, kind) if kind == "scheduled" else None
        )
        known = (
            {i.patient_local_id for i in self.runs.items(existing.id)}
            if existing is not None
            else set()
        )
        # One query per patient per night: a patient another schedule's run of this clinic
        # day already queries is `duplicate` here (unless this run is forced, fresh_for set).
        earlier = (
            {
                f"bsn:{bsn}": other
                for bsn, other in self.runs.queried_elsewhere(
                    clinic_day,
                    schedule.id,
                    (a.patient.bsn.value for a in appointments if a.patient.bsn is not None),
                ).items()
            }
            if fresh_for is None
            else {}
        )
        items = self._items(
            schedule, clinic_day, appointments, mandate, now, fresh_for, known, earlier
        )
        if existing is not None:
            added, withdrawn = self.runs.extend_run(existing.id, items, now) if items else (0, 0)
            if added or withdrawn:
                log.info("run_extended", run_id=existing.id, added=added, withdrawn=withdrawn)
            summary = self.runs.summary(existing.id)
            skipped = summary.by_state.get("skipped", 0)
            return PreparedRun(existing.id, False, summary.total, summary.total - skipped)
        rid = run_id or make_run_id(schedule.id, clinic_day, kind)
        created = self.runs.create_run(rid, schedule.id, clinic_day, kind, now, items)
        to_query = sum(1 for i in items if i.skip_reason is None)
        log.info(
            "run_planned",
            run_id=rid,
            created=created,
            patients=len(items),
            to_query=to_query,
            skipped=len(items) - to_query,
        )
        return PreparedRun(rid, created, len(items), to_query)

    def _items(  # noqa: PLR0917 - the parts of one plan
        self,
        schedule: Schedule,
        clinic_day: dt.date,
        appointments: Sequence[Appointment],
        mandate: Mandate | None,
        now: dt.datetime,
        fresh_for: dt.timedelta | None,
        known: set[str],
        earlier: dict[str, str],
    ) -> list[NewItem]:
        """One item per planned patient, skipped ones with their reason. Patients already
        in the run (`known`) are only checked for a cancellation since (no store reads)."""
        policy = EligibilityPolicy(
            fresh_for=schedule.fresh_for(self.config.fresh_for) if fresh_for is None else fresh_for
        )
        items: list[NewItem] = []
        for planned in plan(appointments, schedule=schedule, clinic_day=clinic_day):
            patient = planned.patient
            if patient.local_id in known:
                if all(a.status is AppointmentStatus.CANCELLED for a in planned.appointments):
                    items.append(
                        NewItem(
                            patient.local_id,
                            patient.bsn.value if patient.bsn is not None else None,
                            planned.clinics,
                            SkipReason.CANCELLED.value,
                        )
                    )
                continue
            last = self.dispenses.last_fetched_at(patient.bsn) if patient.bsn is not None else None
            decision = decide(
                patient,
                planned.appointments,
                schedule=schedule,
                policy=policy,
                now=now,
                last_fetched_at=last,
                mandate=mandate,
                earlier=earlier,
                key=planned.key,
            )
            items.append(
                NewItem(
                    patient_local_id=patient.local_id,
                    bsn=patient.bsn.value if patient.bsn is not None else None,
                    clinics=planned.clinics,
                    skip_reason=None if isinstance(decision, Eligible) else decision.reason.value,
                )
            )
        return items
