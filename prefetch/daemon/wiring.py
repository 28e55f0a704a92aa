"""The daemon's composition: settings -> stores, LSP client, limiter, runner, ledger,
leader lock, metrics, health checks, scheduler. Only this module (and the CLI that calls
it) constructs adapters for the daemon."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from prefetch.clock import SYSTEM_CLOCK
from prefetch.composition import (
    Stores,
    load_credential,
    make_lsp_client,
    make_run_services,
    make_throttle,
    open_stores,
    require_current_schema,
)
from prefetch.daemon.core import Daemon, DaemonTiming, RunResult
from prefetch.daemon.http import Check, HealthCheck, OpsServer
from prefetch.daemon.ledger import SqlRunLedger
from prefetch.daemon.runner import DaemonRunner, StoppableLimiter, exports_reader
from prefetch.daemon.schedules import ScheduleBook
from prefetch.daemon.service import DaemonService
from prefetch.domain.schedule import Schedule
from prefetch.leader import leader_lock_for
from prefetch.metrics import MeteredGateway, Metrics
from prefetch.ports import Clock
from prefetch.settings import Settings
from prefetch.store.db import is_sqlite


@dataclass
class DaemonApp:
    service: DaemonService
    ops: OpsServer | None
    stores: Stores
    metrics: Metrics
    checks: dict[str, HealthCheck]

    @property
    def daemon(self) -> Daemon:
        return self.service.daemon

    def role(self) -> str:
        return "leader" if self.daemon.is_leader else "follower"

    def start(self) -> None:
        self.service.start()
        if self.ops is not None:
            self.ops.start()

    def stop(self) -> None:
        self.service.stop()
        if self.ops is not None:
            self.ops.stop()
        self.stores.engine.dispose()


def items_left(ledger: SqlRunLedger) -> list[tuple[str, str, int]]:
    rows = []
    for run in ledger.running():
        by_state = ledger.summary(run.id).by_state
        left = sum(by_state.get(s, 0) for s in ("pending", "retry_wait", "in_flight"))
        rows.append((run.id, run.schedule_id, left))
    return rows


def default_checks(daemon: Daemon, ledger: SqlRunLedger) -> dict[str, HealthCheck]:
    """name -> check. Add more (e.g. "audit_chain") by putting them in the mapping."""

    def database() -> Check:
        ledger.ping()
        return Check(True, "reachable")

    def leadership() -> Check:
        if daemon.is_leader:
            return Check(True, "leader")
        return Check(True, f"follower; leader: {daemon.holder() or 'none'}")

    def schedules() -> Check:
        refused = daemon.book.refused
        names = ", ".join(sorted(s.id for s in daemon.book.schedules()))
        if refused:
            return Check(False, f"changed files refused, still using: {names}; {refused}")
        return Check(True, names or "no schedules")

    def last_run() -> Check:
        run = ledger.last_finished()
        if run is None:
            return Check(True, "no finished run yet")
        when = run.finished_at.isoformat() if run.finished_at else "?"
        return Check(True, f"{run.id} finished {when}")

    return {
        "database": database,
        "leadership": leadership,
        "schedules": schedules,
        "last_run": last_run,
    }


def build_daemon(settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> DaemonApp:
    """Wire a daemon from settings (nothing starts until `DaemonApp.start`).

    Raises ConfigError (bad schedules, schema not current, unreadable keys)."""
    d = settings.daemon
    book = ScheduleBook(Path(settings.schedules_dir))
    stores = open_stores(settings, migrate=False)
    require_current_schema(stores)
    metrics = Metrics()
    metrics.rate_limit.set(settings.throttle.rate_per_second)
    limiter = StoppableLimiter(make_throttle(settings))
    metrics.breaker_from(lambda: limiter.breaker.state)
    gateway = MeteredGateway(make_lsp_client(settings, load_credential(settings)), metrics)
    exports = Path(d.exports_dir) if d.exports_dir else settings.data_path / "exports"
    services = make_run_services(settings, stores, gateway, limiter=limiter, clock=clock)
    runner = DaemonRunner(services, limiter, exports_reader(exports))
    ledger = SqlRunLedger(stores.engine, stores.runs)
    metrics.items_left_from(lambda: items_left(ledger))
    hour, minute = (int(p) for p in d.clinic_day_starts.split(":"))

    def on_run(schedule: Schedule, result: RunResult, seconds: float) -> None:
        state = "finished" if result.finished else ("stopped" if result.stopped else "open")
        metrics.run_ended(schedule.id, state, seconds)

    holder: dict[str, DaemonService] = {}

    def on_role(leader: bool) -> None:
        metrics.leader.set(1 if leader else 0)
        if "service" in holder:
            holder["service"].on_role(leader)

    daemon = Daemon(
        book=book,
        runner=runner,
        ledger=ledger,
        lock=leader_lock_for(settings.database_url),
        clock=clock.now,
        timing=DaemonTiming(clinic_day_starts=dt.time(hour, minute)),
        on_run=on_run,
        on_role=on_role,
        followers_work=not is_sqlite(stores.engine),
    )
    service = DaemonService(daemon, d)
    holder["service"] = service
    checks = default_checks(daemon, ledger)
    app = DaemonApp(service=service, ops=None, stores=stores, metrics=metrics, checks=checks)
    if d.http_port:
        app.ops = OpsServer(
            d.http_host, d.http_port, registry=metrics.registry, checks=checks, role=app.role
        )
    return app
