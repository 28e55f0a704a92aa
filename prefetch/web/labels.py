"""The Dutch words the desk shows: statuses, skip reasons, run states, times and ages.

The users work in Dutch; the code and the logs stay in English. Every stored value maps
to plain words here (one place), so that a new reason or outcome is one line.
"""

from __future__ import annotations

import datetime as dt
import enum

from prefetch.domain.localtime import AMSTERDAM

DASH = "\u2013"  # shown for a missing value


class Status(enum.Enum):
    """One worklist row's status (the filter values are the enum values)."""

    FETCHED = "opgehaald"
    NO_RECORDS = "geen_gegevens"
    NOT_REGISTERED = "niet_aangemeld"
    SKIPPED = "overgeslagen"
    FAILED = "mislukt"
    PENDING = "wachtend"

    @property
    def label(self) -> str:
        return STATUS_LABELS[self]


STATUS_LABELS = {
    Status.FETCHED: "Opgehaald",
    Status.NO_RECORDS: "Geen gegevens",
    Status.NOT_REGISTERED: "Niet aangemeld bij LSP",
    Status.SKIPPED: "Overgeslagen",
    Status.FAILED: "Mislukt",
    Status.PENDING: "Wachtend",
}

SKIP_REASONS = {
    "no_bsn": "geen BSN bekend",
    "bsn_invalid": "BSN klopt niet (elfproef)",
    "bsn_unverified": "BSN niet gecontroleerd met identiteitsbewijs",
    "consent_refused": "patiënt heeft bezwaar gemaakt",
    "appointment_type_excluded": "afspraaktype valt buiten het schema",
    "cancelled": "afspraak geannuleerd",
    "fresh": "kort geleden al opgehaald",
    "mandate_missing": "geen mandaat van een arts of apotheker",
    "mandate_expired": "mandaat verlopen",
}

#: Skip reasons after which a re-fetch may not be sent (no BSN to ask for, or no consent).
REFETCH_BLOCKED = frozenset({"no_bsn", "bsn_invalid", "bsn_unverified", "consent_refused"})

ROLE_LABELS = {
    "assistant": "apothekersassistent",
    "polimanager": "polimanager",
    "administrator": "beheerder",
}


def skip_label(reason: str | None) -> str:
    if reason is None:
        return "onbekende reden"
    return SKIP_REASONS.get(reason, reason.replace("_", " "))


def local_time(value: dt.datetime | None) -> str:
    """'24-11-2026 08:30' in Amsterdam time, or DASH."""
    if value is None:
        return DASH
    return value.astimezone(AMSTERDAM).strftime("%d-%m-%Y %H:%M")


def clock_time(value: dt.datetime | None) -> str:
    return DASH if value is None else value.astimezone(AMSTERDAM).strftime("%H:%M")


def date_nl(value: dt.date | None) -> str:
    return DASH if value is None else value.strftime("%d-%m-%Y")


def age_nl(then: dt.datetime | None, now: dt.datetime) -> str:
    """How old the data are, in words: 'minder dan een minuut', '3 uur', '2 dagen'."""
    if then is None:
        return "onbekend"
    seconds = max((now - then).total_seconds(), 0.0)
    if seconds < 60:
        return "minder dan een minuut"
    minutes = int(seconds // 60)
    if minutes < 60:
        return "1 minuut" if minutes == 1 else f"{minutes} minuten"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} uur"
    return f"{hours // 24} dagen"


def count_nl(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"
