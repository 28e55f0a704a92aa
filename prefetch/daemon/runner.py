"""How the daemon runs a clinic day: the run use case with the daemon's collaborators.

`DaemonRunner` gives `core.Daemon` its `Runner`: the leader's `run_day` and a follower's
`join` are the same call of the run use case (planning an existing run is a resume, so a
follower only works its queue). The clinic day's appointments come from the appointment
book (`book_reader`, filled by `prefetch intake`), as for `prefetch plan` and
`prefetch run` without `--appointments`; a resume reads the book again, so appointments
booked or cancelled since are added or withdrawn. One limiter is shared by every run of
the process; it is wrapped so that `stop()` lets queries in flight finish and sends
nothing new.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager

from prefetch.daemon.core import RunResult
from prefetch.domain.people import Appointment
from prefetch.domain.run import RunKind, RunRecord, RunState
from prefetch.domain.schedule import Schedule
from prefetch.errors import StopError
from prefetch.ports import Breaker, RateLimiter, SendSlot
from prefetch.run_day import RunRequest, RunServices, run_schedule_day
from prefetch.worklist import day_appointments

AppointmentsFor = Callable[[Schedule, dt.date], Sequence[Appointment]]
BookDay = Callable[[Iterable[str], dt.date], list[Appointment]]
SHUTDOWN = "daemon shutting down"


class StoppableLimiter:
    """The process's `RateLimiter`, wrapped: after `stop()` no slot is handed out, so
    nothing new is sent while queries already in flight finish and are recorded."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    @property
    def breaker(self) -> Breaker:
        return _StopAwareBreaker(self._limiter.breaker, self._stop_event)

    @property
    def in_flight(self) -> int:
        return self._limiter.in_flight

    def pause(self, seconds: float) -> None:
        self._limiter.pause(seconds)

    def slot(self) -> AbstractContextManager[None]:
        return self._slot()

    @contextmanager
    def _slot(self) -> Iterator[None]:
        if self._stop_event.is_set():
            raise StopError(SHUTDOWN)
        with self._limiter.slot():
            yield

    def reserve_many(self, count: int, lead: float = 0.0) -> Sequence[SendSlot]:
        if self._stop_event.is_set():
            raise StopError(SHUTDOWN)
        return self._limiter.reserve_many(count, lead)

    @contextmanager
    def reserve(self) -> Iterator[SendSlot]:
        if self._stop_event.is_set():
            raise StopError(SHUTDOWN)
        with self._limiter.reserve() as slot:
            yield slot


class _StopAwareBreaker:
    """The breaker as the engine sees it: after `stop()` asking its state stops the run
    (a worker waiting for work it cannot claim also ends, instead of waiting forever)."""

    def __init__(self, breaker: Breaker, stopping: threading.Event) -> None:
        self._breaker = breaker
        self._stopping = stopping

    @property
    def state(self) -> str:
        if self._stopping.is_set():
            raise StopError(SHUTDOWN)
        return self._breaker.state

    def success(self) -> None:
        self._breaker.success()

    def failure(self) -> None:
        self._breaker.failure()


class NoAppointmentsError(StopError):
    """The book holds no appointment of the schedule's clinics on the clinic day: the run
    is not started (an empty run would count as done), the sweep asks again."""


def book_reader(book_day: BookDay) -> AppointmentsFor:
    """A clinic day's appointments of the schedule's clinics from the appointment book."""

    def read(schedule: Schedule, clinic_day: dt.date) -> Sequence[Appointment]:
        return day_appointments(schedule, clinic_day, book_day=book_day)

    return read


class DaemonRunner:
    def __init__(
        self, services: RunServices, limiter: StoppableLimiter, appointments: AppointmentsFor
    ) -> None:
        self.services = services
        self.limiter = limiter
        self.appointments = appointments

    def run_day(self, schedule: Schedule, clinic_day: dt.date) -> RunResult:
        appointments = self.appointments(schedule, clinic_day)
        known = self.services.runs.find_run(schedule.id, clinic_day, RunKind.SCHEDULED.value)
        if not appointments and known is None:
            raise NoAppointmentsError(
                "no appointments in the book for the clinic day",
                schedule=schedule.id,
                clinic_day=clinic_day.isoformat(),
                clinics=",".join(sorted(schedule.clinics)),
                fix="feed the appointment book (prefetch intake load/listen) before the run",
            )
        return self._run(schedule, clinic_day, appointments)

    def join(self, run: RunRecord, schedule: Schedule) -> RunResult:
        return self._run(schedule, run.clinic_day, self.appointments(schedule, run.clinic_day))

    def stop(self) -> None:
        self.limiter.stop()

    def _run(
        self, schedule: Schedule, clinic_day: dt.date, appointments: Sequence[Appointment]
    ) -> RunResult:
        request = RunRequest(schedule, clinic_day, appointments)
        result = run_schedule_day(self.services, request)
        record = self.services.runs.get_run(result.run_id)
        return RunResult(
            run_id=result.run_id,
            finished=record is not None and record.state is RunState.FINISHED,
            stopped=result.stopped,
            queried=result.report.queried,
            resent=result.report.reclaimed,
        )
