"""APScheduler 3 around a `Daemon`: one cron job per schedule (Europe/Amsterdam), and
interval jobs for leadership, the sweep for due and missed runs, joining running runs, and
reloading the schedule files.

Every job has `coalesce=True` and `max_instances=1`; a schedule's job has a real
`misfire_grace_time` (a firing that comes late because the process was busy still starts).
What APScheduler keeps in its (memory) job store is never the truth about what ran: the
daemon asks the run ledger before it starts anything, and the sweep catches up a day that
fired while every daemon was down, once, if the clinic day has not begun.
"""

from __future__ import annotations

import datetime as dt

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from prefetch.daemon.core import Daemon
from prefetch.daemon.timing import trigger_for
from prefetch.domain.localtime import AMSTERDAM
from prefetch.logging import get_logger
from prefetch.settings import DaemonSettings

log = get_logger("prefetch.daemon.service")

RUNS = "runs"  # executor for jobs that may execute a run (long)
SCHEDULE_JOB = "schedule:"


class DaemonService:
    def __init__(self, daemon: Daemon, settings: DaemonSettings) -> None:
        self.daemon = daemon
        self.settings = settings
        self.scheduler = BackgroundScheduler(
            timezone=AMSTERDAM,
            executors={"default": ThreadPoolExecutor(4), RUNS: ThreadPoolExecutor(8)},
            job_defaults={"coalesce": True, "max_instances": 1},
        )

    def _interval(self, func: object, job_id: str, seconds: float, executor: str) -> None:
        self.scheduler.add_job(
            func,
            IntervalTrigger(seconds=seconds, timezone=AMSTERDAM),
            id=job_id,
            executor=executor,
            misfire_grace_time=None,  # an interval job late is still wanted
            next_run_time=dt.datetime.now(AMSTERDAM),
            replace_existing=True,
        )

    def start(self) -> None:
        s = self.settings
        self.sync_jobs()
        self._interval(self.daemon.poll_leadership, "leadership", s.leader_poll_seconds, "default")
        self._interval(self.daemon.sweep, "sweep", s.sweep_seconds, RUNS)
        self._interval(self.daemon.join_running, "join", s.work_poll_seconds, RUNS)
        self._interval(self.reload, "reload", s.reload_seconds, "default")
        self._interval(self.daemon.maintenance, "maintenance", 3600.0, RUNS)
        self.scheduler.start()

    def on_role(self, leader: bool) -> None:
        """New leader: sweep for due and missed runs now, not at the next interval."""
        if leader and self.scheduler.running and self.scheduler.get_job("sweep"):
            self.scheduler.modify_job("sweep", next_run_time=dt.datetime.now(AMSTERDAM))

    def sync_jobs(self) -> None:
        """One cron job per schedule in force; jobs of removed schedules go."""
        wanted = {s.id: s for s in self.daemon.book.schedules()}
        for job in self.scheduler.get_jobs():
            if job.id.startswith(SCHEDULE_JOB) and job.id[len(SCHEDULE_JOB) :] not in wanted:
                job.remove()
        for schedule_id, schedule in wanted.items():
            self.scheduler.add_job(
                self.daemon.fire,
                trigger_for(schedule),
                args=[schedule_id],
                id=SCHEDULE_JOB + schedule_id,
                executor=RUNS,
                misfire_grace_time=int(self.settings.misfire_grace_seconds),
                replace_existing=True,
            )

    def reload(self) -> None:
        if self.daemon.book.reload_if_changed():
            self.sync_jobs()

    def next_fires(self) -> dict[str, dt.datetime | None]:
        return {
            job.id[len(SCHEDULE_JOB) :]: job.next_run_time
            for job in self.scheduler.get_jobs()
            if job.id.startswith(SCHEDULE_JOB)
        }

    def stop(self) -> None:
        """Graceful: no new work; running runs let their queries in flight finish; then
        leadership is given up."""
        log.info("daemon_stopping", active=self.daemon.active())
        self.daemon.stop()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.daemon.close()
        log.info("daemon_stopped")
