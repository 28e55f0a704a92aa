"""The local objection register: patients who told this hospital not to query the LSP.

`ConsentRegister.refuse` / `allow` change it and write an audit row (NEN 7513) in the same
transaction, through the store's audit insert; `refusing` answers for a set of BSNs, and
eligibility skips those patients as `consent_refused`. The reason is kept in the register,
never in the audit detail or a log line (free text may hold anything).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

from sqlalchemy import Engine, select

from prefetch.domain.bsn import Bsn
from prefetch.errors import InvalidValueError
from prefetch.store._support import Sessions, bsn_value
from prefetch.store.audit import insert_audit
from prefetch.store.records import AuditAction, AuditEvent
from prefetch.store.tables import ObjectionRow

SOURCE_SYSTEM = "prefetch"
MAX_REASON = 500


def _event(kind: str, action: AuditAction, bsn: str, user: str, now: dt.datetime) -> AuditEvent:
    return AuditEvent(
        event_id=f"{kind}-{uuid.uuid4().hex}",
        event_type=kind,
        action=action,
        occurred_at=now,
        user_id=user,
        source_system=SOURCE_SYSTEM,
        outcome="success",
        patient_bsn=bsn,
        object_detail={"register": "objections"},
    )


class ConsentRegister:
    """The objection register on SQLAlchemy (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = Sessions(engine)

    def refuse(
        self, bsn: Bsn | str, *, reason: str, user: str, now: dt.datetime | None = None
    ) -> bool:
        """Record an objection; False when one was already recorded (nothing changes)."""
        value = Bsn.parse(bsn_value(bsn)).value
        reason = reason.strip()
        if not reason or len(reason) > MAX_REASON or not reason.isprintable():
            raise InvalidValueError(f"give a reason of 1 to {MAX_REASON} printable characters")
        when = now or dt.datetime.now(dt.UTC)
        with self._sessions.write() as session:
            if session.get(ObjectionRow, value) is not None:
                return False
            session.add(ObjectionRow(bsn=value, reason=reason, recorded_at=when, recorded_by=user))
            session.flush()
            insert_audit(
                session, _event("objection_recorded", AuditAction.CREATE, value, user, when)
            )
        return True

    def allow(self, bsn: Bsn | str, *, user: str, now: dt.datetime | None = None) -> bool:
        """Withdraw an objection; False when none was recorded."""
        value = Bsn.parse(bsn_value(bsn)).value
        when = now or dt.datetime.now(dt.UTC)
        with self._sessions.write() as session:
            row = session.get(ObjectionRow, value)
            if row is None:
                return False
            session.delete(row)
            session.flush()
            insert_audit(
                session, _event("objection_withdrawn", AuditAction.DELETE, value, user, when)
            )
        return True

    def refusing(self, bsns: Iterable[Bsn | str]) -> set[str]:
        """The BSNs among `bsns` with a recorded objection."""
        wanted = sorted({bsn_value(b) for b in bsns})
        found: set[str] = set()
        with self._sessions.read() as session:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                found.update(
                    session.scalars(select(ObjectionRow.bsn).where(ObjectionRow.bsn.in_(chunk)))
                )
        return found

    def reason(self, bsn: Bsn | str) -> str | None:
        with self._sessions.read() as session:
            row = session.get(ObjectionRow, bsn_value(bsn))
            return row.reason if row is not None else None
