"""Builders for the audit tests: events, tampering as the database owner would."""

from __future__ import annotations

import datetime as dt
import itertools

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from prefetch.store.audit_chain import row_hash
from prefetch.store.audit_verify import row_values
from prefetch.store.records import AuditAction, AuditEvent
from prefetch.store.tables import AuditRow

BSN_A = "999990019"
BSN_B = "999990020"
T0 = dt.datetime(2026, 11, 20, 18, 0, tzinfo=dt.UTC)
PASSPHRASE = b"audit-test-passphrase-0123"

_ids = itertools.count(1)


def event(
    bsn: str | None = BSN_A,
    *,
    at: dt.datetime = T0,
    event_type: str = "lsp_query",
    action: AuditAction = AuditAction.EXECUTE,
    outcome: str = "records",
) -> AuditEvent:
    return AuditEvent(
        event_id=f"ev-{next(_ids)}",
        event_type=event_type,
        action=action,
        occurred_at=at,
        user_id="900000012",
        user_role="system",
        responsible_user_id="000018389",
        patient_bsn=bsn,
        object_detail={"query_id": "2.16.528.1^q1", "dispenses": 2, "ratio": 0.5},
        authorisation_basis="mandate-1",
        source_system="prefetch/app-4242",
        outcome=outcome,
    )


def as_owner_without_guards(engine: Engine, *statements: str, **params: object) -> None:
    """Run `statements` the way a database owner could: with the append-only triggers off
    (PostgreSQL: DISABLE TRIGGER; SQLite: DROP TRIGGER), then put them back."""
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
            for statement in statements:
                connection.execute(text(statement), params)
            connection.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
            return
        connection.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
        connection.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
        for statement in statements:
            connection.execute(text(statement), params)


def _stored(engine: Engine) -> list[AuditRow]:
    with Session(engine) as session:
        return list(session.scalars(select(AuditRow).order_by(AuditRow.id)))


def _set_hashes(engine: Engine, row_id: int, prev: str, new: str) -> None:
    as_owner_without_guards(
        engine,
        "UPDATE audit_log SET prev_hash = :p, row_hash = :h WHERE id = :i",
        p=prev,
        h=new,
        i=row_id,
    )


def rehash_row(engine: Engine, row_id: int) -> None:
    """Give row `row_id` a correct hash of its own content (its link left as it is)."""
    [row] = [r for r in _stored(engine) if r.id == row_id]
    assert row.prev_hash is not None
    _set_hashes(engine, row_id, row.prev_hash, row_hash(row.prev_hash, row_values(row)))


def rehash_from(engine: Engine, first_id: int) -> None:
    """Recompute every hash from row `first_id` on, as a careful forger would."""
    prev: str | None = None
    for row in _stored(engine):
        if row.id >= first_id:
            assert prev is not None
            new = row_hash(prev, row_values(row))
            _set_hashes(engine, row.id, prev, new)
            prev = new
        else:
            prev = row.row_hash
