"""Mandates: which responsible clinician lets whom query, for which schedules, when."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from sqlalchemy import Engine, select

from prefetch.domain.people import Clinician, Mandate
from prefetch.errors import ConfigError
from prefetch.store._support import Sessions
from prefetch.store.audit import insert_audit
from prefetch.store.records import AuditAction, AuditEvent
from prefetch.store.tables import MandateRow


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _mandate(row: MandateRow) -> Mandate:
    return Mandate(
        id=row.id,
        mandating=Clinician(
            uzi_number=row.mandating_uzi,
            role_code=row.mandating_role,
            name=row.mandating_name,
            ura=row.mandating_ura,
        ),
        mandated_id=row.mandated_id,
        schedules=frozenset(row.schedules),
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        token_xml=row.token_xml,
    )


def _registered(mandate: Mandate, now: dt.datetime, *, renewed: bool) -> AuditEvent:
    """NEN 7513 line of a mandate registration: the mandating clinician (who signed it)
    makes `mandated_id` act under their responsibility from now on."""
    return AuditEvent(
        event_id=uuid.uuid4().hex,
        event_type="mandate_register",
        action=AuditAction.UPDATE if renewed else AuditAction.CREATE,
        occurred_at=now,
        user_id=mandate.mandating.uzi_number,
        user_role=mandate.mandating.role_code,
        responsible_user_id=mandate.mandating.uzi_number,
        object_detail={
            "mandate_id": mandate.id,
            "mandated": f"uzi:{mandate.mandated_id}",  # nine digits alone could read as a BSN
            "schedules": len(mandate.schedules),
            "valid_until": mandate.valid_until.isoformat(),
        },
        authorisation_basis=mandate.id,
        source_system="prefetch/mandates",
        outcome="success",
    )


class MandateRepository:
    """`MandateStore` on SQLAlchemy. `clock` stamps created_at (injected for tests)."""

    def __init__(self, engine: Engine, *, clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self._sessions = Sessions(engine)
        self._clock = clock

    def add(self, mandate: Mandate) -> None:
        """Insert a new mandate; never overwrites one with the same id (ConfigError).
        Two registrations racing for one id: the table's primary key refuses the second."""
        with self._sessions.write() as session:
            if session.get(MandateRow, mandate.id) is not None:
                raise ConfigError(
                    "a mandate with this id exists already; it is not overwritten",
                    mandate_id=mandate.id,
                    fix="choose another id",
                )
            row = MandateRow(id=mandate.id, created_at=self._clock(), revoked_at=None)
            _fill(row, mandate)
            session.add(row)
            session.flush()
            insert_audit(session, _registered(mandate, self._clock(), renewed=False))

    def save(self, mandate: Mandate) -> None:
        """Insert or replace the mandate with this id (e.g. a renewed token)."""
        with self._sessions.write() as session:
            row = session.get(MandateRow, mandate.id)
            renewed = row is not None
            if row is None:
                row = MandateRow(id=mandate.id, created_at=self._clock(), revoked_at=None)
                session.add(row)
            _fill(row, mandate)
            session.flush()
            insert_audit(session, _registered(mandate, self._clock(), renewed=renewed))

    def get(self, mandate_id: str) -> Mandate | None:
        with self._sessions.read() as session:
            row = session.get(MandateRow, mandate_id)
            return _mandate(row) if row is not None else None

    def revoked_at(self, mandate_id: str) -> dt.datetime | None:
        """When the mandate was revoked, or None (also for an unknown id)."""
        with self._sessions.read() as session:
            row = session.get(MandateRow, mandate_id)
            return row.revoked_at if row is not None else None

    def for_schedule(self, schedule_id: str, at: dt.datetime) -> list[Mandate]:
        # Few rows: the schedule membership (a JSON list) is checked here, portably.
        with self._sessions.read() as session:
            rows = session.scalars(
                select(MandateRow)
                .where(MandateRow.valid_from <= at, MandateRow.valid_until > at)
                .where((MandateRow.revoked_at.is_(None)) | (MandateRow.revoked_at > at))
                .order_by(MandateRow.valid_until.desc(), MandateRow.id)
            )
            return [_mandate(row) for row in rows if schedule_id in row.schedules]

    def revoke(self, mandate_id: str, at: dt.datetime) -> bool:
        with self._sessions.write() as session:
            row = session.get(MandateRow, mandate_id)
            if row is None or row.revoked_at is not None:
                return False
            row.revoked_at = at
            return True


def _fill(row: MandateRow, mandate: Mandate) -> None:
    row.mandating_uzi = mandate.mandating.uzi_number
    row.mandating_role = mandate.mandating.role_code
    row.mandating_name = mandate.mandating.name
    row.mandating_ura = mandate.mandating.ura
    row.mandated_id = mandate.mandated_id
    row.schedules = sorted(mandate.schedules)
    row.valid_from = mandate.valid_from
    row.valid_until = mandate.valid_until
    row.token_xml = mandate.token_xml
