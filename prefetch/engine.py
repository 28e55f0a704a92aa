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
import random
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import tenacity

from prefetch.clock import SYSTEM_CLOCK
from prefetch.domain.outcome import Outcome, OutcomeKind
from prefetch.domain.people import Appointment, Mandate
from prefetch.domain.run import (
    EngineConfig,
    PreparedRun,
    Progress,
    RunReport,
    RunState,
)
from prefetch.domain.schedule import Schedule
from prefetch.errors import OverloadError, StopError, StoreUnavailableError
from prefetch.logging import get_logger
from prefetch.ports import (
    Clock,
    DispenseStore,
    LspGateway,
    LspReply,
    RateLimiter,
    RunStore,
    SendSlot,
    TwoPhaseGateway,
)
from prefetch.query_step import QueryStep, Sent
from prefetch.run_prepare import RunPlanner

log = get_logger("prefetch.engine")
T = TypeVar("T")
NOT_SENT = "NOT_SENT"  # the attempt ended before its query left (no send slot in time)
__all__ = ["Prefetcher"]


@dataclass
class _RunContext:
    step: QueryStep
    counter: _Counter
    report: RunReport
    deadline: dt.datetime | None
    held: dict[str, int] = field(default_factory=dict)  # worker id -> item in flight

    @property
    def run_id(self) -> str:
        return self.step.run_id


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
        ctx = _RunContext(
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
        )
        workers = [
            threading.Thread(
                target=self._worker,
                name=f"prefetch-worker-{n}",
                args=(ctx, f"{run_id}#{n}:{uuid.uuid4().hex[:6]}"),
                daemon=True,
            )
            for n in range(max(1, self.config.workers))
        ]
        beating = threading.Event()
        heart = threading.Thread(target=self._heartbeat, args=(ctx, beating), daemon=True)
        heart.start()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        beating.set()
        heart.join()
        return self._finish(ctx, started)

    def _finish(self, ctx: _RunContext, started: float) -> RunReport:
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

    def _worker(self, ctx: _RunContext, worker_id: str) -> None:
        """One worker thread. Any error stops the run (never finishes it with items lost)."""
        try:
            self._work(ctx, worker_id)
        except StopError as exc:
            self._stop(ctx, exc.message, str(exc))
        except Exception as exc:  # a bug: stop instead of reporting a finished run
            log.exception("worker_crashed", run_id=ctx.run_id, error=type(exc).__name__)
            self._stop(ctx, f"internal error ({type(exc).__name__})", type(exc).__name__)

    def _stop(self, ctx: _RunContext, reason: str, detail: str) -> None:
        with self._lock:
            self._stop_reason = self._stop_reason or reason
            ctx.report.errors.append(detail)
        log.error("run_stopped", run_id=ctx.run_id, reason=reason)

    def _work(self, ctx: _RunContext, worker_id: str) -> None:
        idle = self.config.idle_poll_seconds
        look = False  # the last claim found nothing: look when the next item is due
        while self.stop_reason is None:
            now = self.clock.now()
            if ctx.deadline is not None and now >= ctx.deadline:
                return
            if self.limiter.breaker.state == "open":
                self.sleep(idle)
                continue
            if look:
                wait = self._until_due(ctx.run_id, now)
                if wait is None:
                    return
                if wait > 0:
                    self.sleep(min(wait, idle))
                    continue
            sent = Sent()
            try:
                # The slot is reserved ahead of its send time; the item is claimed (with the
                # query's audit row) and its query built and signed meanwhile, so the query
                # leaves at its send time.
                with self.limiter.reserve() as slot:
                    look = self._claim(ctx, worker_id, sent) is None
                    if look:
                        slot.cancel()
                        continue
                    reply = self._send(ctx, sent, slot)
            except OverloadError as exc:  # no slot: nothing was claimed, nothing sent
                self.sleep(min(max(exc.retry_after or 0.0, 0.01), idle))
                continue
            try:
                self._feed_breaker(reply.outcome)
                final = ctx.step.record(self.runs, self._store_call, sent, reply)
            finally:
                with self._lock:
                    ctx.held.pop(worker_id, None)
            if final:
                ctx.counter.step(final)

    def _send(self, ctx: _RunContext, sent: Sent, slot: SendSlot) -> LspReply:
        """Build and sign the claimed item's query, wait for the send time, send it. A
        slot that cannot be kept (its replacement timed out, the database cannot decide)
        leaves the query unsent: the item's attempt ends as a transient NOT_SENT."""
        params = sent.params
        if params is None:
            raise StopError("a send without its claim", run_id=ctx.run_id)
        token = ctx.step.mandate.token_xml if ctx.step.mandate else None
        gateway = self.gateway
        if not isinstance(gateway, TwoPhaseGateway):
            slot.wait()
            return gateway.query(params, mandate_token=token)
        data = gateway.envelope(params, mandate_token=token)
        try:
            slot.wait()
        except (OverloadError, StoreUnavailableError) as exc:
            slot.cancel()
            outcome = Outcome(OutcomeKind.TRANSIENT, code=NOT_SENT, detail=type(exc).__name__)
            return LspReply(outcome=outcome)
        return gateway.send(params, data)

    def _claim(self, ctx: _RunContext, worker_id: str, sent: Sent) -> object | None:
        item = self._store_call(
            self.runs.claim_next,
            ctx.run_id,
            worker_id,
            self.clock.now(),
            lease=self.config.lease,
            sent=ctx.step.on_claim(sent),
        )
        if item is not None:
            with self._lock:
                ctx.held[worker_id] = item.id
            ctx.counter.sent()
        return item

    def _until_due(self, run_id: str, now: dt.datetime) -> float | None:
        """Seconds until an item can be claimed (reclaiming expired leases first); None
        when every item is final."""
        self._store_call(
            self.runs.reclaim_expired, run_id, now, max_attempts=self.config.max_attempts
        )
        due = self._store_call(self.runs.next_due_at, run_id, now)
        return None if due is None else max((due - now).total_seconds(), 0.0)

    def _heartbeat(self, ctx: _RunContext, done: threading.Event) -> None:
        """Renew the leases of the items this process holds, every third of a lease."""
        interval = max(self.config.lease.total_seconds() / 3, 0.05)
        while not done.wait(interval):
            with self._lock:
                held = dict(ctx.held)
            until = self.clock.now() + self.config.lease
            for worker_id, item_id in held.items():
                try:
                    self.runs.extend_leases(worker_id, [item_id], until)
                except StoreUnavailableError:  # the next beat tries again
                    log.warning("heartbeat_failed", run_id=ctx.run_id)

    def _store_call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
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

    def _feed_breaker(self, outcome: Outcome) -> None:
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
