"""Helpers for the daemon tests: schedules, a fake clock, a runner that writes the ledger."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

from prefetch.daemon.core import RunResult
from prefetch.domain.people import Clinician
from prefetch.domain.run import NewItem, RunRecord
from prefetch.domain.schedule import Schedule
from prefetch.store.runs import RunRepository

SCHEDULE_TOML = """\
id = "{id}"
clinics = ["CARD"]
run_at = "{run_at}"
days_ahead = {days_ahead}
mandate = "mandate-{id}"

[overseer]
uzi = "900000011"
role = "01.010"
name = "Dr. A. de Vries"
"""


def schedule(
    schedule_id: str = "card", run_at: dt.time = dt.time(19, 0), days_ahead: int = 1
) -> Schedule:
    return Schedule(
        id=schedule_id,
        clinics=frozenset({"CARD"}),
        appointment_types=frozenset(),
        excluded_appointment_types=frozenset(),
        overseer=Clinician("900000011", "01.010", "Dr. A. de Vries"),
        mandate_id=f"mandate-{schedule_id}",
        run_at=run_at,
        days_ahead=days_ahead,
    )


def write_schedule(
    directory: Path, schedule_id: str, run_at: str = "19:00", days_ahead: int = 1
) -> Path:
    path = directory / f"{schedule_id}.toml"
    path.write_text(
        SCHEDULE_TOML.format(id=schedule_id, run_at=run_at, days_ahead=days_ahead), encoding="utf-8"
    )
    return path


class FakeClock:
    def __init__(self, start: dt.datetime) -> None:
        self.now = start.astimezone(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def set(self, moment: dt.datetime) -> None:
        self.now = moment.astimezone(dt.UTC)


class LedgerRunner:
    """A `Runner` that does what a run does to the ledger (create, finish), nothing else."""

    def __init__(self, runs: RunRepository, clock: FakeClock) -> None:
        self.runs = runs
        self.clock = clock
        self.days: list[tuple[str, dt.date]] = []
        self.joined: list[str] = []
        self.stopped = threading.Event()

    def run_day(self, schedule: Schedule, clinic_day: dt.date) -> RunResult:
        self.days.append((schedule.id, clinic_day))
        run_id = f"{schedule.id}:{clinic_day.isoformat()}"
        now = self.clock()
        self.runs.create_run(
            run_id,
            schedule.id,
            clinic_day,
            "scheduled",
            now,
            [NewItem("p1", "999990019", ("CARD",))],
        )
        self.runs.start_run(run_id, now)
        self.runs.finish_run(run_id, now)
        return RunResult(run_id, finished=True, queried=1)

    def join(self, run: RunRecord, schedule: Schedule) -> RunResult:
        self.joined.append(run.id)
        return RunResult(run.id, finished=False)

    def stop(self) -> None:
        self.stopped.set()


class FlagLock:
    """A `LeaderLock` a test hands out and takes away."""

    def __init__(self, available: bool = True) -> None:
        self.available = available
        self.held = False

    def try_acquire(self) -> bool:
        if self.available:
            self.held = True
        return self.held

    def still_held(self) -> bool:
        self.held = self.held and self.available
        return self.held

    def holder(self) -> str | None:
        return "prefetch-daemon other:1" if not self.held else "me"

    def release(self) -> None:
        self.held = False
