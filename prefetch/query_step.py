"""One query of a run, around the send: the query's values and its `sent` audit row (made
inside the claim's transaction), and after the answer the item's next state (final,
or a retry with backoff) recorded with the answer's audit row and dispenses.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from prefetch.domain.bsn import Bsn
from prefetch.domain.coded import Identifier
from prefetch.domain.outcome import OutcomeKind
from prefetch.domain.people import Clinician, Mandate
from prefetch.domain.run import ClaimedItem, EngineConfig
from prefetch.domain.schedule import Schedule
from prefetch.errors import StopError
from prefetch.hl7v3.params import QueryParams
from prefetch.logging import get_logger
from prefetch.ports import Clock, LspReply
from prefetch.query_records import (
    backoff_delay,
    query_answer_event,
    query_sent_event,
    stops_run,
    with_provenance,
)
from prefetch.store.records import AuditEvent, Recording, RecordResult

log = get_logger("prefetch.engine")


@dataclass
class Sent:
    """What the claim's transaction produced: the item, its query and the `sent` row."""

    params: QueryParams | None = None
    event: AuditEvent | None = None
    item: ClaimedItem | None = field(default=None)


@dataclass(frozen=True, slots=True)
class QueryStep:
    run_id: str
    schedule: Schedule
    mandate: Mandate | None
    look_back: dt.date
    config: EngineConfig
    clock: Clock
    rng: random.Random

    def params(self, item: ClaimedItem) -> QueryParams:
        cfg = self.config
        overseer = self.schedule.overseer
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
            look_back_from=self.look_back,
        )

    def on_claim(self, into: Sent) -> Callable[[ClaimedItem], AuditEvent]:
        """The `sent` callback for `RunStore.claim_next`: builds the query and its row."""

        def sent(item: ClaimedItem) -> AuditEvent:
            into.item = item
            into.params = self.params(item)
            into.event = query_sent_event(
                item,
                into.params,
                schedule=self.schedule,
                mandate=self.mandate,
                system_uzi=self.config.system_uzi,
                application_id=self.config.application_id,
                now=self.clock.now(),
            )
            return into.event

        return sent

    def recording(self, sent: Sent, reply: LspReply, worker_id: str) -> Recording:
        """What to record for the answer: a final outcome, or a retry with its backoff
        (a transient answer or a partial one, while attempts are left). Logs the query."""
        item, params, sent_event = sent.item, sent.params, sent.event
        if item is None or params is None or sent_event is None:
            raise StopError("an answer without its claim", run_id=self.run_id)
        outcome = reply.outcome
        now = self.clock.now()
        log.info(
            "lsp_query",
            run_id=self.run_id,
            item_id=item.id,
            attempt=item.attempts,
            outcome=outcome.kind.value,
            code=outcome.code,
            sources=len(outcome.sources),
            dispenses=len(outcome.dispenses),
            failed_sources=len(outcome.failed_sources),
            elapsed_ms=round(reply.elapsed_seconds * 1000, 1),
        )
        audit = query_answer_event(
            item,
            params,
            outcome,
            sent_event_id=sent_event.event_id,
            schedule=self.schedule,
            mandate=self.mandate,
            system_uzi=self.config.system_uzi,
            application_id=self.config.application_id,
            now=now,
        )
        dispenses = tuple(
            with_provenance(reply, params, run_id=self.run_id, schedule=self.schedule, now=now)
        )
        partial = bool(outcome.failed_sources) and outcome.kind in (
            OutcomeKind.RECORDS,
            OutcomeKind.NO_RECORDS,
        )
        retryable = outcome.kind is OutcomeKind.TRANSIENT or partial
        if retryable and item.attempts < self.config.max_attempts:
            # A partial answer keeps what came and asks again for the missing pharmacies.
            delay = backoff_delay(
                item.attempts,
                outcome,
                base=self.config.backoff_base,
                maximum=self.config.backoff_max,
                rng=self.rng,
            )
            return Recording(
                item.id,
                audit,
                OutcomeKind.TRANSIENT,
                "PARTIAL" if partial else outcome.code,
                dispenses=dispenses,
                next_attempt_at=now + delay,
                worker_id=worker_id,
            )
        kind = outcome.kind
        detail = outcome.detail
        if partial:
            detail = f"partial answer: no data from {', '.join(outcome.failed_sources)}"[:500]
        if kind is OutcomeKind.TRANSIENT:
            kind = OutcomeKind.FAILED
            detail = f"gave up after {item.attempts} attempts: {outcome.code or 'transient'}"
        return Recording(item.id, audit, kind, outcome.code, detail, dispenses, worker_id=worker_id)

    def recorded(self, recording: Recording, result: RecordResult) -> str | None:
        """After the store took `recording`: the final kind for the progress count, or
        None (a retry, or the lease was lost). Raises StopError when the answer stops the
        run (the LSP reports our message as malformed)."""
        if result.lease_lost:  # this process was too slow: the item went back meanwhile
            log.warning("lease_lost", run_id=self.run_id, item_id=recording.item_id)
        if recording.next_attempt_at is None and stops_run(recording.outcome_code):
            raise StopError(
                "the LSP reports our message as malformed; run stopped",
                code=recording.outcome_code,
                run_id=self.run_id,
            )
        if result.lease_lost or recording.next_attempt_at is not None:
            return None
        return recording.outcome_kind.value
