"""The send path of one run in one process: a dispatcher, a pool of senders, a recorder.

- The dispatcher (the thread that calls `run`) reserves send slots in batches from the
  rate limiter, claims as many items in one transaction (each with the `sent` audit row
  of its query), builds and signs their queries, and hands each to a sender. It asks for
  slots far enough ahead (`lead`) that a query is signed before its send time.
- A sender waits for its slot's send time, sends, releases the slot when the answer is
  in, tells the breaker, and queues the answer.
- The recorder writes the queued answers in batches, one transaction per batch
  (`RunStore.record_many`), and wakes the dispatcher: a retry may now be due, or the run
  may be over.

Nothing polls on a fixed beat: the dispatcher waits for a sender or the recorder to say
something changed, or for the next item to come due (at most `idle_poll_seconds`, for
other processes' items).
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prefetch.clock import SystemClock
from prefetch.domain.outcome import Outcome, OutcomeKind
from prefetch.errors import OverloadError, StopError, StoreUnavailableError
from prefetch.logging import get_logger
from prefetch.ports import LspReply, SendSlot, TwoPhaseGateway
from prefetch.query_step import Sent

if TYPE_CHECKING:
    from prefetch.engine import Prefetcher, RunContext

log = get_logger("prefetch.engine")

NOT_SENT = "NOT_SENT"  # the attempt ended before its query left (no send slot in time)
BATCH_MAX = 32  # items claimed (and answers recorded) per transaction at most
GATHER_SECONDS = 0.01  # how long the dispatcher and the recorder wait to fill a batch
_PREP_GUESS_S = 0.01  # claim + sign per item, until measured


@dataclass(slots=True)
class _Job:
    sent: Sent
    data: bytes | None  # the signed envelope (a two-phase gateway), else built on send
    slot: SendSlot


class SendPipeline:
    def __init__(self, engine: Prefetcher, ctx: RunContext) -> None:
        self._engine = engine
        self._ctx = ctx
        self._workers = max(1, engine.config.workers)
        self._min_batch = max(1, self._workers // 4)
        self._real_time = isinstance(engine.clock, SystemClock)
        self._changed = threading.Condition()
        self._outstanding = 0  # handed to a sender, not yet recorded
        self._answers: queue.Queue[tuple[Sent, LspReply] | None] = queue.Queue()
        self._prep_s = _PREP_GUESS_S  # moving average of claim + sign per item
        self._token = ctx.step.mandate.token_xml if ctx.step.mandate else None

    # ------------------------------------------------------------------ run
    def run(self) -> None:
        """Dispatch until every item is final, the run must stop, or its deadline passed;
        then let the queries in flight finish and record them."""
        recorder = threading.Thread(
            target=self._guarded, args=(self._record_loop,), name="prefetch-recorder"
        )
        recorder.start()
        pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._workers, thread_name_prefix="prefetch-sender"
        )
        try:
            self._guarded(lambda: self._dispatch_loop(pool))
        finally:
            pool.shutdown(wait=True)
            self._answers.put(None)
            recorder.join()

    def _guarded(self, body: Callable[[], None]) -> None:
        """Any error stops the run (never finishes it with items lost)."""
        engine, ctx = self._engine, self._ctx
        try:
            body()
        except StopError as exc:
            engine.stop_run(ctx, exc.message, str(exc))
        except Exception as exc:  # a bug: stop instead of reporting a finished run
            log.exception("worker_crashed", run_id=ctx.run_id, error=type(exc).__name__)
            engine.stop_run(ctx, f"internal error ({type(exc).__name__})", type(exc).__name__)
        finally:
            with self._changed:
                self._changed.notify_all()

    # ------------------------------------------------------------------ dispatch
    def _dispatch_loop(self, pool: concurrent.futures.Executor) -> None:
        engine, ctx = self._engine, self._ctx
        idle = engine.config.idle_poll_seconds
        look = False  # the last claim found nothing: look when the next item is due
        while engine.stop_reason is None:
            now = engine.clock.now()
            if ctx.deadline is not None and now >= ctx.deadline:
                return
            breaker = engine.limiter.breaker.state
            if breaker == "open":
                self._wait(idle)
                continue
            with self._changed:
                free = self._workers - self._outstanding
                if 0 < free < self._min_batch and self._outstanding > 0 and self._real_time:
                    # Gather a few free senders: one transaction for several claims.
                    self._changed.wait(timeout=GATHER_SECONDS)
                    free = self._workers - self._outstanding
            if free <= 0:
                self._wait(idle)
                continue
            if look:
                due = engine.until_due(ctx.run_id, now)
                with self._changed:
                    outstanding = self._outstanding
                if due is None and outstanding == 0:
                    return  # every item is final
                if due is None or due > 0:
                    self._wait(min(due if due is not None else idle, idle))
                    continue
            # Half-open: one trial query (the breaker hands out one slot), on the patient
            # with the most attempts left, so an outage exhausts nobody's attempts.
            trial = breaker == "half_open"
            count = 1 if trial else min(free, BATCH_MAX)
            try:
                slots = engine.limiter.reserve_many(count, lead=self._lead(count))
            except OverloadError as exc:  # no slot: nothing was claimed, nothing sent
                self._wait(min(max(exc.retry_after or 0.0, 0.01), idle))
                continue
            look = not self._dispatch(pool, slots, fresh_first=trial)

    def _lead(self, count: int) -> float:
        """How far ahead the first of `count` slots must be: time to claim and sign."""
        return min(self._prep_s * (count + 1), 1.0)

    def _dispatch(
        self,
        pool: concurrent.futures.Executor,
        slots: Sequence[SendSlot],
        *,
        fresh_first: bool = False,
    ) -> bool:
        """Claim an item for each slot, sign its query and hand it to a sender; unused
        slots are cancelled. False when no item was due."""
        engine, ctx = self._engine, self._ctx
        started = time.perf_counter()
        try:
            claimed = engine.claim(ctx, len(slots), fresh_first=fresh_first)
        except BaseException:
            for slot in slots:
                slot.cancel()
            raise
        for slot in slots[len(claimed) :]:
            slot.cancel()
        gateway = engine.gateway
        for sent, slot in zip(claimed, slots, strict=False):
            data = None
            if isinstance(gateway, TwoPhaseGateway):
                assert sent.params is not None  # set by the claim
                data = gateway.envelope(sent.params, mandate_token=self._token)
            with self._changed:
                self._outstanding += 1
            pool.submit(self._send, _Job(sent, data, slot))
        if claimed:
            per_item = (time.perf_counter() - started) / len(claimed)
            self._prep_s = 0.8 * self._prep_s + 0.2 * per_item
        return bool(claimed)

    def _wait(self, seconds: float) -> None:
        """Until a sender or the recorder says something changed, or `seconds` pass. On
        a fake clock the clock sleeps (which moves time on) only when nothing is under
        way here: queries in flight are waited for in real time."""
        with self._changed:
            if self._real_time:
                self._changed.wait(timeout=max(seconds, 0.001))
                return
            if self._outstanding > 0:
                self._changed.wait(timeout=0.05)
                return
        self._engine.sleep(max(seconds, 0.001))

    # ------------------------------------------------------------------ send
    def _send(self, job: _Job) -> None:
        engine, ctx = self._engine, self._ctx
        params = job.sent.params
        assert params is not None  # set by the claim
        left = False

        def on_wire() -> None:  # the send time is kept when the query goes on the wire
            nonlocal left
            job.slot.wait()
            left = True

        try:
            try:
                gateway = engine.gateway
                if job.data is not None and isinstance(gateway, TwoPhaseGateway):
                    reply = gateway.send(params, job.data, on_wire=on_wire)
                else:
                    on_wire()
                    reply = gateway.query(params, mandate_token=self._token)
            except (OverloadError, StoreUnavailableError) as exc:
                if left:
                    raise
                job.slot.cancel()  # no send slot: nothing left
                reply = LspReply(
                    Outcome(OutcomeKind.TRANSIENT, code=NOT_SENT, detail=type(exc).__name__)
                )
        except StopError as exc:  # e.g. our certificate refused: the item's lease runs out
            job.slot.release()
            self._forget(job.sent)
            engine.stop_run(ctx, exc.message, str(exc))
            return
        except Exception as exc:
            job.slot.release()
            self._forget(job.sent)
            log.exception("sender_crashed", run_id=ctx.run_id, error=type(exc).__name__)
            engine.stop_run(ctx, f"internal error ({type(exc).__name__})", type(exc).__name__)
            return
        job.slot.release()
        engine.feed_breaker(reply.outcome)
        self._answers.put((job.sent, reply))

    def _forget(self, sent: Sent) -> None:
        if sent.item is not None:
            self._ctx.let_go([sent.item.id])
        with self._changed:
            self._outstanding -= 1
            self._changed.notify_all()

    # ------------------------------------------------------------------ record
    def _record_loop(self) -> None:
        while True:
            first = self._answers.get()
            if first is None:
                return
            batch = [first]
            finished = False
            linger = time.monotonic() + GATHER_SECONDS
            while len(batch) < BATCH_MAX:
                try:  # a short wait for more answers: one transaction for several
                    more = self._answers.get(timeout=max(linger - time.monotonic(), 0.0))
                except queue.Empty:
                    break
                if more is None:
                    finished = True
                    break
                batch.append(more)
            try:
                self._record(batch)
            except (StopError, StoreUnavailableError) as exc:  # the leases run out
                self._engine.stop_run(self._ctx, exc.message, str(exc))
            except Exception as exc:  # a bug: stop, and keep taking the answers
                log.exception("recorder_crashed", run_id=self._ctx.run_id)
                self._engine.stop_run(
                    self._ctx, f"internal error ({type(exc).__name__})", type(exc).__name__
                )
            if finished:
                return

    def _record(self, batch: list[tuple[Sent, LspReply]]) -> None:
        engine, ctx = self._engine, self._ctx
        try:
            recordings = [ctx.step.recording(sent, reply, ctx.claimant) for sent, reply in batch]
            results = engine.store_call(engine.runs.record_many, recordings)
            for recording, result in zip(recordings, results, strict=True):
                try:
                    final = ctx.step.recorded(recording, result)
                except StopError as exc:
                    engine.stop_run(ctx, exc.message, str(exc))
                    final = None
                if final:
                    ctx.counter.step(final)
        finally:
            ctx.let_go(sent.item.id for sent, _reply in batch if sent.item is not None)
            with self._changed:
                self._outstanding -= len(batch)
                self._changed.notify_all()
