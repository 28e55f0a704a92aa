"""The daemon's decisions: who leads, which runs are due, which runs to help with.

`Daemon` holds no scheduler and no threads of its own: APScheduler (`daemon.service`)
calls `fire`, `sweep`, `poll_leadership` and `join_running` on time, tests call them with
a fake clock. The run ledger (the `runs` table) is the only truth about what has run:

- the leader runs a schedule's clinic day when the schedule fires, and on each sweep any
  day that fired (also while every daemon was down) and has not begun yet, unless the
  ledger already has a finished or aborted run for it;
- every daemon, leader or follower, joins runs the ledger shows `running` (their items are
  claimed one by one, so several daemons share one run without querying anyone twice).
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from prefetch.daemon.schedules import ScheduleBook
from prefetch.daemon.timing import clinic_day_for, due_days, latest_fire
from prefetch.domain.run import RunRecord, RunState
from prefetch.domain.schedule import Schedule
from prefetch.errors import PrefetchError
from prefetch.leader import Leadership
from prefetch.logging import get_logger

log = get_logger("prefetch.daemon")

_ENDED = (RunState.FINISHED, RunState.ABORTED)


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one execution of a run did (from this daemon's point of view)."""

    run_id: str
    finished: bool  # the run is final in the ledger
    stopped: str | None = None  # why this execution stopped early
    queried: int = 0
    resent: int = 0  # items in flight in a process that stopped, taken back (asked again)


class Runner(Protocol):
    """Runs the run use case. Contract: `run_day` plans and executes a schedule's clinic
    day (resuming an existing run); `join` works an existing running run's items; both
    return when no work is left for this process or `stop()` was called (queries in flight
    finish and are recorded first). Product errors are raised as `PrefetchError`."""

    def run_day(self, schedule: Schedule, clinic_day: dt.date) -> RunResult: ...
    def join(self, run: RunRecord, schedule: Schedule) -> RunResult: ...
    def stop(self) -> None: ...


DailyTask = Callable[[dt.datetime], bool]
"""A leader's daily chore (audit checkpoint, purge): called hourly with the time; it asks
the database whether it is due (so a restart or a new leader neither skips nor doubles
it) and returns True when it did the work."""


class RunLedger(Protocol):
    def scheduled_run(self, schedule_id: str, clinic_day: dt.date) -> RunRecord | None: ...
    def running(self) -> Sequence[RunRecord]: ...


@dataclass(frozen=True, slots=True)
class DaemonTiming:
    clinic_day_starts: dt.time = dt.time(7, 0)


class Daemon:
    def __init__(
        self,
        *,
        book: ScheduleBook,
        runner: Runner,
        ledger: RunLedger,
        lock: Leadership,
        clock: Callable[[], dt.datetime],
        timing: DaemonTiming | None = None,
        on_run: Callable[[Schedule, RunResult, float], None] | None = None,
        on_role: Callable[[bool], None] | None = None,
        followers_work: bool = True,
        daily: Mapping[str, DailyTask] | None = None,
    ) -> None:
        self.book = book
        self.runner = runner
        self.ledger = ledger
        self.lock = lock
        self.clock = clock
        self.timing = timing or DaemonTiming()
        self._on_run = on_run
        self._on_role = on_role
        self.followers_work = followers_work  # False on SQLite: one daemon works
        self.daily = dict(daily or {})
        self._leader = False
        self._stopping = threading.Event()
        self._active: set[str] = set()  # run keys executing in this process
        self._failures: dict[str, str] = {}  # run key -> last failure said
        self._guard = threading.Lock()
        self.last_result: RunResult | None = None

    # ---------------------------------------------------------------- leadership
    @property
    def is_leader(self) -> bool:
        return self._leader

    def poll_leadership(self) -> bool:
        """Keep or take leadership (`on_role` hears of every change)."""
        if self._stopping.is_set():
            return False
        if self._leader:
            if not self.lock.still_held():
                self._set_role(leader=False)
                log.error("leadership_lost")
            return self._leader
        if self.lock.try_acquire():
            log.info("leadership_taken")
            self._set_role(leader=True)  # the service sweeps for due and missed runs now
        return self._leader

    def _set_role(self, *, leader: bool) -> None:
        self._leader = leader
        if self._on_role:
            self._on_role(leader)

    def holder(self) -> str | None:
        return self.lock.holder()

    # ---------------------------------------------------------------- scheduling
    def fire(self, schedule_id: str) -> None:
        """A schedule fired (APScheduler): run the clinic day of its latest firing."""
        schedule = self.book.get(schedule_id)
        if schedule is None or not self._leader or self._stopping.is_set():
            return
        latest = latest_fire(schedule, self.clock())
        if latest is not None:
            self._run_if_due(schedule, clinic_day_for(schedule, latest))

    def sweep(self) -> list[tuple[str, dt.date]]:
        """Leader: run every due or missed clinic day the ledger does not show as done."""
        started: list[tuple[str, dt.date]] = []
        if not self._leader:
            return started
        now = self.clock()
        for schedule in self.book.schedules():
            for day, _fire in due_days(schedule, now, starts=self.timing.clinic_day_starts):
                if self._stopping.is_set() or not self._leader:
                    return started
                if self._run_if_due(schedule, day):
                    started.append((schedule.id, day))
        return started

    def _run_if_due(self, schedule: Schedule, clinic_day: dt.date) -> bool:
        record = self.ledger.scheduled_run(schedule.id, clinic_day)
        if record is not None and record.state in _ENDED:
            log.debug("run_already_done", schedule=schedule.id, clinic_day=str(clinic_day))
            return False
        key = f"{schedule.id}:{clinic_day.isoformat()}"
        return self._execute(
            key, schedule, lambda: self.runner.run_day(schedule, clinic_day), clinic_day
        )

    def maintenance(self) -> list[str]:
        """Leader: the daily chores that are due (each decides from the database)."""
        done: list[str] = []
        if not self._leader or self._stopping.is_set():
            return done
        for name, task in self.daily.items():
            try:
                if task(self.clock()):
                    done.append(name)
                    log.info("daily_task_done", task=name)
            except PrefetchError as exc:
                log.error("daily_task_failed", task=name, error=type(exc).__name__, reason=str(exc))
        return done

    # ---------------------------------------------------------------- working
    def join_running(self) -> list[str]:
        """Every daemon: help with the runs the ledger shows running."""
        joined: list[str] = []
        if not (self._leader or self.followers_work):
            return joined
        for run in self.ledger.running():
            if self._stopping.is_set():
                break
            schedule = self.book.get(run.schedule_id)
            if schedule is None:
                log.warning("run_schedule_unknown", run_id=run.id, schedule=run.schedule_id)
                continue
            key = f"{run.schedule_id}:{run.clinic_day.isoformat()}"
            call = functools.partial(self.runner.join, run, schedule)
            if self._execute(key, schedule, call, run.clinic_day):
                joined.append(run.id)
        return joined

    def _execute(
        self, key: str, schedule: Schedule, call: Callable[[], RunResult], day: dt.date
    ) -> bool:
        with self._guard:
            if key in self._active or self._stopping.is_set():
                return False
            self._active.add(key)
        started = time.monotonic()
        try:
            result = call()
        except PrefetchError as exc:
            # said once per run and reason (the sweep retries every few minutes)
            said = self._failures.get(key) == str(exc)
            self._failures[key] = str(exc)
            (log.debug if said else log.error)(
                "daemon_run_failed",
                schedule=schedule.id,
                clinic_day=str(day),
                error=type(exc).__name__,
                reason=str(exc),
            )
            return False
        finally:
            with self._guard:
                self._active.discard(key)
        elapsed = time.monotonic() - started
        self._failures.pop(key, None)
        self.last_result = result
        log.info(
            "daemon_run",
            schedule=schedule.id,
            clinic_day=str(day),
            run_id=result.run_id,
            finished=result.finished,
            stopped=result.stopped,
            queried=result.queried,
            role="leader" if self._leader else "follower",
            duration_s=round(elapsed, 3),
        )
        if self._on_run:
            self._on_run(schedule, result, elapsed)
        return True

    # ---------------------------------------------------------------- stopping
    def stop(self) -> None:
        """Graceful stop: no new runs; running ones finish their queries in flight."""
        self._stopping.set()
        self.runner.stop()

    def close(self) -> None:
        self.lock.release()
        if self._leader:
            self._set_role(leader=False)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def active(self) -> list[str]:
        with self._guard:
            return sorted(self._active)
