"""The daemon's composition: settings -> stores, LSP client, limiter, runner, ledger,
leader lock, metrics, health checks, scheduler. Only this module (and the CLI that calls
it) constructs adapters for the daemon."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from prefetch.clock import SYSTEM_CLOCK
from prefetch.composition import (
    Stores,
    audit_trust,
    load_credential,
    make_limiter,
    make_lsp_client,
    make_run_services,
    open_stores,
    require_current_schema,
)
from prefetch.daemon.core import Daemon, DaemonTiming, DailyTask, RunResult
from prefetch.daemon.http import Check, HealthCheck, OpsServer
from prefetch.daemon.ledger import SqlRunLedger
from prefetch.daemon.runner import DaemonRunner, StoppableLimiter, book_reader
from prefetch.daemon.schedules import ScheduleBook
from prefetch.daemon.service import DaemonService
from prefetch.domain.schedule import Schedule
from prefetch.leader import leader_lock_for
from prefetch.metrics import Metrics, metered_gateway
from prefetch.ports import Clock
from prefetch.security.keys import Credential
from prefetch.security.trust import TrustStore
from prefetch.settings import Settings
from prefetch.store.audit_checkpoint import last_checkpoint_time, write_checkpoint
from prefetch.store.audit_verify import verify_chain
from prefetch.store.db import is_sqlite
from prefetch.store.purge import daily_purge_task


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


def audit_checkpoint_task(engine: Engine, credential: Credential) -> DailyTask:
    """Sign the audit chain's head once a day (issue 11), when the last one is 24 h old."""

    def task(now: dt.datetime) -> bool:
        last = last_checkpoint_time(engine)
        if last is not None and now - last < dt.timedelta(hours=24):
            return False
        write_checkpoint(engine, credential, now=now)
        return True

    return task


def audit_chain_check(engine: Engine, trust: TrustStore | None) -> HealthCheck:
    """The audit chain from its last signed checkpoint on (`prefetch audit verify --quick`)."""

    def check() -> Check:
        report = verify_chain(engine, quick=True, trust=trust)
        return Check(report.ok, report.summary())

    return check


def build_daemon(settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> DaemonApp:
    """Wire a daemon from settings (nothing starts until `DaemonApp.start`).

    Raises ConfigError (bad schedules, schema not current, unreadable keys)."""
    d = settings.daemon
    book = ScheduleBook(Path(settings.schedules_dir))
    stores = open_stores(settings, migrate=False)
    require_current_schema(stores)
    metrics = Metrics()
    metrics.rate_limit.set(settings.throttle.rate_per_second)
    shared = make_limiter(settings, stores, clock)  # one budget for every daemon on the DB
    metrics.breaker_from(lambda: shared.breaker.state)
    limiter = StoppableLimiter(shared)
    credential = load_credential(settings)
    gateway = metered_gateway(make_lsp_client(settings, credential), metrics)
    services = make_run_services(settings, stores, gateway, limiter=limiter, clock=clock)
    runner = DaemonRunner(services, limiter, book_reader(stores.book.day))
    ledger = SqlRunLedger(stores.engine, stores.runs)
    metrics.items_left_from(lambda: items_left(ledger))
    hour, minute = (int(p) for p in d.clinic_day_starts.split(":"))

    def on_run(schedule: Schedule, result: RunResult, seconds: float) -> None:
        state = "finished" if result.finished else ("stopped" if result.stopped else "open")
        metrics.run_ended(schedule.id, state, seconds, resent=result.resent)

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
        daily={
            "audit_checkpoint": audit_checkpoint_task(stores.engine, credential),
            "purge": daily_purge_task(stores.engine, settings.retention),
        },
    )
    service = DaemonService(daemon, d)
    holder["service"] = service
    checks = default_checks(daemon, ledger)
    checks["audit_chain"] = audit_chain_check(stores.engine, audit_trust(settings))
    app = DaemonApp(service=service, ops=None, stores=stores, metrics=metrics, checks=checks)
    if d.http_port:
        app.ops = OpsServer(
            d.http_host, d.http_port, registry=metrics.registry, checks=checks, role=app.role
        )
    return app
