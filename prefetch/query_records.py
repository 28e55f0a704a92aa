"""What one LSP query leaves behind (pure): provenance for every dispense received, and
the NEN 7513 audit events: `lsp_query` (outcome `sent`), written with the claim before the
query leaves, and `lsp_query_answer`, written with the answer and naming the first.

Also the two rules that decide what happens after an answer: when a code stops the whole
run, and how long to wait before asking again.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid

from prefetch.domain.dispense import Dispense, DispenseProvenance
from prefetch.domain.outcome import Outcome
from prefetch.domain.people import Mandate
from prefetch.domain.schedule import Schedule
from prefetch.hl7v3.codes import CodeClass, rule_for
from prefetch.hl7v3.params import QueryParams, id_key
from prefetch.ports import LspReply
from prefetch.store.records import AuditAction, AuditEvent, ClaimedItem, DetailValue

QUERY_SENT = "lsp_query"  # the query left (written before it does)
QUERY_ANSWER = "lsp_query_answer"  # its answer (or the failure to get one)


def stops_run(code: str | None) -> bool:
    """Codes that mean our own message or token is wrong: stop the whole run and alert.

    Our bugs per the LSP code table (SYN105, VALIDATIEFOUT) and WS-Security faults
    (`wsse:*`: the LSP refused our token or signature) would fail every other query too.
    """
    if not code:
        return False
    rule = rule_for(code)
    return (rule is not None and rule.cls is CodeClass.OUR_BUG) or code.startswith("wsse:")


def backoff_delay(
    attempts: int,
    outcome: Outcome,
    *,
    base: dt.timedelta,
    maximum: dt.timedelta,
    rng: random.Random,
) -> dt.timedelta:
    """Exponential backoff with jitter; never shorter than the LSP's Retry-After."""
    delay = min(base.total_seconds() * (2 ** max(attempts - 1, 0)), maximum.total_seconds())
    delay *= 0.5 + rng.random() / 2  # jitter: spread the retries of a whole clinic day
    if outcome.retry_after:
        delay = max(delay, outcome.retry_after)
    return dt.timedelta(seconds=delay)


def with_provenance(
    reply: LspReply, params: QueryParams, *, run_id: str, schedule: Schedule, now: dt.datetime
) -> list[tuple[Dispense, DispenseProvenance]]:
    """Every dispense of the answer with where it came from (BgZ external data)."""
    return [
        (
            dispense,
            DispenseProvenance(
                pharmacy_ura=source.organization_ura or dispense.pharmacy_ura,
                pharmacy_name=source.organization_name,
                source_application_id=source.application_id,
                source_system_uzi=source.system_uzi,
                batch_message_id=reply.batch_message_id,
                item_message_id=source.message_id,
                query_id=id_key(params.query_id),
                fetched_at=now,
                run_id=run_id,
                responsible_uzi=schedule.overseer.uzi_number,
                responsible_name=schedule.overseer.name,
            ),
        )
        for source in reply.outcome.sources
        for dispense in source.dispenses
    ]


def _query_event(
    item: ClaimedItem,
    params: QueryParams,
    *,
    event_type: str,
    outcome: str,
    detail: dict[str, DetailValue],
    schedule: Schedule,
    mandate: Mandate | None,
    system_uzi: str,
    application_id: str,
    now: dt.datetime,
) -> AuditEvent:
    """The NEN 7513 line for one query: who (our system), under whose responsibility
    (the overseer), for which patient, on what basis (the mandate), with what result."""
    return AuditEvent(
        event_id=uuid.uuid4().hex,
        event_type=event_type,
        action=AuditAction.EXECUTE,
        occurred_at=now,
        user_id=system_uzi,
        user_role="system",
        responsible_user_id=schedule.overseer.uzi_number,
        patient_bsn=item.bsn,
        object_detail={
            "query_id": id_key(params.query_id),
            "message_id": id_key(params.message_id),
            "run_id": item.run_id,
            "attempt": item.attempts,
            **detail,
        },
        authorisation_basis=mandate.id if mandate else None,
        source_system=f"prefetch/app-{application_id}",
        outcome=outcome,
    )


def query_sent_event(
    item: ClaimedItem,
    params: QueryParams,
    *,
    schedule: Schedule,
    mandate: Mandate | None,
    system_uzi: str,
    application_id: str,
    now: dt.datetime,
) -> AuditEvent:
    """Written before the query leaves (outcome `sent`), with the claim of the item."""
    return _query_event(
        item,
        params,
        event_type=QUERY_SENT,
        outcome="sent",
        detail={},
        schedule=schedule,
        mandate=mandate,
        system_uzi=system_uzi,
        application_id=application_id,
        now=now,
    )


def query_answer_event(
    item: ClaimedItem,
    params: QueryParams,
    outcome: Outcome,
    *,
    sent_event_id: str,
    schedule: Schedule,
    mandate: Mandate | None,
    system_uzi: str,
    application_id: str,
    now: dt.datetime,
) -> AuditEvent:
    """Appended when the answer is in; `query_event` names the `sent` row it completes."""
    return _query_event(
        item,
        params,
        event_type=QUERY_ANSWER,
        outcome=outcome.kind.value,
        detail={
            "query_event": sent_event_id,
            "dispenses": len(outcome.dispenses),
            "sources": len(outcome.sources),
            "code": outcome.code,
        },
        schedule=schedule,
        mandate=mandate,
        system_uzi=system_uzi,
        application_id=application_id,
        now=now,
    )
