"""Data minimisation: `purge` removes what the retention no longer allows, audits each
removal for the patient, and removes old audit rows only through a signed checkpoint that
keeps the rest of the chain verifiable."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from audit_helpers import BSN_A, BSN_B, event
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from prefetch.audit_report import patient_audit
from prefetch.security.keys import Credential
from prefetch.settings import RetentionSettings
from prefetch.store.audit import AuditLog
from prefetch.store.audit_verify import verify_chain
from prefetch.store.purge import purge
from prefetch.store.records import AuditAction
from prefetch.store.tables import AuditRow, DispenseRow, RunItemRow, RunRow

NOW = dt.datetime(2026, 12, 2, 3, 0, tzinfo=dt.UTC)
BSN_C = "999990032"
BSN_D = "999990044"
_ids = itertools.count(1)


def _planned(session: Session, bsn: str, day: dt.date, *, skip: str | None = None) -> None:
    run_id = f"run-{next(_ids)}"
    created = dt.datetime.combine(day, dt.time(18), tzinfo=dt.UTC) - dt.timedelta(days=1)
    session.add(RunRow(id=run_id, schedule_id="card", clinic_day=day, kind="manual",
                       state="finished", created_at=created, counts=None))  # fmt: skip
    session.flush()
    session.add(RunItemRow(run_id=run_id, patient_local_id=f"p-{bsn}", bsn=bsn, clinics=["C"],
                           state="skipped" if skip else "done", skip_reason=skip, attempts=1,
                           updated_at=created, dispense_count=1))  # fmt: skip


def _dispense(session: Session, bsn: str, fetched: dt.datetime) -> None:
    session.add(DispenseRow(id_root="2.16.1", id_extension=f"d{next(_ids)}", patient_bsn=bsn,
                            data={}, query_id="q", fetched_at=fetched, first_fetched_at=fetched,
                            responsible_uzi="000018389"))  # fmt: skip


def _count(engine: Engine, bsn: str) -> int:
    with Session(engine) as session:
        return (
            session.scalar(
                select(func.count()).select_from(DispenseRow).where(DispenseRow.patient_bsn == bsn)
            )
            or 0
        )


def test_purge_removes_cancelled_unviewed_and_expired_dispenses(migrated_engine: Engine) -> None:
    today = NOW.date()
    with Session(migrated_engine) as session, session.begin():
        _planned(session, BSN_A, today - dt.timedelta(days=10))  # seen at the desk: kept
        _dispense(session, BSN_A, NOW - dt.timedelta(days=11))
        _planned(session, BSN_B, today - dt.timedelta(days=10))  # nobody looked: removed
        _dispense(session, BSN_B, NOW - dt.timedelta(days=11))
        _planned(session, BSN_C, today + dt.timedelta(days=1), skip="cancelled")  # removed
        _dispense(session, BSN_C, NOW - dt.timedelta(days=1))
        _planned(session, BSN_D, today - dt.timedelta(days=200))  # viewed, past retention ...
        _dispense(session, BSN_D, NOW - dt.timedelta(days=200))  # ... its run is too old
    for bsn, days in ((BSN_A, 10), (BSN_D, 199)):  # desk views
        AuditLog(migrated_engine).append(
            event(
                bsn,
                at=NOW - dt.timedelta(days=days),
                event_type="record_view",
                action=AuditAction.READ,
            )
        )
    report = purge(migrated_engine, RetentionSettings(), now=NOW)
    assert (report.dispenses_cancelled, report.dispenses_unviewed) == (1, 1)
    assert report.dispenses_expired == 1
    assert report.runs == 1
    assert [_count(migrated_engine, b) for b in (BSN_A, BSN_B, BSN_C, BSN_D)] == [1, 0, 0, 0]
    [removal] = [
        e for e in patient_audit(migrated_engine, BSN_B) if e.event_type == "dispense_purge"
    ]
    assert removal.action is AuditAction.DELETE
    assert removal.object_detail["reason"] == "unviewed"
    assert removal.user_role == "system" and removal.source_system == "prefetch/purge"
    assert verify_chain(migrated_engine).ok
    again = purge(migrated_engine, RetentionSettings(), now=NOW)  # idempotent
    assert again.dispenses_unviewed == again.dispenses_cancelled == again.runs == 0


def test_old_audit_rows_go_only_through_a_signed_checkpoint(
    migrated_engine: Engine, hospital: Credential
) -> None:
    log = AuditLog(migrated_engine)
    for years in (9, 8, 6):  # older than 5 years ...
        log.append(event(BSN_A, at=NOW - dt.timedelta(days=365 * years)))
    for days in (300, 10):  # ... and recent
        log.append(event(BSN_A, at=NOW - dt.timedelta(days=days)))
    short = RetentionSettings(audit_years=5)
    kept = purge(migrated_engine, short, now=NOW, audit=True)  # no certificate: nothing
    assert kept.audit_rows == 0 and "system certificate" in kept.summary()
    with pytest.raises(DBAPIError), migrated_engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log WHERE id = 1"))  # not without one
    report = purge(migrated_engine, short, now=NOW, credential=hospital, audit=True)
    assert report.audit_rows == 3
    with Session(migrated_engine) as session:
        first = session.scalar(select(func.min(AuditRow.id)))
    assert first == 4
    result = verify_chain(migrated_engine)
    assert result.ok, result.summary()
    with pytest.raises(DBAPIError), migrated_engine.begin() as connection:
        connection.execute(text("DELETE FROM audit_log WHERE id = 4"))  # the anchor stays
    from audit_helpers import as_owner_without_guards

    as_owner_without_guards(migrated_engine, "DELETE FROM audit_log WHERE id = 4")
    broken = verify_chain(migrated_engine)
    assert broken.problem is not None and broken.problem.row_id == 4


def test_the_daily_task_purges_once_a_day(migrated_engine: Engine) -> None:
    from prefetch.store.purge import daily_purge_task, last_purge_time

    task = daily_purge_task(migrated_engine, RetentionSettings())
    assert last_purge_time(migrated_engine) is None
    assert task(NOW) is True
    assert last_purge_time(migrated_engine) == NOW
    assert task(NOW + dt.timedelta(hours=23)) is False
    assert task(NOW + dt.timedelta(hours=24)) is True
