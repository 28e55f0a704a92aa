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
from prefetch.domain.localtime import AMSTERDAM
from prefetch.domain.people import Appointment, Mandate
from prefetch.domain.run import (
    EngineConfig,
    ItemState,
    Progress,
    RunKind,
    RunRecord,
    RunReport,
    RunState,
    RunSummary,
    run_deadline,
    run_lock_name,
)
from prefetch.domain.schedule import Schedule
from prefetch.domain.timing import window_opens
from prefetch.engine import Prefetcher
from prefetch.errors import AlreadyRunningError, StopError
from prefetch.logging import get_logger
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
UNNAMED_RETRIES = 20
WINDOW_POLL_SECONDS = 60.0  # a long wait wakes up now and then (clock changes)
log = get_logger("prefetch.run")


class WindowNotOpenError(StopError):
    """Started before the schedule's window opens, and told not to wait (exit code 2)."""


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
    # the scheduled run of the day already finished: run the day once more, as a new
    # (manual) run under the same lock and window; patients still fresh are skipped
    again: bool = False
    # started before the schedule's window opens: wait for it ("wait") or refuse ("refuse",
    # `WindowNotOpenError`); manual runs (the desk) ignore the window
    before_window: str = "wait"

    @property
    def day_run(self) -> bool:
        """A run of the schedule's day (locked, windowed), not a desk re-fetch."""
        return self.kind is RunKind.SCHEDULED or self.again


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: str
    created: bool  # False: an existing run was resumed (or found finished)
    planned: int  # patients in the run
    to_query: int  # patients not skipped
    report: RunReport
    # the day's scheduled run had finished before this start and the appointments brought
    # nothing new: nothing was run; when it finished
    already_ran: dt.datetime | None = None
    holder: str | None = None  # already_ran, found while this process held the day's lock

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
        if self.already_ran is not None:
            return "already_ran"
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
    schedule, `AlreadyRunningError` when another process runs this schedule's day (unless
    `wait_for_lock`) and `WindowNotOpenError` when the schedule's window has not opened
    yet and `before_window` is "refuse" (else it waits, holding the lock); other
    `StopError`s stop the run and are reported in `RunResult.stopped`. A run still working
    when its window closes ends `incomplete`. A scheduled run that already finished is
    not run again (`RunResult.already_ran`) unless `again`, or unless the appointments
    bring patients it does not have yet (they are added and queried).
    """
    schedule = request.schedule
    mandate = _checked_mandate(services, schedule)
    lock = run_lock_name(schedule.id, request.clinic_day)
    locks = services.locks if request.day_run else None
    stage = request.on_stage or (lambda _message: None)
    if locks is not None:
        try:
            _acquire(locks, lock, services.clock, wait=request.wait_for_lock, on_stage=stage)
        except AlreadyRunningError as exc:
            # held, but the day's run finished already: say that (nothing would run)
            finished = None if request.again else _finished(services, request)
            if finished is None:
                raise
            return _already_ran(services, finished, holder=exc.holder)
    try:
        if request.day_run and _wait_for_window(services.clock, request, stage):
            mandate = _checked_mandate(services, schedule)  # it may have expired meanwhile
        return _run(services, request, mandate, exclusive=locks is not None)
    finally:
        if locks is not None:
            locks.release(lock)


def _finished(services: RunServices, request: RunRequest) -> RunRecord | None:
    record = services.runs.find_run(request.schedule.id, request.clinic_day, RunKind.SCHEDULED)
    return record if record is not None and record.state is RunState.FINISHED else None


def _already_ran(services: RunServices, record: RunRecord, *, holder: str | None) -> RunResult:
    log.info("run_already_ran", run_id=record.id)
    summary = services.runs.summary(record.id)
    return RunResult(
        run_id=record.id,
        created=False,
        planned=summary.total,
        to_query=summary.to_query,
        report=RunReport(summary=summary),
        already_ran=record.finished_at or record.created_at,
        holder=holder,
    )


def _checked_mandate(services: RunServices, schedule: Schedule) -> Mandate | None:
    config = services.config
    mandate = services.mandates.get(schedule.mandate_id) if schedule.mandate_id else None
    check_mandate(
        mandate,
        schedule_id=schedule.id,
        mandatee=config.system_uzi,
        ura=config.hospital_ura,
        trust=services.trust,
        now=services.clock.now(),
    )
    return mandate


def _wait_for_window(clock: Clock, request: RunRequest, stage: Callable[[str], None]) -> bool:
    """Before the schedule's window opens ("not before"): wait for it, or refuse.
    True when it waited."""
    opens = window_opens(request.schedule, request.clinic_day)
    if opens is None or clock.now() >= opens:
        return False
    local = opens.astimezone(AMSTERDAM)
    when = f"{local:%Y-%m-%d %H:%M} (Europe/Amsterdam)"
    if request.before_window == "refuse":
        raise WindowNotOpenError(
            f"the window of {request.schedule.id} for {request.clinic_day} opens at {when}"
        )
    stage(f"waiting until the window opens at {when}")
    log.info("run_waits_for_window", schedule=request.schedule.id, opens=opens.isoformat())
    while (left := (opens - clock.now()).total_seconds()) > 0:
        clock.sleep(min(left, WINDOW_POLL_SECONDS))
    return True


def _acquire(
    locks: LeaderLock, name: str, clock: Clock, *, wait: bool, on_stage: Callable[[str], None]
) -> None:
    unnamed = 0  # refused, but nobody holds it when asked: released in between, try again
    while not locks.try_acquire(name):
        holder = locks.holder(name)
        if holder is None and unnamed < UNNAMED_RETRIES:
            unnamed += 1
            clock.sleep(0.05)
            continue
        who = str(holder) if holder is not None else "another process"
        if not wait:
            raise AlreadyRunningError(f"already running: {who} holds {name}", holder=who)
        unnamed = 0
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
    kind = RunKind.MANUAL if request.again else request.kind
    before = (
        services.runs.find_run(schedule.id, request.clinic_day, RunKind.SCHEDULED)
        if kind is RunKind.SCHEDULED
        else None
    )
    prepared = prefetcher.prepare(
        schedule,
        request.clinic_day,
        appointments,
        mandate=mandate,
        kind=kind.value,
        fresh_for=request.fresh_for,
    )
    if before is not None and before.state is RunState.FINISHED:
        now = services.runs.get_run(prepared.run_id)
        if now is not None and now.state is RunState.FINISHED:  # nothing new came
            return _already_ran(services, now, holder=None)
    stage(f"{prepared.to_query} of {prepared.planned} patients to query ({kind.value})")
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
