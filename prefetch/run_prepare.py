"""Preparing a run: plan the clinic day, decide each patient's eligibility and write the
run with one item per patient (skipped ones with their reason) in one transaction.
Preparing the same run again is a resume: it adds patients that came since, marks
cancellations, and changes nothing else.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence

from prefetch.domain.eligibility import EligibilityPolicy, Eligible, decide
from prefetch.domain.outcome import SkipReason
from prefetch.domain.people import Appointment, AppointmentStatus, Mandate
from prefetch.domain.planning import PlannedPatient, plan
from prefetch.domain.run import EngineConfig, NewItem, PreparedRun, make_run_id
from prefetch.domain.schedule import Schedule
from prefetch.logging import get_logger
from prefetch.ports import Clock, DispenseStore, RunStore

log = get_logger("prefetch.engine")
__all__ = ["PLAN_CHUNK", "RunPlanner"]

#: Patients decided per last-fetch lookup and run items per INSERT.
PLAN_CHUNK = 2000


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
        appointments: Iterable[Appointment],
        *,
        mandate: Mandate | None,
        kind: str = "scheduled",
        run_id: str | None = None,
        fresh_for: dt.timedelta | None = None,
    ) -> PreparedRun:
        """Plan the clinic day and write the run (or find it, for a resume).

        `appointments` is read once (a generator will do); the items are decided and
        written in chunks, with one last-fetch lookup per chunk of patients."""
        now = self.clock.now()
        existing = (
            self.runs.find_run(schedule.id, clinic_day, kind) if kind == "scheduled" else None
        )
        known = (
            {i.patient_local_id for i in self.runs.items(existing.id)}
            if existing is not None
            else set()
        )
        planned = plan(appointments, schedule=schedule, clinic_day=clinic_day)
        # One query per patient per night: a patient another schedule's run of this clinic
        # day already queries is `duplicate` here (unless this run is forced, fresh_for set).
        earlier = (
            {
                f"bsn:{bsn}": other
                for bsn, other in self.runs.queried_elsewhere(
                    clinic_day,
                    schedule.id,
                    (p.patient.bsn.value for p in planned if p.patient.bsn is not None),
                ).items()
            }
            if fresh_for is None
            else {}
        )
        counted = _Counted(self._items(schedule, planned, mandate, now, fresh_for, known, earlier))
        if existing is not None:
            added, withdrawn = self.runs.extend_run(existing.id, counted, now)
            if added or withdrawn:
                log.info("run_extended", run_id=existing.id, added=added, withdrawn=withdrawn)
            summary = self.runs.summary(existing.id)
            skipped = summary.by_state.get("skipped", 0)
            return PreparedRun(existing.id, False, summary.total, summary.total - skipped)
        rid = run_id or make_run_id(schedule.id, clinic_day, kind)
        created = self.runs.create_run(rid, schedule.id, clinic_day, kind, now, counted)
        log.info(
            "run_planned",
            run_id=rid,
            created=created,
            patients=counted.total,
            to_query=counted.to_query,
            skipped=counted.total - counted.to_query,
        )
        return PreparedRun(rid, created, counted.total, counted.to_query)

    def _items(  # noqa: PLR0917 - the parts of one plan
        self,
        schedule: Schedule,
        planned: Sequence[PlannedPatient],
        mandate: Mandate | None,
        now: dt.datetime,
        fresh_for: dt.timedelta | None,
        known: set[str],
        earlier: dict[str, str],
    ) -> Iterator[NewItem]:
        """One item per planned patient, skipped ones with their reason, decided a chunk
        at a time. Patients already in the run (`known`) are only checked for a
        cancellation since (no store reads)."""
        policy = EligibilityPolicy(
            fresh_for=schedule.fresh_for(self.config.fresh_for) if fresh_for is None else fresh_for
        )
        for start in range(0, len(planned), PLAN_CHUNK):
            chunk = planned[start : start + PLAN_CHUNK]
            last = self.dispenses.last_fetched_at_many(
                p.patient.bsn
                for p in chunk
                if p.patient.bsn is not None and p.patient.local_id not in known
            )
            for one in chunk:
                patient = one.patient
                bsn = patient.bsn.value if patient.bsn is not None else None
                if patient.local_id in known:
                    if all(a.status is AppointmentStatus.CANCELLED for a in one.appointments):
                        yield NewItem(
                            patient.local_id, bsn, one.clinics, SkipReason.CANCELLED.value
                        )
                    continue
                decision = decide(
                    patient,
                    one.appointments,
                    schedule=schedule,
                    policy=policy,
                    now=now,
                    last_fetched_at=last.get(bsn) if bsn is not None else None,
                    mandate=mandate,
                    earlier=earlier,
                    key=one.key,
                )
                reason = None if isinstance(decision, Eligible) else decision.reason.value
                yield NewItem(patient.local_id, bsn, one.clinics, reason)


class _Counted:
    """The items as they are written, counted on the way (`total`, `to_query`)."""

    def __init__(self, items: Iterable[NewItem]) -> None:
        self._items = items
        self.total = 0
        self.to_query = 0

    def __iter__(self) -> Iterator[NewItem]:
        for item in self._items:
            self.total += 1
            self.to_query += item.skip_reason is None
            yield item
