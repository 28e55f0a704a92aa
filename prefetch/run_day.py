"""The run use case: one schedule's clinic day, from its appointments to an answer (or an
honest reason) per patient.

`run_schedule_day(services, request)` is the only way a run starts: `prefetch run`,
`prefetch demo`, the daemon and the desk's "re-fetch now" all call it. It checks the
mandate before anything is planned or sent, plans the day (or finds the run to resume),
and works the run's queue through the rate limiter until every item is final or the run
must stop. The collaborators come in `RunServices`, built by the composition root.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from prefetch.clock import SYSTEM_CLOCK
from prefetch.domain.people import Appointment, Mandate
from prefetch.domain.run import (
    EngineConfig,
    ItemState,
    Progress,
    RunKind,
    RunReport,
    RunSummary,
    run_deadline,
    run_lock_name,
)
from prefetch.domain.schedule import Schedule
from prefetch.engine import Prefetcher
from prefetch.errors import AlreadyRunningError
from prefetch.ports import (
    Clock,
    DispenseStore,
    LeaderLock,
    LspGateway,
    MandateStore,
    RateLimiter,
    RunStore,
)
from prefetch.security.mandates import check_mandate
from prefetch.security.trust import TrustStore
from prefetch.worklist import refusing_of

LOCK_POLL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class RunServices:
    """Everything a run needs, wired once by `prefetch.composition.make_run_services`."""

    runs: RunStore
    dispenses: DispenseStore
    mandates: MandateStore
    gateway: LspGateway
    limiter: RateLimiter
    trust: TrustStore  # UZI trust for the mandate's signature
    config: EngineConfig
    clock: Clock = SYSTEM_CLOCK
    locks: LeaderLock | None = None  # one scheduled run per schedule and day at a time
    # the local objection register (BSNs -> those with an objection); every run applies it,
    # whichever path brought the appointments (file, book, daemon export, desk re-fetch)
    refusing: Callable[[Iterable[str]], set[str]] | None = None


@dataclass(frozen=True, slots=True)
class RunRequest:
    """Which run: a schedule's clinic day with its appointments.

    A scheduled run exists once per schedule and day (asking again resumes it); a manual
    run is new each time (`fresh_for=dt.timedelta(0)` re-queries patients fetched lately).
    """

    schedule: Schedule
    clinic_day: dt.date
    appointments: Sequence[Appointment]
    kind: RunKind = RunKind.SCHEDULED
    fresh_for: dt.timedelta | None = None  # None: the schedule's (or the settings') value
    progress: Callable[[Progress], None] | None = None
    on_stage: Callable[[str], None] | None = None
    wait_for_lock: bool = False  # another process runs it: wait instead of refusing


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: str
    created: bool  # False: an existing run was resumed (or found finished)
    planned: int  # patients in the run
    to_query: int  # patients not skipped
    report: RunReport

    @property
    def summary(self) -> RunSummary:
        return self.report.summary

    @property
    def stopped(self) -> str | None:
        return self.report.stopped

    @property
    def status(self) -> str:
        """`complete` (every item definitive, none failed), `failures` (every item
        definitive, some failed), `incomplete` (items left open) or `stopped`."""
        if self.report.stopped:
            return "stopped"
        if self.summary.open:
            return "incomplete"
        if self.summary.count(ItemState.FAILED):
            return "failures"
        return "complete"


def run_schedule_day(services: RunServices, request: RunRequest) -> RunResult:
    """Check the mandate, plan (or resume) the run and work it until it is done.

    Raises `MandateError` (nothing planned, nothing sent) when no valid mandate covers the
    schedule, and `AlreadyRunningError` when another process runs this schedule's day
    (unless `wait_for_lock`); other `StopError`s stop the run and are reported in
    `RunResult.stopped`. A run still working when its window closes ends `incomplete`.
    """
    schedule, config = request.schedule, services.config
    stage = request.on_stage or (lambda _message: None)
    mandate = services.mandates.get(schedule.mandate_id) if schedule.mandate_id else None
    check_mandate(
        mandate,
        schedule_id=schedule.id,
        mandatee=config.system_uzi,
        ura=config.hospital_ura,
        trust=services.trust,
        now=services.clock.now(),
    )
    lock = run_lock_name(schedule.id, request.clinic_day)
    locks = services.locks if request.kind is RunKind.SCHEDULED else None
    if locks is not None:
        _acquire(locks, lock, services.clock, wait=request.wait_for_lock, on_stage=stage)
    try:
        return _run(services, request, mandate, exclusive=locks is not None)
    finally:
        if locks is not None:
            locks.release(lock)


def _acquire(
    locks: LeaderLock, name: str, clock: Clock, *, wait: bool, on_stage: Callable[[str], None]
) -> None:
    while not locks.try_acquire(name):
        holder = locks.holder(name)
        who = str(holder) if holder is not None else "another process"
        if not wait:
            raise AlreadyRunningError(f"already running: {who} holds {name}", holder=who)
        on_stage(f"waiting for {who} to finish {name}")
        clock.sleep(LOCK_POLL_SECONDS)


def _run(
    services: RunServices, request: RunRequest, mandate: Mandate | None, *, exclusive: bool
) -> RunResult:
    schedule, config = request.schedule, services.config
    stage = request.on_stage or (lambda _message: None)
    prefetcher = Prefetcher(
        runs=services.runs,
        dispenses=services.dispenses,
        gateway=services.gateway,
        limiter=services.limiter,
        config=config,
        clock=services.clock,
    )
    appointments = (
        refusing_of(request.appointments, services.refusing)
        if services.refusing is not None
        else request.appointments
    )
    prepared = prefetcher.prepare(
        schedule,
        request.clinic_day,
        appointments,
        mandate=mandate,
        kind=request.kind.value,
        fresh_for=request.fresh_for,
    )
    stage(f"{prepared.to_query} of {prepared.planned} patients to query ({request.kind.value})")
    report = prefetcher.execute(
        prepared.run_id,
        schedule,
        mandate,
        clinic_day=request.clinic_day,
        progress=request.progress,
        deadline=run_deadline(
            schedule.run_at, schedule.run_until, request.clinic_day, schedule.days_ahead
        ),
        exclusive=exclusive,
    )
    return RunResult(
        run_id=prepared.run_id,
        created=prepared.created,
        planned=prepared.planned,
        to_query=prepared.to_query,
        report=report,
    )
