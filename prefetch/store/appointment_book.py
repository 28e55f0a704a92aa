"""The appointment book: what every source said about every appointment, applied in order.

`apply` takes what one input stated (a message, a file) in message order, keyed by source
and appointment id, idempotently: the same input twice changes nothing. A cancellation is
final (a replayed S12 does not resurrect a cancelled appointment); an update older than
the stored one (by the sender's version time) is ignored. `day` reads a clinic day back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, select

from prefetch.domain.bsn import Bsn
from prefetch.domain.localtime import AMSTERDAM
from prefetch.domain.people import Appointment, AppointmentStatus, Consent, Patient
from prefetch.sources.intake import Received
from prefetch.store._support import Sessions
from prefetch.store.tables import BookRow


@dataclass(frozen=True, slots=True)
class BookReport:
    added: int = 0
    updated: int = 0
    cancelled: int = 0
    ignored: int = 0  # replays, older versions, changes to cancelled appointments

    def __add__(self, other: BookReport) -> BookReport:
        return BookReport(
            self.added + other.added,
            self.updated + other.updated,
            self.cancelled + other.cancelled,
            self.ignored + other.ignored,
        )


def _fill(row: BookRow, received: Received, now: dt.datetime) -> None:
    a = received.appointment
    row.status = a.status.value
    row.version = received.version
    row.start_at = a.start
    row.end_at = a.end
    row.clinic = a.clinic
    row.agenda = a.agenda
    row.appointment_type = a.appointment_type
    row.patient_local_id = a.patient.local_id
    row.bsn = a.patient.bsn.value if a.patient.bsn is not None else None
    row.bsn_verified = a.patient.bsn_verified
    row.bsn_invalid = a.patient.bsn_invalid
    row.consent = a.patient.consent.value
    row.clinician_uzi = a.clinician_uzi
    row.updated_at = now


def _same(row: BookRow, received: Received) -> bool:
    probe = BookRow()
    _fill(probe, received, row.updated_at)
    columns = [
        c.key for c in BookRow.__table__.columns if c.key not in ("source", "appointment_id")
    ]
    return all(getattr(row, c) == getattr(probe, c) for c in columns)


def _appointment(row: BookRow) -> Appointment:
    patient = Patient(
        local_id=row.patient_local_id,
        bsn=Bsn(row.bsn) if row.bsn is not None else None,
        bsn_verified=row.bsn_verified,
        consent=Consent(row.consent),
        bsn_invalid=row.bsn_invalid,
    )
    return Appointment(
        id=row.appointment_id,
        patient=patient,
        clinic=row.clinic,
        start=row.start_at,
        end=row.end_at,
        appointment_type=row.appointment_type,
        status=AppointmentStatus(row.status),
        clinician_uzi=row.clinician_uzi,
        agenda=row.agenda,
    )


class AppointmentBook:
    """The book on SQLAlchemy (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = Sessions(engine)

    def apply(self, source: str, received: Sequence[Received], *, now: dt.datetime) -> BookReport:
        """Apply `received` in order, in one transaction."""
        added = updated = cancelled = ignored = 0
        with self._sessions.write() as session:
            for item in received:
                key = (source, item.appointment.id)
                row = session.get(BookRow, key)
                incoming_cancel = item.appointment.status is AppointmentStatus.CANCELLED
                if row is None:
                    row = BookRow(source=source, appointment_id=item.appointment.id)
                    _fill(row, item, now)
                    session.add(row)
                    session.flush()
                    added += 1
                    cancelled += incoming_cancel
                elif row.status == AppointmentStatus.CANCELLED.value:
                    ignored += 1  # final: replays and late updates do not resurrect it
                elif (
                    item.version is not None
                    and row.version is not None
                    and item.version < row.version
                    and not incoming_cancel
                ) or _same(row, item):
                    ignored += 1
                else:
                    _fill(row, item, now)
                    session.flush()
                    if incoming_cancel:
                        cancelled += 1
                    else:
                        updated += 1
        return BookReport(added, updated, cancelled, ignored)

    def day(self, clinics: Iterable[str], clinic_day: dt.date) -> list[Appointment]:
        """Every appointment (cancelled ones too) of `clinics` on the local `clinic_day`."""
        start = dt.datetime.combine(clinic_day, dt.time(0), tzinfo=AMSTERDAM)
        end = dt.datetime.combine(clinic_day + dt.timedelta(days=1), dt.time(0), tzinfo=AMSTERDAM)
        with self._sessions.read() as session:
            rows = session.scalars(
                select(BookRow)
                .where(BookRow.clinic.in_(sorted(set(clinics))))
                .where(BookRow.start_at >= start.astimezone(dt.UTC))
                .where(BookRow.start_at < end.astimezone(dt.UTC))
                .order_by(BookRow.start_at, BookRow.source, BookRow.appointment_id)
            )
            return [_appointment(row) for row in rows]
