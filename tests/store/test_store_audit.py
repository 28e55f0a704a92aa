"""The audit log: NEN 7513 fields, ordering, append-only enforced by the database."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from store_samples import BSN_A, BSN_B, T0, audit

from prefetch.domain.bsn import Bsn
from prefetch.errors import InvalidValueError, StopError
from prefetch.store.audit import AuditLog
from prefetch.store.records import AuditAction, AuditEvent


def test_append_and_read_back(migrated_engine: Engine) -> None:
    log = AuditLog(migrated_engine)
    first = audit(BSN_A, at=T0)
    view = AuditEvent(
        event_id="view-1",
        event_type="record_view",
        action=AuditAction.READ,
        occurred_at=T0 + dt.timedelta(hours=1),
        user_id="emp-42",
        user_role="pharmacy_assistant",
        responsible_user_id="000018389",
        patient_bsn=BSN_A,
        object_detail={"page": "patient", "dispenses": 3},
        authorisation_basis=None,
        source_system="prefetch-desk",
        source_workstation="ws-apotheek-3",
        outcome="success",
    )
    other = audit(BSN_B, at=T0 + dt.timedelta(minutes=30))
    system = audit(None, at=T0 + dt.timedelta(hours=2), event_type="run_start")
    for event in (view, first, other, system):
        log.append(event)
    assert log.for_patient(BSN_A) == [first, view]
    assert log.for_patient(Bsn(BSN_B)) == [other]
    assert log.recent(2) == [system, view]
    with pytest.raises(InvalidValueError):
        log.recent(0)


def test_duplicate_event_id_is_refused_without_leaking_the_bsn(migrated_engine: Engine) -> None:
    log = AuditLog(migrated_engine)
    log.append(audit(BSN_A, event_id="e1"))
    with pytest.raises(StopError) as info:
        log.append(audit(BSN_A, event_id="e1"))
    assert BSN_A not in str(info.value)
    assert len(log.recent(5)) == 1


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET outcome = 'changed'",
        "DELETE FROM audit_log",
        "UPDATE audit_log SET patient_bsn = NULL WHERE event_id = 'e1'",
    ],
)
def test_database_refuses_update_and_delete(migrated_engine: Engine, statement: str) -> None:
    log = AuditLog(migrated_engine)
    log.append(audit(BSN_A, event_id="e1"))
    with pytest.raises(DBAPIError, match="append-only"), migrated_engine.begin() as connection:
        connection.execute(text(statement))
    assert log.recent(5) == [audit(BSN_A, event_id="e1")]


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgres_refuses_truncate(migrated_engine: Engine) -> None:
    assert migrated_engine.dialect.name == "postgresql"
    log = AuditLog(migrated_engine)
    log.append(audit(BSN_A, event_id="e1"))
    with pytest.raises(DBAPIError, match="append-only"), migrated_engine.begin() as connection:
        connection.execute(text("TRUNCATE audit_log"))
    assert len(log.recent(5)) == 1


def test_audit_event_validation() -> None:
    event = audit(BSN_A)
    assert BSN_A not in repr(event)
    with pytest.raises(InvalidValueError):
        audit(BSN_A, at=dt.datetime(2026, 11, 20, 18, 0))  # naive
    with pytest.raises(InvalidValueError):
        audit("123456789")  # not a BSN: the patient identifier must be one
    with pytest.raises(InvalidValueError) as info:
        AuditEvent(
            event_id="e",
            event_type="lsp_query",
            action=AuditAction.EXECUTE,
            occurred_at=T0,
            user_id="u",
            source_system="s",
            outcome="ok",
            object_detail={"note": BSN_B},
        )
    assert BSN_B not in str(info.value)
    with pytest.raises(TypeError):
        event.object_detail["x"] = 1  # type: ignore[index]


def test_unanswered_queries_count_a_runs_sent_rows_without_their_answer(
    migrated_engine: Engine,
) -> None:
    log = AuditLog(migrated_engine)

    def event(kind: str, run_id: str) -> AuditEvent:
        detail = {"run_id": run_id, "attempt": 1}
        return dataclasses.replace(audit(event_type=kind), object_detail=detail)

    for kind, run_id in [
        ("lsp_query", "r1"),
        ("lsp_query_answer", "r1"),
        ("lsp_query", "r1"),  # its process died before the answer
        ("lsp_query", "r1"),  # asked again after the restart ...
        ("lsp_query_answer", "r1"),  # ... and answered
        ("lsp_query", "r2"),
        ("mandate_check", "r1"),
    ]:
        log.append(event(kind, run_id))
    assert log.unanswered_queries("r1") == 1
    assert log.unanswered_queries("r2") == 1
    assert log.unanswered_queries("r3") == 0
