"""Data minimisation: `prefetch purge` (and the daemon, daily).

Removes, by the `[retention]` settings (safe defaults):

- prefetched dispenses of a patient whose latest appointment was cancelled;
- prefetched dispenses that nobody viewed within `unviewed_days` after the patient's
  latest clinic day (a view is an audit row with action R for the patient);
- dispenses fetched more than `dispense_days` ago, whatever happened;
- runs (and their items, which hold BSNs) older than `run_days`;
- audit rows older than `audit_years` (at least 5), and only through a signed purge
  checkpoint that names the first row kept and the hash it points back to, so the rest of
  the chain still verifies. The database refuses any other DELETE on the audit log; the
  service role has no DELETE privilege at all, so this part runs as the owner.

Every removal of a patient's data writes an audit row for that patient (`dispense_purge`,
action D) and the purge itself one row (`purge`); nothing else is logged with a BSN.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from prefetch.errors import StoreError
from prefetch.security.keys import Credential
from prefetch.settings import RetentionSettings
from prefetch.store._support import Sessions
from prefetch.store.audit import insert_audit
from prefetch.store.audit_checkpoint import insert_checkpoint
from prefetch.store.records import AuditAction, AuditEvent
from prefetch.store.tables import AuditRow, DispenseRow, RunItemRow, RunRow

MIN_AUDIT_YEARS = 5
SOURCE = "prefetch/purge"


@dataclass(slots=True)
class PurgeReport:
    dispenses_cancelled: int = 0
    dispenses_unviewed: int = 0
    dispenses_expired: int = 0
    runs: int = 0
    audit_rows: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        line = (
            f"purged: {self.dispenses_cancelled} dispenses of cancelled appointments, "
            f"{self.dispenses_unviewed} never viewed, {self.dispenses_expired} past retention; "
            f"{self.runs} old runs; {self.audit_rows} audit rows"
        )
        return "; ".join([line, *self.notes])


def _days_ago(now: dt.datetime, days: float) -> dt.datetime:
    return now - dt.timedelta(days=days)


def _event(
    event_type: str, now: dt.datetime, *, bsn: str | None, detail: dict[str, str | int]
) -> AuditEvent:
    return AuditEvent(
        event_id=uuid.uuid4().hex,
        event_type=event_type,
        action=AuditAction.DELETE,
        occurred_at=now,
        user_id="prefetch-purge",
        user_role="system",
        patient_bsn=bsn,
        object_detail=detail,
        authorisation_basis="retention-policy",
        source_system=SOURCE,
        outcome="success",
    )


def _latest_items(session: Session) -> dict[str, tuple[dt.date, str | None]]:
    """Per BSN: the latest clinic day it was planned for and that item's skip reason."""
    rows = session.execute(
        select(RunItemRow.bsn, RunRow.clinic_day, RunItemRow.skip_reason, RunRow.created_at)
        .join(RunRow, RunRow.id == RunItemRow.run_id)
        .where(RunItemRow.bsn.is_not(None))
        .order_by(RunRow.clinic_day, RunRow.created_at)
    )
    latest: dict[str, tuple[dt.date, str | None]] = {}
    for bsn, day, reason, _created in rows:
        latest[str(bsn)] = (day, reason)
    return latest


def _viewed_since(session: Session, bsn: str, since: dt.datetime) -> bool:
    found = session.scalar(
        select(AuditRow.id)
        .where(
            AuditRow.patient_bsn == bsn,
            AuditRow.action_code == AuditAction.READ.value,
            AuditRow.occurred_at >= since,
        )
        .limit(1)
    )
    return found is not None


def _forget(
    session: Session, bsn: str, reason: str, now: dt.datetime, *, before: dt.datetime | None = None
) -> int:
    """Delete the patient's dispenses (fetched before `before`); audit it for the patient."""
    query = delete(DispenseRow).where(DispenseRow.patient_bsn == bsn)
    if before is not None:
        query = query.where(DispenseRow.fetched_at < before)
    removed = len(session.execute(query.returning(DispenseRow.id)).all())
    if removed:
        detail: dict[str, str | int] = {"reason": reason, "dispenses": removed}
        insert_audit(session, _event("dispense_purge", now, bsn=bsn, detail=detail))
    return removed


def _patients_to_forget(
    session: Session, retention: RetentionSettings, now: dt.datetime
) -> list[tuple[str, str]]:
    holders = set(session.scalars(select(DispenseRow.patient_bsn).distinct()))
    latest = _latest_items(session)
    today = now.date()
    chosen: list[tuple[str, str]] = []
    for bsn in sorted(holders):
        day, reason = latest.get(bsn, (None, None))
        if day is None:
            continue
        if retention.remove_cancelled and reason == "cancelled":
            chosen.append((bsn, "cancelled"))
        elif today > day + dt.timedelta(days=retention.unviewed_days):
            first = session.scalar(
                select(func.min(DispenseRow.first_fetched_at)).where(DispenseRow.patient_bsn == bsn)
            )
            if first is not None and not _viewed_since(session, bsn, first):
                chosen.append((bsn, "unviewed"))
    return chosen


def purge(
    engine: Engine,
    retention: RetentionSettings,
    *,
    now: dt.datetime,
    credential: Credential | None = None,
    audit: bool = False,
) -> PurgeReport:
    """Remove what `retention` no longer allows (see the module docstring). The audit
    part runs only with `audit=True` and the system certificate (`credential`)."""
    report = PurgeReport()
    sessions = Sessions(engine)
    with sessions.write() as session:
        for bsn, reason in _patients_to_forget(session, retention, now):
            removed = _forget(session, bsn, reason, now)
            if reason == "cancelled":
                report.dispenses_cancelled += removed
            else:
                report.dispenses_unviewed += removed
        cutoff = _days_ago(now, retention.dispense_days)
        expired = select(DispenseRow.patient_bsn).where(DispenseRow.fetched_at < cutoff)
        for bsn in session.scalars(expired.distinct()).all():
            report.dispenses_expired += _forget(session, bsn, "expired", now, before=cutoff)
        old_runs = select(RunRow.id).where(RunRow.created_at < _days_ago(now, retention.run_days))
        session.execute(delete(RunItemRow).where(RunItemRow.run_id.in_(old_runs)))
        gone = session.execute(delete(RunRow).where(RunRow.id.in_(old_runs)).returning(RunRow.id))
        report.runs = len(gone.all())
    if audit:
        _purge_audit(engine, retention, now=now, credential=credential, report=report)
    with sessions.write() as session:
        insert_audit(
            session,
            _event(
                "purge",
                now,
                bsn=None,
                detail={
                    "cancelled": report.dispenses_cancelled,
                    "unviewed": report.dispenses_unviewed,
                    "expired": report.dispenses_expired,
                    "runs": report.runs,
                    "audit_rows": report.audit_rows,
                },
            ),
        )
    return report


def _purge_audit(
    engine: Engine,
    retention: RetentionSettings,
    *,
    now: dt.datetime,
    credential: Credential | None,
    report: PurgeReport,
) -> None:
    years = max(retention.audit_years, MIN_AUDIT_YEARS)
    cutoff = now - dt.timedelta(days=round(365.25 * years))
    if credential is None:
        report.notes.append(
            "audit rows kept: the purge of old audit rows needs the system certificate"
        )
        return
    try:
        with Sessions(engine).write() as session:
            anchor = session.execute(
                select(AuditRow.id, AuditRow.prev_hash)
                .where(AuditRow.occurred_at >= cutoff)
                .order_by(AuditRow.id)
                .limit(1)
            ).first()
            if anchor is None:  # every row is old: keep the newest as the anchor
                anchor = session.execute(
                    select(AuditRow.id, AuditRow.prev_hash).order_by(AuditRow.id.desc()).limit(1)
                ).first()
            if anchor is None:
                return
            anchor_id, anchor_prev = int(anchor[0]), anchor[1]
            older = (
                session.scalar(
                    select(func.count()).select_from(AuditRow).where(AuditRow.id < anchor_id)
                )
                or 0
            )
            if not older:
                return
            insert_checkpoint(
                session,
                credential,
                kind="purge",
                now=now,
                anchor_id=anchor_id,
                anchor_prev_hash=anchor_prev,
                rows_removed=int(older),
            )
            session.execute(delete(AuditRow).where(AuditRow.id < anchor_id))
            report.audit_rows = int(older)
    except StoreError:
        report.notes.append(
            "audit rows kept: this database role may not delete them (run as the owner)"
        )


def last_purge_time(engine: Engine) -> dt.datetime | None:
    """When `purge` last ran (its own audit row), or None."""
    with Sessions(engine).read() as session:
        return session.scalar(
            select(func.max(AuditRow.occurred_at)).where(AuditRow.event_type == "purge")
        )


def daily_purge_task(engine: Engine, retention: RetentionSettings) -> Callable[[dt.datetime], bool]:
    """The daemon's daily chore: purge (not the audit rows: the service role may not) when
    the last purge is 24 h old; True when it ran."""

    def task(now: dt.datetime) -> bool:
        last = last_purge_time(engine)
        if last is not None and now - last < dt.timedelta(hours=24):
            return False
        purge(engine, retention, now=now)
        return True

    return task
