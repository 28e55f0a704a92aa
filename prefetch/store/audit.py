"""The NEN 7513 audit log: append-only (database triggers refuse UPDATE and DELETE) and
a hash chain (`audit_chain`): every writer goes through `insert_audit`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlalchemy import Engine, Table, func, select
from sqlalchemy.orm import Session

from prefetch.domain.bsn import Bsn
from prefetch.errors import InvalidValueError
from prefetch.store._support import Sessions, bsn_value
from prefetch.store.audit_chain import lock_chain_head, row_hash
from prefetch.store.records import AuditAction, AuditEvent
from prefetch.store.tables import AuditRow


def insert_audit(session: Session, event: AuditEvent) -> None:
    """Add the event to the caller's transaction (used by every writer that audits).

    It links the row into the hash chain and holds the chain lock until the transaction
    ends: make it the last statement of a short write transaction.
    """
    insert_audits(session, [event])


def insert_audits(session: Session, events: Sequence[AuditEvent]) -> None:
    """Add the events, in order, to the caller's transaction: one chain lock and one
    multi-row insert for all of them (see `insert_audit`)."""
    if not events:
        return
    next_id, prev_hash = lock_chain_head(session)
    rows: list[dict[str, object]] = []
    for offset, event in enumerate(events):
        values = _values(event)
        digest = row_hash(prev_hash, values)
        values.update(id=next_id + offset, prev_hash=prev_hash, row_hash=digest)
        rows.append(values)
        prev_hash = digest
    session.connection().execute(cast("Table", AuditRow.__table__).insert(), rows)


def _values(event: AuditEvent) -> dict[str, object]:
    return {
        "event_id": event.event_id,
        "event_type": event.event_type,
        "action_code": event.action.value,
        "occurred_at": event.occurred_at,
        "user_id": event.user_id,
        "user_role": event.user_role,
        "responsible_user_id": event.responsible_user_id,
        "patient_bsn": event.patient_bsn,
        "object_detail": dict(event.object_detail),
        "authorisation_basis": event.authorisation_basis,
        "source_system": event.source_system,
        "source_workstation": event.source_workstation,
        "outcome": event.outcome,
    }


def event_of_row(row: AuditRow) -> AuditEvent:
    return AuditEvent(
        event_id=row.event_id,
        event_type=row.event_type,
        action=AuditAction(row.action_code),
        occurred_at=row.occurred_at,
        user_id=row.user_id,
        user_role=row.user_role,
        responsible_user_id=row.responsible_user_id,
        patient_bsn=row.patient_bsn,
        object_detail=row.object_detail,
        authorisation_basis=row.authorisation_basis,
        source_system=row.source_system,
        source_workstation=row.source_workstation,
        outcome=row.outcome,
    )


class AuditLog:
    """`AuditStore` on SQLAlchemy (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = Sessions(engine)

    def append(self, event: AuditEvent) -> None:
        with self._sessions.write() as session:
            insert_audit(session, event)

    def for_patient(self, bsn: Bsn | str) -> list[AuditEvent]:
        with self._sessions.read() as session:
            rows = session.scalars(
                select(AuditRow)
                .where(AuditRow.patient_bsn == bsn_value(bsn))
                .order_by(AuditRow.occurred_at, AuditRow.id)
            )
            return [event_of_row(row) for row in rows]

    def unanswered_queries(self, run_id: str) -> int:
        """The run's queries with a `lsp_query` (sent) row and no `lsp_query_answer` row:
        in flight now, or lost with a process that stopped (asked again while attempts
        were left). One scan of the run's query rows: for a status, not a hot path."""
        of_run = AuditRow.object_detail["run_id"].as_string() == run_id
        with self._sessions.read() as session:
            counts = dict(
                session.execute(
                    select(AuditRow.event_type, func.count())
                    .where(AuditRow.event_type.in_(("lsp_query", "lsp_query_answer")), of_run)
                    .group_by(AuditRow.event_type)
                ).all()
            )
        return max(0, int(counts.get("lsp_query", 0)) - int(counts.get("lsp_query_answer", 0)))

    def recent(self, limit: int) -> list[AuditEvent]:
        if limit < 1:
            raise InvalidValueError("limit must be at least 1", limit=limit)
        with self._sessions.read() as session:
            rows = session.scalars(
                select(AuditRow)
                .order_by(AuditRow.occurred_at.desc(), AuditRow.id.desc())
                .limit(limit)
            )
            return [event_of_row(row) for row in rows]
