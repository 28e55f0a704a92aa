"""A prefetch run: plan -> eligibility -> durable queue -> rate limiter -> LSP -> store.

`Prefetcher.prepare` plans a clinic day and writes the run with one item per patient
(skipped ones with their reason) in one transaction; preparing the same run again is a
resume and changes nothing. `Prefetcher.execute` lets worker threads work the run's queue:
each takes a send slot from the rate limiter, claims an item in the same transaction that
writes the query's `sent` audit row, sends, and records the answer with its dispenses and
its answer row. Items in flight carry a lease that a heartbeat renews; a crash loses
nothing: a restart reclaims the items whose lease ran out (at once, when it holds the
run's lock: their worker is gone).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import tenacity

from prefetch.clock import SYSTEM_CLOCK
from prefetch.domain.outcome import Outcome, OutcomeKind
from prefetch.domain.people import Appointment, Mandate
from prefetch.domain.run import (
    ClaimedItem,
    EngineConfig,
    PreparedRun,
    Progress,
    RunReport,
    RunState,
)
from prefetch.domain.schedule import Schedule
from prefetch.errors import StoreUnavailableError
from prefetch.logging import get_logger
from prefetch.ports import (
    Clock,
    DispenseStore,
    LspGateway,
    RateLimiter,
    RunStore,
)
from prefetch.query_step import QueryStep, Sent
from prefetch.run_prepare import RunPlanner
from prefetch.send_pipeline import NOT_SENT, SendPipeline
from prefetch.store.records import AuditEvent

log = get_logger("prefetch.engine")
T = TypeVar("T")
__all__ = ["Prefetcher"]


@dataclass
class RunContext:
    """One execution of a run in this process."""

    step: QueryStep
    counter: _Counter
    report: RunReport
    deadline: dt.datetime | None
    claimant: str  # this process's name on the items it holds
    _held: set[int] = field(default_factory=set)  # items in flight here (heartbeat)
    _held_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def run_id(self) -> str:
        return self.step.run_id

    def hold(self, item_ids: Iterable[int]) -> None:
        with self._held_lock:
            self._held.update(item_ids)

    def let_go(self, item_ids: Iterable[int]) -> None:
        with self._held_lock:
            self._held.difference_update(item_ids)

    def holding(self) -> list[int]:
        with self._held_lock:
            return list(self._held)


class Prefetcher:
    """The engine. Collaborators are passed in; nothing here opens files or sockets."""

    def __init__(
        self,
        *,
        runs: RunStore,
        dispenses: DispenseStore,
        gateway: LspGateway,
        limiter: RateLimiter,
        config: EngineConfig,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        self.runs = runs
        self.dispenses = dispenses
        self.gateway = gateway
        self.limiter = limiter
        self.config = config
        self.clock = clock
        self.sleep = clock.sleep
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._stop_reason: str | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ prepare
    def prepare(
        self,
        schedule: Schedule,
        clinic_day: dt.date,
        appointments: Sequence[Appointment],
        *,
        mandate: Mandate | None,
        kind: str = "scheduled",
        run_id: str | None = None,
        fresh_for: dt.timedelta | None = None,
    ) -> PreparedRun:
        """Plan the clinic day and write the run (or find it, for a resume): see
        `prefetch.run_prepare.RunPlanner`."""
        return RunPlanner(self.runs, self.dispenses, self.config, self.clock).prepare(
            schedule,
            clinic_day,
            appointments,
            mandate=mandate,
            kind=kind,
            run_id=run_id,
            fresh_for=fresh_for,
        )

    # ------------------------------------------------------------------ execute
    def execute(
        self,
        run_id: str,
        schedule: Schedule,
        mandate: Mandate | None,
        *,
        clinic_day: dt.date,
        progress: Callable[[Progress], None] | None = None,
        deadline: dt.datetime | None = None,
        exclusive: bool = False,
    ) -> RunReport:
        """Work the run's queue until every item is final, the run must stop, or
        `deadline` (the end of the schedule's window) passes: then the run ends
        `incomplete` with its counts. `exclusive`: this process holds the run's lock, so
        every item still in flight belongs to a process that died and is reclaimed now.

        A run that already finished is reported as it is: nothing is queried again.
        """
        started = self.clock.monotonic()
        self._stop_reason = None
        record = self.runs.get_run(run_id)
        if record is not None and record.state is RunState.FINISHED:
            log.info("run_already_finished", run_id=run_id)
            return RunReport(summary=self.runs.summary(run_id))
        self.runs.start_run(run_id, self.clock.now())
        reclaimed = self.runs.reclaim_expired(
            run_id, self.clock.now(), max_attempts=self.config.max_attempts, everything=exclusive
        )
        if reclaimed:
            log.warning("items_reclaimed", run_id=run_id, count=len(reclaimed))
        summary = self.runs.summary(run_id)
        counter = _Counter(summary.definitive, summary.to_query, progress)
        ctx = RunContext(
            QueryStep(
                run_id,
                schedule,
                mandate,
                schedule.look_back_from(clinic_day, self.config.look_back_days),
                self.config,
                self.clock,
                self.rng,
            ),
            counter,
            RunReport(summary=summary, reclaimed=len(reclaimed)),
            deadline,
            claimant=f"{run_id}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}",
        )
        beating = threading.Event()
        heart = threading.Thread(target=self._heartbeat, args=(ctx, beating), daemon=True)
        heart.start()
        try:
            SendPipeline(self, ctx).run()
        finally:
            beating.set()
            heart.join()
        return self._finish(ctx, started)

    def _finish(self, ctx: RunContext, started: float) -> RunReport:
        report, run_id = ctx.report, ctx.run_id
        report.stopped = self.stop_reason
        report.summary = self.runs.summary(run_id)
        if report.stopped is None:
            state = RunState.INCOMPLETE if report.summary.open else RunState.FINISHED
            report.summary = self.runs.finish_run(run_id, self.clock.now(), state=state)
            report.incomplete = state is RunState.INCOMPLETE
        report.queried = ctx.counter.queried
        log.info(
            "run_finished",
            run_id=run_id,
            stopped=report.stopped,
            incomplete=report.incomplete,
            queried=ctx.counter.queried,
            duration_s=round(self.clock.monotonic() - started, 3),
            **{f"items_{k}": v for k, v in report.summary.by_state.items()},
            dispenses=report.summary.dispenses,
        )
        return report

    @property
    def stop_reason(self) -> str | None:
        with self._lock:
            return self._stop_reason

    def stop_run(self, ctx: RunContext, reason: str, detail: str) -> None:
        """Stop the run: nothing new is sent; queries in flight finish and are recorded."""
        with self._lock:
            self._stop_reason = self._stop_reason or reason
            ctx.report.errors.append(detail)
        log.error("run_stopped", run_id=ctx.run_id, reason=reason)

    def claim(self, ctx: RunContext, count: int, *, fresh_first: bool = False) -> list[Sent]:
        """Up to `count` due items, claimed in one transaction with their queries' `sent`
        audit rows; each comes back with its query (`fresh_first`: see
        `RunStore.claim_batch`)."""
        made: list[Sent] = []

        def sent(item: ClaimedItem) -> AuditEvent:
            into = Sent()
            made.append(into)
            return ctx.step.on_claim(into)(item)

        self.store_call(
            self.runs.claim_batch,
            ctx.run_id,
            ctx.claimant,
            self.clock.now(),
            count=count,
            lease=self.config.lease,
            sent=sent,
            fresh_first=fresh_first,
        )
        ctx.hold(s.item.id for s in made if s.item is not None)
        for _ in made:
            ctx.counter.sent()
        return made

    def until_due(self, run_id: str, now: dt.datetime) -> float | None:
        """Seconds until an item can be claimed (reclaiming expired leases first); None
        when every item is final."""
        self.store_call(
            self.runs.reclaim_expired, run_id, now, max_attempts=self.config.max_attempts
        )
        due = self.store_call(self.runs.next_due_at, run_id, now)
        return None if due is None else max((due - now).total_seconds(), 0.0)

    def _heartbeat(self, ctx: RunContext, done: threading.Event) -> None:
        """Renew the leases of the items this process holds, every third of a lease."""
        interval = max(self.config.lease.total_seconds() / 3, 0.05)
        while not done.wait(interval):
            held = ctx.holding()
            if not held:
                continue
            try:
                self.runs.extend_leases(ctx.claimant, held, self.clock.now() + self.config.lease)
            except StoreUnavailableError:  # the next beat tries again
                log.warning("heartbeat_failed", run_id=ctx.run_id)

    def store_call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call the store; ride out a short database outage (locked, restarting) with
        backoff before giving up with StoreUnavailableError (which stops the run)."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(StoreUnavailableError),
            stop=tenacity.stop_after_attempt(self.config.store_attempts),
            wait=tenacity.wait_exponential(multiplier=0.2, max=5),
            sleep=self.sleep,
            reraise=True,
        )
        return retrying(fn, *args, **kwargs)

    def feed_breaker(self, outcome: Outcome) -> None:
        if outcome.code == NOT_SENT:  # the LSP was not asked: nothing to learn
            return
        if outcome.kind is OutcomeKind.TRANSIENT:
            self.limiter.breaker.failure()
            if outcome.retry_after:
                self.limiter.pause(outcome.retry_after)
        else:
            self.limiter.breaker.success()


class _Counter:
    def __init__(self, done: int, total: int, callback: Callable[[Progress], None] | None) -> None:
        self.done = done
        self.total = total
        self.queried = 0
        self._callback = callback
        self._lock = threading.Lock()

    def sent(self) -> None:
        with self._lock:
            self.queried += 1

    def step(self, kind: str) -> None:
        with self._lock:
            self.done += 1
            snapshot = Progress(self.done, self.total, kind)
        if self._callback:
            self._callback(snapshot)
