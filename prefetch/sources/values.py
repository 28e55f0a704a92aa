"""Field values shared by every source: flags, consent, status, times, BSN (pure).

Each parser raises `ValueProblem` with a message that never repeats the value.
"""

from __future__ import annotations

import datetime as dt
import re

from prefetch.domain.bsn import Bsn
from prefetch.domain.localtime import resolve_local
from prefetch.domain.people import AppointmentStatus, Consent
from prefetch.errors import InvalidValueError

FIRST_YEAR = 2000
LAST_YEAR = 2100
MAX_FIELD_CHARS = 256

_YES = {"yes", "y", "true", "1", "ja", "j", "verified", "geverifieerd"}
_NO = {"no", "n", "false", "0", "nee", "", "unverified", "niet geverifieerd"}
_CONSENT = {
    "": Consent.UNKNOWN,
    "unknown": Consent.UNKNOWN,
    "onbekend": Consent.UNKNOWN,
    "granted": Consent.GRANTED,
    "yes": Consent.GRANTED,
    "ja": Consent.GRANTED,
    "gegeven": Consent.GRANTED,
    "toestemming": Consent.GRANTED,
    "refused": Consent.REFUSED,
    "no": Consent.REFUSED,
    "nee": Consent.REFUSED,
    "geweigerd": Consent.REFUSED,
    "bezwaar": Consent.REFUSED,
    "objection": Consent.REFUSED,
}
_STATUS = {
    "": AppointmentStatus.BOOKED,
    "booked": AppointmentStatus.BOOKED,
    "scheduled": AppointmentStatus.BOOKED,
    "confirmed": AppointmentStatus.BOOKED,
    "gepland": AppointmentStatus.BOOKED,
    "bevestigd": AppointmentStatus.BOOKED,
    "cancelled": AppointmentStatus.CANCELLED,
    "canceled": AppointmentStatus.CANCELLED,
    "deleted": AppointmentStatus.CANCELLED,
    "geannuleerd": AppointmentStatus.CANCELLED,
    "afgezegd": AppointmentStatus.CANCELLED,
    "verwijderd": AppointmentStatus.CANCELLED,
    "entered-in-error": AppointmentStatus.CANCELLED,
    "noshow": AppointmentStatus.NOSHOW,
    "no-show": AppointmentStatus.NOSHOW,
    "no show": AppointmentStatus.NOSHOW,
    "niet verschenen": AppointmentStatus.NOSHOW,
}
_DUTCH_DATETIME = re.compile(r"^(\d{1,2})-(\d{1,2})-(\d{4})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?$")


class ValueProblem(ValueError):
    """A field value cannot be used; the message says what is expected, not what came."""


def flag(value: str) -> bool:
    v = value.strip().lower()
    if v in _YES:
        return True
    if v in _NO:
        return False
    raise ValueProblem("is not yes/no (ja/nee)")


def consent(value: str) -> Consent:
    try:
        return _CONSENT[value.strip().lower()]
    except KeyError:
        raise ValueProblem("use unknown, granted or refused (onbekend, ja, nee)") from None


def status(value: str) -> AppointmentStatus:
    try:
        return _STATUS[value.strip().lower()]
    except KeyError:
        raise ValueProblem("use booked, cancelled or noshow (gepland, geannuleerd)") from None


def in_range(value: dt.datetime) -> dt.datetime:
    """Refuse dates no clinic day can have (year 0001, 9999: typos and overflow)."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueProblem(f"year outside {FIRST_YEAR}-{LAST_YEAR}")
    return value


def local(naive: dt.datetime) -> dt.datetime:
    """A naive wall-clock time as Europe/Amsterdam; gap and fold are problems, not shifts."""
    try:
        return resolve_local(in_range(naive))
    except InvalidValueError as exc:
        raise ValueProblem(exc.message) from None


def when(text: str) -> dt.datetime:
    """ISO 8601 (or `DD-MM-YYYY HH:MM` as Dutch spreadsheets write it); no offset: local."""
    raw = text.strip()
    m = _DUTCH_DATETIME.match(raw)
    try:
        if m is not None:
            day, month, year, hour, minute, second = m.groups()
            value = dt.datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second or 0)
            )
        else:
            value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise ValueProblem("not a date-time like 2026-11-24T09:30 or 24-11-2026 09:30") from None
    if value.tzinfo is None:
        return local(value)
    return in_range(value)


def bsn(value: str) -> tuple[Bsn | None, bool]:
    """(the BSN, False), (None, False) when empty, (None, True) when present but invalid."""
    raw = value.strip()
    if not raw:
        return None, False
    try:
        return Bsn.parse(raw), False
    except InvalidValueError:
        return None, True


def code(value: str) -> str:
    """A plain code or id: trimmed, printable, not too long."""
    v = value.strip()
    if len(v) > MAX_FIELD_CHARS:
        raise ValueProblem(f"longer than {MAX_FIELD_CHARS} characters")
    if not v.isprintable():
        raise ValueProblem("contains control characters")
    return v
