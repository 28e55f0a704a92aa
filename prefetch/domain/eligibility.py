"""Eligibility: may we query the LSP for this patient in this run? (pure)

`decide` returns `Eligible` or `Skipped(reason)`. The order of the checks is the order of
the reasons a desk assistant can act on: identity first, then consent, then the plan
(cancelled, type, window, duplicate), then the mandate and freshness.

`outside_window`: none of the patient's booked appointments of an included type starts
within the schedule's `hours`, or all of them have started already (`now` is past them).
`duplicate`: an earlier schedule of the same night already queries this patient
(`earlier` maps the patient key to that schedule's id; `Skipped.detail` names it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from prefetch.domain.localtime import AMSTERDAM
from prefetch.domain.outcome import SkipReason
from prefetch.domain.people import (
    Appointment,
    AppointmentStatus,
    Consent,
    Mandate,
    Patient,
)
from prefetch.domain.schedule import Schedule


@dataclass(frozen=True, slots=True)
class Eligible:
    patient: Patient


@dataclass(frozen=True, slots=True)
class Skipped:
    patient: Patient
    reason: SkipReason
    detail: str | None = None  # e.g. the schedule that queries a duplicate (never a BSN)


Decision = Eligible | Skipped


@dataclass(frozen=True, slots=True)
class EligibilityPolicy:
    fresh_for: dt.timedelta  # fetched more recently than this: skip as fresh
    require_verified_bsn: bool = True


def mandate_problem(
    mandate: Mandate | None, schedule: Schedule, now: dt.datetime
) -> SkipReason | None:
    """Why the run's mandate cannot be used now, or None when it can."""
    if mandate is None or mandate.mandating.uzi_number != schedule.overseer.uzi_number:
        return SkipReason.MANDATE_MISSING
    if schedule.id not in mandate.schedules:
        return SkipReason.MANDATE_MISSING
    if not mandate.valid_from <= now < mandate.valid_until:
        return SkipReason.MANDATE_EXPIRED
    return None


def decide(
    patient: Patient,
    appointments: Sequence[Appointment],
    *,
    schedule: Schedule,
    policy: EligibilityPolicy,
    now: dt.datetime,
    last_fetched_at: dt.datetime | None,
    mandate: Mandate | None = None,
    earlier: Mapping[str, str] | None = None,
    key: str | None = None,
) -> Decision:
    """Decide for one patient with all their appointments in this run's clinics.

    `earlier` and `key`: the patients (by planning key) that an earlier schedule of the
    same night queries, and this patient's key."""
    if patient.bsn_invalid:
        return Skipped(patient, SkipReason.BSN_INVALID)
    if patient.bsn is None:
        return Skipped(patient, SkipReason.NO_BSN)
    if policy.require_verified_bsn and not patient.bsn_verified:
        return Skipped(patient, SkipReason.BSN_UNVERIFIED)
    if patient.consent is Consent.REFUSED:
        return Skipped(patient, SkipReason.CONSENT_REFUSED)
    booked = [a for a in appointments if a.status is AppointmentStatus.BOOKED]
    if not booked:
        return Skipped(patient, SkipReason.CANCELLED)
    included = [a for a in booked if schedule.includes_type(a.appointment_type)]
    if not included:
        return Skipped(patient, SkipReason.APPOINTMENT_TYPE_EXCLUDED)
    if not any(
        a.start > now and schedule.in_hours(a.start.astimezone(AMSTERDAM).time()) for a in included
    ):
        return Skipped(patient, SkipReason.OUTSIDE_WINDOW)
    first = (earlier or {}).get(key or "")
    if first is not None and first != schedule.id:
        return Skipped(patient, SkipReason.DUPLICATE, detail=first)
    problem = mandate_problem(mandate, schedule, now)
    if problem is not None:
        return Skipped(patient, problem)
    if last_fetched_at is not None and now - last_fetched_at < policy.fresh_for:
        return Skipped(patient, SkipReason.FRESH)
    return Eligible(patient)
