"""Every port of prefetch, each with its contract. Adapters implement them; only the
composition root (`prefetch.composition`) constructs adapters and passes them in.

| port            | adapters                                                       |
|-----------------|----------------------------------------------------------------|
| `LspGateway`    | `prefetch.lsp.client.LspClient`, `prefetch.lsp.fake.FakeLspGateway` |
| `RateLimiter`   | `prefetch.throttle.Throttle` (one process)                     |
| `Clock`         | `prefetch.clock.SystemClock`, `prefetch.clock.FakeClock`       |
| `RunStore` ...  | `prefetch.store.repositories` (SQLAlchemy, SQLite/PostgreSQL)  |
| `LeaderLock`    | `prefetch.store.locks` (advisory lock / lock row)              |

Appointment intake has its own port with the adapters (`prefetch.sources`).

Store ports: all times are aware datetimes (stored and returned as UTC). BSNs are passed as
`Bsn` or as the nine-digit string and are never put in an exception message. Database
failures raise `StopError` (integrity: a bug or a conflicting writer) or
`StoreUnavailableError` (the database is unreachable or busy); every method is one
transaction, so a failure leaves nothing half written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from prefetch.domain.bsn import Bsn
from prefetch.domain.dispense import Dispense, DispenseProvenance
from prefetch.domain.outcome import Outcome, OutcomeKind
from prefetch.domain.people import Mandate
from prefetch.domain.run import (
    ClaimedItem,
    ItemRecord,
    NewItem,
    RunKind,
    RunRecord,
    RunState,
    RunSummary,
)
from prefetch.hl7v3.params import QueryParams
from prefetch.store.records import AuditEvent, Recording, RecordResult, StoredDispense


@dataclass(frozen=True, slots=True)
class LspReply:
    """What one query produced: the classified outcome and the batch it came in."""

    outcome: Outcome
    batch_message_id: str | None = None  # root^extension of the MCCI_IN200101
    elapsed_seconds: float = 0.0


class LspGateway(Protocol):
    """Sends one `QURX_IN990111NL` and classifies the answer.

    Contract: every transport problem, HTTP overload and transient LSP code comes back as
    an `Outcome` of kind TRANSIENT (with `retry_after` when the LSP gave one); an answer
    that does not belong to the query, or cannot be used, is FAILED with a code. It raises
    only `StopError`s (our own bug, unusable keys): those stop the run.
    """

    def query(self, params: QueryParams, *, mandate_token: bytes | None) -> LspReply: ...


@runtime_checkable
class TwoPhaseGateway(LspGateway, Protocol):
    """An `LspGateway` that builds and signs a query before its send time and sends it
    later: `query(p, mandate_token=t)` is `send(p, envelope(p, mandate_token=t))`. The
    engine signs while it waits for the send slot, so the query leaves at its send time.

    `send(..., on_wire=wait)` calls `wait()` once, when the query is about to leave (its
    connection open), and sends nothing if it raises (the exception propagates): the
    send slot's time is kept on the wire, not before a slow connect."""

    def envelope(self, params: QueryParams, *, mandate_token: bytes | None) -> bytes: ...
    def send(
        self, params: QueryParams, data: bytes, *, on_wire: Callable[[], None] | None = None
    ) -> LspReply: ...


class Clock(Protocol):
    """The one clock: wall time for records, monotonic time for intervals, and sleep.

    Contract: `now()` is aware UTC; `monotonic()` never goes back; `sleep(s)` lets at least
    `s` seconds of `monotonic()` (and `now()`) pass. A fake clock advances both on sleep.
    """

    def now(self) -> dt.datetime: ...
    def monotonic(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class Breaker(Protocol):
    """A circuit breaker: `closed` (calls go), `open` (none go), `half_open` (one trial
    call goes; its success closes, its failure opens again)."""

    @property
    def state(self) -> str: ...
    def success(self) -> None: ...
    def failure(self) -> None: ...


class SendSlot(Protocol):
    """A send slot reserved ahead of its send time (`RateLimiter.reserve`). Between the
    reservation and `wait()` the caller prepares its query (claim, build, sign); `wait()`
    returns at the send time (a slot whose time passed while preparing is exchanged for a
    new one, so a late query never breaks the rate); the query is sent right after.
    `cancel()`: nothing is sent with this slot; `release()`: the answer is in (the
    `reserve` block releases its slot when it ends)."""

    def wait(self) -> None: ...
    def cancel(self) -> None: ...
    def release(self) -> None: ...


class RateLimiter(Protocol):
    """The gate in front of every LSP call; it protects a national service.

    Contract: `with limiter.slot(): send()` (or `with limiter.reserve() as slot: prepare();
    slot.wait(); send()`) sends only within the configured rate (no
    window of one second sees more) and in-flight cap, counted across everything that
    shares the limiter; it fails closed: when it cannot decide (an error, no slot within
    its time-out, an open breaker) it raises `OverloadError` and nothing may be sent.
    `pause(s)` honours an overload signal (Retry-After): no slot is handed out for `s`
    seconds. `in_flight` is the number of slots held now. The engine reports every answer
    to `breaker` (transient -> failure, anything else -> success).
    """

    @property
    def breaker(self) -> Breaker: ...
    @property
    def in_flight(self) -> int: ...
    def slot(self) -> AbstractContextManager[None]: ...
    def reserve(self) -> AbstractContextManager[SendSlot]: ...
    def reserve_many(self, count: int, lead: float = 0.0) -> Sequence[SendSlot]:
        """At least one and up to `count` slots, each to be released or cancelled; the
        first send time at least `lead` seconds from now (time to prepare the queries)."""
        ...

    def pause(self, seconds: float) -> None: ...


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who holds a named lock: process id and host, since when, last sign of life."""

    name: str
    pid: int
    host: str
    since: dt.datetime
    heartbeat_at: dt.datetime

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host} (since {self.since:%Y-%m-%d %H:%M:%S} UTC)"


class LeaderLock(Protocol):
    """A named lock held by at most one process at a time, across processes and machines
    sharing the database (one run per schedule and clinic day; one daemon leader).

    Contract: `try_acquire(name)` takes the lock without waiting and returns True, or
    returns False while another live holder has it. A holder that died (its process ended,
    its database session closed, or its heartbeat is older than the lock's time-out) does
    not block: the lock is taken over. `holder(name)` says who holds it (None: free).
    `release(name)` gives up a lock this object holds (no-op otherwise). While held, the
    adapter keeps the lock alive by itself (heartbeat).
    """

    def try_acquire(self, name: str) -> bool: ...
    def holder(self, name: str) -> LockHolder | None: ...
    def release(self, name: str) -> None: ...


class RunStore(Protocol):
    """The durable run ledger and work queue (one item per patient per run)."""

    def create_run(  # noqa: PLR0917 - the contract's positional signature
        self,
        run_id: str,
        schedule_id: str,
        clinic_day: dt.date,
        kind: RunKind | str,
        created_at: dt.datetime,
        items: Iterable[NewItem],
    ) -> bool:
        """Create run `run_id` (state planned) with its items, in one transaction.

        Items with a skip reason start as skipped, the others as pending. Returns False,
        inserting nothing, when the run already exists: the same id, or for a scheduled
        run the same schedule and clinic day (one scheduled run per day; manual runs may
        repeat). That is a resume, and the existing items are left untouched.
        """
        ...

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or None."""
        ...

    def find_run(
        self, schedule_id: str, clinic_day: dt.date, kind: RunKind | str
    ) -> RunRecord | None:
        """The run for this schedule, clinic day and kind (for manual runs the latest
        created), or None."""
        ...

    def extend_run(self, run_id: str, items: Iterable[NewItem], at: dt.datetime) -> tuple[int, int]:
        """A later export of the same clinic day: add the items of patients not yet in the
        run (a finished run is planned again so that they are queried; those already in
        it are left alone), and skip as `cancelled` the pending items whose patient is now
        cancelled (`skip_reason == "cancelled"` in `items`). Returns (added, withdrawn).
        An aborted run is not changed."""
        ...

    def start_run(self, run_id: str, at: dt.datetime) -> None:
        """planned or incomplete -> running (started_at = at the first time). A running
        run stays running (resume); a finished or aborted run raises StopError."""
        ...

    def finish_run(
        self, run_id: str, at: dt.datetime, *, state: RunState = RunState.FINISHED
    ) -> RunSummary:
        """-> `state` (finished, aborted, or incomplete: stopped with items left); stores
        the summary counts on the run and returns them."""
        ...

    def claim_next(
        self,
        run_id: str,
        worker_id: str,
        now: dt.datetime,
        *,
        lease: dt.timedelta = ...,
        sent: Callable[[ClaimedItem], AuditEvent] | None = None,
    ) -> ClaimedItem | None:
        """Atomically take one item and mark it in_flight for `worker_id` (attempts + 1,
        sent_at = now, lease_until = now + lease): a retry_wait item with
        next_attempt_at <= now first (earliest due), else the pending item with the lowest
        id. No item is ever handed to two workers at once. None when nothing is due now.

        `sent(item)` builds the audit event of the query about to leave; it is appended in
        the SAME transaction, so a query is never sent without its audit row (a crash
        leaves a `sent` row without an answer, never a query without a row). The caller
        holds its rate-limiter slot while claiming and sends right after."""
        ...

    def claim_batch(
        self,
        run_id: str,
        worker_id: str,
        now: dt.datetime,
        *,
        count: int,
        lease: dt.timedelta = ...,
        sent: Callable[[ClaimedItem], AuditEvent] | None = None,
        fresh_first: bool = False,
    ) -> list[ClaimedItem]:
        """`claim_next` for up to `count` items in one transaction (each with its `sent`
        audit row), in claim order; empty when nothing is due now. `fresh_first`: pending
        items first, then due retries with the fewest attempts (a breaker's trial)."""
        ...

    def extend_leases(self, worker_id: str, item_ids: Sequence[int], until: dt.datetime) -> int:
        """Heartbeat: move lease_until of the listed items `worker_id` still holds to
        `until`; return how many it still holds."""
        ...

    def reclaim_expired(
        self, run_id: str, now: dt.datetime, *, max_attempts: int, everything: bool = False
    ) -> list[dt.datetime]:
        """Items in flight whose lease ended before `now` (every item in flight with
        `everything`, for a process that holds the run's lock and so knows their workers
        are gone) go back to retry_wait, due now; an item that used its `max_attempts`th
        attempt fails (code LOST_IN_FLIGHT) instead. Their attempts stay counted: the query
        may have reached the LSP. Returns the send times of the reclaimed queries (they
        may still be at the LSP)."""
        ...

    def next_due_at(self, run_id: str, now: dt.datetime) -> dt.datetime | None:
        """When an item can next be claimed or reclaimed: `now` if one is due, else the
        earliest retry time or lease end; None when every item is final."""
        ...

    def record_outcome(
        self,
        item_id: int,
        *,
        outcome_kind: OutcomeKind,
        outcome_code: str | None,
        detail: str | None,
        dispenses: Sequence[tuple[Dispense, DispenseProvenance]],
        audit: AuditEvent,
        worker_id: str | None = None,
    ) -> RecordResult:
        """Store a final outcome, all in ONE transaction: append the audit event (the
        answer), upsert the dispenses by their own id (provenance moved to the latest
        fetch, first_fetched_at kept), mark the item done (failed for OutcomeKind.FAILED).
        If any part fails, nothing is persisted. With `worker_id`, an item that worker no
        longer holds (its lease ran out) gets only the audit event, and the result says
        `lease_lost`. TRANSIENT is not final: use `record_retry`. A skipped item or an
        unknown id raises StopError."""
        ...

    def record_retry(
        self,
        item_id: int,
        *,
        code: str | None,
        next_attempt_at: dt.datetime,
        audit: AuditEvent,
        dispenses: Sequence[tuple[Dispense, DispenseProvenance]] = (),
        worker_id: str | None = None,
    ) -> RecordResult:
        """Mark the item retry_wait until `next_attempt_at` and append the audit event,
        in one transaction (`worker_id` as for `record_outcome`). `dispenses` (from a
        partial answer: some pharmacies answered, one timed out) are upserted in the same
        transaction, so nothing that came is lost while the item waits to ask again."""
        ...

    def record_many(self, recordings: Sequence[Recording]) -> list[RecordResult]:
        """Several answers in ONE transaction, each as `record_outcome` (a final outcome)
        or `record_retry` (`next_attempt_at` set) would record it; one result each."""
        ...

    def list_runs(self, limit: int = 20) -> list[RunRecord]:
        """The latest `limit` runs, newest first."""
        ...

    def summary(self, run_id: str) -> RunSummary:
        """Counts by state, outcome kind and skip reason, and dispenses received."""
        ...

    def items(self, run_id: str) -> list[ItemRecord]:
        """All items of the run, in insertion order."""
        ...

    def queried_elsewhere(
        self, clinic_day: dt.date, schedule_id: str, bsns: Iterable[str]
    ) -> dict[str, str]:
        """BSN -> the id of another schedule whose scheduled run for the same clinic day
        queries (or queried) that patient; the run created first wins. One query per
        patient per night across overlapping schedules (eligibility's `duplicate`)."""
        ...


class DispenseStore(Protocol):
    """Read side of the stored dispenses."""

    def for_patient(self, bsn: Bsn | str) -> list[StoredDispense]:
        """Every stored dispense of the patient, newest dispensed_on first."""
        ...

    def count(self) -> int:
        """Number of stored dispenses (one per dispense id)."""
        ...

    def last_fetched_at(self, bsn: Bsn | str) -> dt.datetime | None:
        """When the patient's data were last fetched (for the "fresh" skip rule): the
        latest of their dispenses' fetched_at and of the times their run items got an
        answer (records, no_records, no_registrations); refused and failed queries do not
        count. None if never."""
        ...

    def last_fetched_at_many(self, bsns: Iterable[Bsn | str]) -> dict[str, dt.datetime]:
        """`last_fetched_at` of many patients in a few queries (planning a big day), keyed
        by BSN value; patients never fetched are absent."""
        ...


class AuditStore(Protocol):
    """The NEN 7513 log. Append-only, enforced by the database."""

    def append(self, event: AuditEvent) -> None:
        """Write one event in its own transaction. A duplicate event id raises StopError."""
        ...

    def for_patient(self, bsn: Bsn | str) -> list[AuditEvent]:
        """Who accessed this patient's data, oldest first."""
        ...

    def recent(self, limit: int) -> list[AuditEvent]:
        """The latest `limit` events, newest first."""
        ...


class MandateStore(Protocol):
    """Mandates from responsible clinicians to assistants or the system."""

    def add(self, mandate: Mandate) -> None:
        """Insert a new mandate; a mandate with the same id raises ConfigError and is
        left as it is (registration never overwrites)."""
        ...

    def save(self, mandate: Mandate) -> None:
        """Insert or replace the mandate with this id (created_at kept on replace;
        a revoked mandate stays revoked)."""
        ...

    def get(self, mandate_id: str) -> Mandate | None:
        """The mandate (revoked or not), or None."""
        ...

    def for_schedule(self, schedule_id: str, at: dt.datetime) -> list[Mandate]:
        """Mandates covering `schedule_id` at `at`, not revoked by then; latest
        valid_until first."""
        ...

    def revoke(self, mandate_id: str, at: dt.datetime) -> bool:
        """Revoke from `at` on; False if unknown or already revoked."""
        ...
