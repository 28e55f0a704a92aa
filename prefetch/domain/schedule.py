"""A schedule: which clinic sessions to prefetch, under whose responsibility, and when."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from prefetch.domain.people import Clinician
from prefetch.errors import InvalidValueError


@dataclass(frozen=True, slots=True)
class Schedule:
    """One poli's (or the central desk's) prefetch plan, from `schedules/<id>.toml`."""

    id: str
    clinics: frozenset[str]  # poli codes this schedule covers
    appointment_types: frozenset[str]  # included types; empty = all types
    excluded_appointment_types: frozenset[str]
    overseer: Clinician  # the responsible (mandating) clinician
    mandate_id: str | None  # mandate under which the run queries
    run_at: dt.time  # local time (Europe/Amsterdam) of the run
    days_ahead: int = 1  # prefetch the clinic day this many days ahead
    look_back_days: int = 365  # dispenses since (clinic day - look_back)
    fresh_hours: float | None = None  # override of run.fresh_hours

    def __post_init__(self) -> None:
        if not self.id or not self.id.replace("-", "").replace("_", "").isalnum():
            raise InvalidValueError("schedule id must be letters, digits, - or _")
        if not self.clinics:
            raise InvalidValueError("schedule must name at least one clinic", schedule=self.id)
        if not 0 <= self.days_ahead <= 14:
            raise InvalidValueError("days_ahead must be between 0 and 14", schedule=self.id)
        if not 1 <= self.look_back_days <= 3650:
            raise InvalidValueError("look_back_days must be between 1 and 3650", schedule=self.id)

    def includes_type(self, appointment_type: str) -> bool:
        if appointment_type in self.excluded_appointment_types:
            return False
        return not self.appointment_types or appointment_type in self.appointment_types
