"""A prefetch run: plan -> eligibility -> durable queue -> throttle -> LSP -> store.

`Prefetcher.prepare` plans a clinic day and writes the run with one item per patient
(skipped ones with their reason) in one transaction; preparing the same run again is a
resume and changes nothing. `Prefetcher.execute` lets worker threads claim items from the
database, query the LSP through the throttle and record each outcome together with its
dispenses and its audit row. A crash loses nothing: items in flight for longer than
`stale_after` go back to the queue on the next start.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import tenacity

from prefetch.clock import SYSTEM_CLOCK
from prefetch.domain.bsn import Bsn
from prefetch.domain.coded import Identifier
from prefetch.domain.eligibility import EligibilityPolicy, Eligible, decide
from prefetch.domain.outcome import Outcome, OutcomeKind
from prefetch.domain.people import Appointment, Clinician, Mandate
from prefetch.domain.planning import plan
from prefetch.domain.run import (
    ClaimedItem,
    EngineConfig,
    NewItem,
    PreparedRun,
    Progress,
    RunReport,
    RunState,
    make_run_id,
)
from prefetch.domain.schedule import Schedule
from prefetch.errors import OverloadError, StopError, StoreUnavailableError
from prefetch.hl7v3.params import QueryParams
from prefetch.logging import get_logger
from prefetch.ports import Clock, DispenseStore, LspGateway, LspReply, RateLimiter, RunStore
from prefetch.query_records import backoff_delay, query_audit_event, stops_run, with_provenance

log = get_logger("prefetch.engine")
T = TypeVar("T")
__all__ = ["Prefetcher"]


@dataclass(frozen=True, slots=True)
class _RunContext:
    run_id: str
    schedule: Schedule
    mandate: Mandate | None
    look_back: dt.date
    counter: _Counter
    report: RunReport


class Prefetcher:
    """The use case. Collaborators are passed in; nothing here opens files or sockets."""

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
        """Plan the clinic day and write the run (or find it, for a resume)."""
        now = self.clock.now()
        existing = (
            self.runs.find_run(schedule.id, clinic_day, kind) if kind == "scheduled" else None
        )
        items = self._items(schedule, clinic_day, appointments, mandate, now, fresh_for)
        if existing is not None:
            added, withdrawn = self.runs.extend_run(existing.id, items, now)
            if added or withdrawn:
                log.info("run_extended", run_id=existing.id, added=added, withdrawn=withdrawn)
            summary = self.runs.summary(existing.id)
            skipped = summary.by_state.get("skipped", 0)
            return PreparedRun(existing.id, False, summary.total, summary.total - skipped)
        rid = run_id or make_run_id(schedule.id, clinic_day, kind)
        created = self.runs.create_run(rid, schedule.id, clinic_day, kind, now, items)
        to_query = sum(1 for i in items if i.skip_reason is None)
        log.info(
            "run_planned",
            run_id=rid,
            created=created,
            patients=len(items),
            to_query=to_query,
            skipped=len(items) - to_query,
        )
        return PreparedRun(rid, created, len(items), to_query)

    def _items(  # noqa: PLR0917 - the parts of one plan
        self,
        schedule: Schedule,
        clinic_day: dt.date,
        appointments: Sequence[Appointment],
        mandate: Mandate | None,
        now: dt.datetime,
        fresh_for: dt.timedelta | None,
    ) -> list[NewItem]:
        """One item per planned patient, skipped ones with their reason."""
        policy = EligibilityPolicy(
            fresh_for=schedule.fresh_for(self.config.fresh_for) if fresh_for is None else fresh_for
        )
        items: list[NewItem] = []
        for planned in plan(appointments, schedule=schedule, clinic_day=clinic_day):
            patient = planned.patient
            last = self.dispenses.last_fetched_at(patient.bsn) if patient.bsn is not None else None
            decision = decide(
                patient,
                planned.appointments,
                schedule=schedule,
                policy=policy,
                now=now,
                last_fetched_at=last,
                mandate=mandate,
            )
            items.append(
                NewItem(
                    patient_local_id=patient.local_id,
                    bsn=patient.bsn.value if patient.bsn is not None else None,
                    clinics=planned.clinics,
                    skip_reason=None if isinstance(decision, Eligible) else decision.reason.value,
                )
            )
        return items

    # ------------------------------------------------------------------ execute
    def execute(
        self,
        run_id: str,
        schedule: Schedule,
        mandate: Mandate | None,
        *,
        clinic_day: dt.date,
        progress: Callable[[Progress], None] | None = None,
    ) -> RunReport:
        """Work the run's queue until every item is final (or the run must stop).

        A run that already finished is reported as it is: nothing is queried again.
        """
        started = self.clock.monotonic()
        self._stop_reason = None
        record = self.runs.get_run(run_id)
        if record is not None and record.state is RunState.FINISHED:
            log.info("run_already_finished", run_id=run_id)
            return RunReport(summary=self.runs.summary(run_id))
        self.runs.start_run(run_id, self.clock.now())
        released = self.runs.release_stale(run_id, self.clock.now() - self.config.stale_after)
        if released:
            log.warning("stale_items_released", run_id=run_id, count=released)
        summary = self.runs.summary(run_id)
        total = summary.total - summary.by_state.get("skipped", 0)
        already = summary.by_state.get("done", 0) + summary.by_state.get("failed", 0)
        counter = _Counter(already, total, progress)
        report = RunReport(summary=summary)
        ctx = _RunContext(
            run_id,
            schedule,
            mandate,
            schedule.look_back_from(clinic_day, self.config.look_back_days),
            counter,
            report,
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
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        report.stopped = self.stop_reason
        if report.stopped is None:
            report.summary = self.runs.finish_run(run_id, self.clock.now())
        else:
            report.summary = self.runs.summary(run_id)
        report.queried = counter.queried
        log.info(
            "run_finished",
            run_id=run_id,
            stopped=report.stopped,
            queried=counter.queried,
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
        run_id = ctx.run_id
        while self.stop_reason is None:
            if self.limiter.breaker.state == "open":
                self.sleep(self.config.idle_poll_seconds)
                continue
            item = self._store_call(self.runs.claim_next, run_id, worker_id, self.clock.now())
            if item is None:
                if not self._work_left(run_id):
                    return
                self.sleep(self.config.idle_poll_seconds)
                continue
            final = self._handle(item, ctx)
            if final:
                ctx.counter.step(final)

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

    def _work_left(self, run_id: str) -> bool:
        # Items held by a crashed worker (here or on another machine) go back to the queue.
        self._store_call(
            self.runs.release_stale, run_id, self.clock.now() - self.config.stale_after
        )
        by_state = self._store_call(self.runs.summary, run_id).by_state
        return any(by_state.get(s, 0) for s in ("pending", "retry_wait", "in_flight"))

    def _params(self, item: ClaimedItem, schedule: Schedule, look_back: dt.date) -> QueryParams:
        cfg = self.config
        overseer = schedule.overseer
        if overseer.ura is None:
            overseer = Clinician(
                overseer.uzi_number, overseer.role_code, overseer.name, ura=cfg.hospital_ura
            )
        return QueryParams(
            bsn=Bsn(item.bsn),
            message_id=Identifier(cfg.message_id_root, uuid.uuid4().hex),
            query_id=Identifier(cfg.query_id_root, uuid.uuid4().hex),
            created_at=self.clock.now(),
            overseer=overseer,
            hospital_ura=cfg.hospital_ura,
            hospital_name=cfg.hospital_name,
            sender_application_id=cfg.application_id,
            author=None,
            author_system_uzi=cfg.system_uzi,
            look_back_from=look_back,
        )

    def _handle(self, item: ClaimedItem, ctx: _RunContext) -> str | None:
        """Query one patient and record the result. Returns the final kind, or None."""
        run_id, schedule, mandate = ctx.run_id, ctx.schedule, ctx.mandate
        params = self._params(item, schedule, ctx.look_back)
        try:
            with self.limiter.slot():
                ctx.counter.sent()
                reply = self.gateway.query(
                    params, mandate_token=mandate.token_xml if mandate else None
                )
        except OverloadError as exc:  # our own throttle said no: nothing was sent
            reply = LspReply(
                Outcome(
                    OutcomeKind.TRANSIENT,
                    code="THROTTLE",
                    detail=exc.message,
                    retry_after=exc.retry_after,
                )
            )
        outcome = reply.outcome
        now = self.clock.now()
        self._feed_breaker(outcome)
        log.info(
            "lsp_query",
            run_id=run_id,
            item_id=item.id,
            attempt=item.attempts,
            outcome=outcome.kind.value,
            code=outcome.code,
            sources=len(outcome.sources),
            dispenses=len(outcome.dispenses),
            failed_sources=len(outcome.failed_sources),
            elapsed_ms=round(reply.elapsed_seconds * 1000, 1),
        )
        audit = query_audit_event(
            item,
            params,
            outcome,
            schedule=schedule,
            mandate=mandate,
            system_uzi=self.config.system_uzi,
            application_id=self.config.application_id,
            now=now,
        )
        dispenses = with_provenance(reply, params, run_id=run_id, schedule=schedule, now=now)
        partial = bool(outcome.failed_sources) and outcome.kind in (
            OutcomeKind.RECORDS,
            OutcomeKind.NO_RECORDS,
        )
        retryable = outcome.kind is OutcomeKind.TRANSIENT or partial
        if retryable and item.attempts < self.config.max_attempts:
            # A partial answer keeps what came and asks again for the missing pharmacies.
            self._store_call(
                self.runs.record_retry,
                item.id,
                code="PARTIAL" if partial else outcome.code,
                next_attempt_at=now
                + backoff_delay(
                    item.attempts,
                    outcome,
                    base=self.config.backoff_base,
                    maximum=self.config.backoff_max,
                    rng=self.rng,
                ),
                audit=audit,
                dispenses=dispenses,
            )
            return None
        kind = outcome.kind
        detail = outcome.detail
        if partial:
            detail = f"partial answer: no data from {', '.join(outcome.failed_sources)}"[:500]
        if kind is OutcomeKind.TRANSIENT:
            kind = OutcomeKind.FAILED
            detail = f"gave up after {item.attempts} attempts: {outcome.code or 'transient'}"
        self._store_call(
            self.runs.record_outcome,
            item.id,
            outcome_kind=kind,
            outcome_code=outcome.code,
            detail=detail,
            dispenses=dispenses,
            audit=audit,
        )
        if stops_run(outcome.code):
            raise StopError(
                "the LSP reports our message as malformed; run stopped",
                code=outcome.code,
                run_id=run_id,
            )
        return kind.value

    def _feed_breaker(self, outcome: Outcome) -> None:
        if outcome.kind is OutcomeKind.TRANSIENT:
            if outcome.code != "THROTTLE":
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
