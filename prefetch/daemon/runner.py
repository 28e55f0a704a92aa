"""How the daemon runs a clinic day: the run use case with the daemon's collaborators.

`DaemonRunner` gives `core.Daemon` its `Runner`: the leader's `run_day` and a follower's
`join` are the same call of the run use case (planning an existing run is a resume, so a
follower only works its queue). One limiter is shared by every run of the process; it is
wrapped so that `stop()` lets queries in flight finish and sends nothing new.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from prefetch.daemon.core import RunResult
from prefetch.domain.people import Appointment
from prefetch.domain.schedule import Schedule
from prefetch.engine import Prefetcher
from prefetch.errors import ConfigError, StopError
from prefetch.ports import LspGateway
from prefetch.run_model import EngineConfig
from prefetch.security.mandates import check_mandate
from prefetch.security.trust import TrustStore
from prefetch.sources.csv_source import read_appointments_csv
from prefetch.store.dispenses import DispenseRepository
from prefetch.store.mandates import MandateRepository
from prefetch.store.records import RunRecord, RunState
from prefetch.store.runs import RunRepository
from prefetch.throttle import Clock, Throttle, ThrottleConfig

AppointmentsFor = Callable[[Schedule, dt.date], Sequence[Appointment]]
SHUTDOWN = "daemon shutting down"


class StoppableThrottle(Throttle):
    """The process's throttle; after `stop()` no slot is handed out (nothing new is sent,
    queries already in flight finish and are recorded)."""

    def __init__(self, config: ThrottleConfig, clock: Clock | None = None) -> None:
        super().__init__(config, clock)
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    @contextmanager
    def slot(self) -> Iterator[None]:
        if self._stop_event.is_set():
            raise StopError(SHUTDOWN)
        with super().slot():
            yield


def exports_reader(directory: Path) -> AppointmentsFor:
    """Appointments of a clinic day from `<directory>/<YYYY-MM-DD>.csv` (every clinic; the
    schedule keeps its own)."""

    def read(schedule: Schedule, clinic_day: dt.date) -> Sequence[Appointment]:
        path = directory / f"{clinic_day.isoformat()}.csv"
        if not path.is_file():
            raise ConfigError(
                "no appointment export for the clinic day",
                schedule=schedule.id,
                file=str(path),
                fix="export the clinic day's appointments to that file",
            )
        return read_appointments_csv(path)

    return read


class DaemonRunner:
    def __init__(
        self,
        *,
        runs: RunRepository,
        dispenses: DispenseRepository,
        mandates: MandateRepository,
        gateway: LspGateway,
        throttle: StoppableThrottle,
        config: EngineConfig,
        trust: TrustStore,
        appointments: AppointmentsFor,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.runs = runs
        self.dispenses = dispenses
        self.mandates = mandates
        self.gateway = gateway
        self.throttle = throttle
        self.config = config
        self.trust = trust
        self.appointments = appointments
        self.clock = clock

    def run_day(self, schedule: Schedule, clinic_day: dt.date) -> RunResult:
        return self._run(schedule, clinic_day)

    def join(self, run: RunRecord, schedule: Schedule) -> RunResult:
        return self._run(schedule, run.clinic_day)

    def stop(self) -> None:
        self.throttle.stop()

    def _run(self, schedule: Schedule, clinic_day: dt.date) -> RunResult:
        appointments = self.appointments(schedule, clinic_day)
        mandate = self.mandates.get(schedule.mandate_id) if schedule.mandate_id else None
        check_mandate(
            mandate,
            schedule_id=schedule.id,
            mandatee=self.config.system_uzi,
            ura=self.config.hospital_ura,
            trust=self.trust,
            now=self.clock(),
        )
        prefetcher = Prefetcher(
            runs=self.runs,
            dispenses=self.dispenses,
            gateway=self.gateway,
            throttle=self.throttle,
            config=self.config,
            clock=self.clock,
        )
        prepared = prefetcher.prepare(schedule, clinic_day, appointments, mandate=mandate)
        report = prefetcher.execute(prepared.run_id, schedule, mandate, clinic_day=clinic_day)
        record = self.runs.get_run(prepared.run_id)
        return RunResult(
            run_id=prepared.run_id,
            finished=record is not None and record.state is RunState.FINISHED,
            stopped=report.stopped,
            queried=report.queried,
        )
