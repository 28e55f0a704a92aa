"""Patients, clinicians, mandates and appointments."""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass

from prefetch.domain.bsn import Bsn
from prefetch.errors import InvalidValueError

_UZI_NUMBER = re.compile(r"^\d{9}$")
_ROLE_CODE = re.compile(r"^\d{2}\.\d{3}$")
_URA = re.compile(r"^\d{8}$")


def _require_aware(name: str, value: dt.datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValueError(f"{name} must be timezone-aware")


class Consent(enum.Enum):
    """The hospital's own record of the patient's wish (AORTA.md section 5)."""

    UNKNOWN = "unknown"  # nothing recorded: query, the LSP decides
    GRANTED = "granted"
    REFUSED = "refused"  # recorded objection: never query


@dataclass(frozen=True, slots=True)
class Patient:
    """A patient as the appointment source knows them. `bsn` may be missing."""

    local_id: str  # hospital patient number (not the BSN)
    bsn: Bsn | None
    bsn_verified: bool = False  # identity checked with a WID at registration
    consent: Consent = Consent.UNKNOWN
    bsn_invalid: bool = False  # the source had a BSN that failed the 11-check

    def __post_init__(self) -> None:
        if self.bsn_invalid and self.bsn is not None:
            raise InvalidValueError("an invalid BSN cannot also be kept as a BSN")
        if not self.local_id:
            raise InvalidValueError("patient must have a local id")


@dataclass(frozen=True, slots=True)
class Clinician:
    """A person known to the UZI register: UZI number, role code (e.g. 01.015), name."""

    uzi_number: str
    role_code: str
    name: str
    ura: str | None = None  # organisation the card belongs to

    def __post_init__(self) -> None:
        if not _UZI_NUMBER.match(self.uzi_number):
            raise InvalidValueError("UZI number must have 9 digits")
        if not _ROLE_CODE.match(self.role_code):
            raise InvalidValueError("UZI role code must look like 01.015")
        if not self.name.strip() or not self.name.isprintable():
            raise InvalidValueError("clinician must have a name without control characters")
        if self.ura is not None and not _URA.match(self.ura):
            raise InvalidValueError("URA must have 8 digits")


@dataclass(frozen=True, slots=True)
class Mandate:
    """A responsible clinician lets `mandated` (a person or the system) query for them.

    `token_xml` is the mandaattoken signed once by the mandating clinician at registration.
    `schedules` names the schedule ids it covers; empty means none.
    """

    id: str
    mandating: Clinician
    mandated_id: str  # UZI number of the assistant or UZI system number
    schedules: frozenset[str]
    valid_from: dt.datetime
    valid_until: dt.datetime
    token_xml: bytes | None = None

    def __post_init__(self) -> None:
        _require_aware("valid_from", self.valid_from)
        _require_aware("valid_until", self.valid_until)
        if self.valid_until <= self.valid_from:
            raise InvalidValueError("mandate must end after it starts", mandate_id=self.id)

    def covers(self, schedule_id: str, at: dt.datetime) -> bool:
        return schedule_id in self.schedules and self.valid_from <= at < self.valid_until


class AppointmentStatus(enum.Enum):
    BOOKED = "booked"
    CANCELLED = "cancelled"
    NOSHOW = "noshow"


@dataclass(frozen=True, slots=True)
class Appointment:
    """One planned consult. `start` is aware (naive local times are resolved at intake)."""

    id: str
    patient: Patient
    clinic: str  # poli code, e.g. "CARD"
    start: dt.datetime
    appointment_type: str
    status: AppointmentStatus = AppointmentStatus.BOOKED
    clinician_uzi: str | None = None
    end: dt.datetime | None = None
    agenda: str | None = None  # the EPD's agenda (spreekuur, resource) within the clinic

    def __post_init__(self) -> None:
        _require_aware("appointment start", self.start)
        if not self.id or not self.clinic:
            raise InvalidValueError("appointment needs an id and a clinic")
        if self.end is not None:
            _require_aware("appointment end", self.end)
            if self.end < self.start:
                raise InvalidValueError("appointment ends before it starts")
