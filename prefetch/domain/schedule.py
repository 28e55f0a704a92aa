"""A schedule: which clinic sessions to prefetch, under whose responsibility, and when."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from prefetch.domain.people import Clinician
from prefetch.errors import InvalidValueError

MAX_FRESH_HOURS = 24 * 14


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
    look_back_days: int | None = None  # override of [lsp] look_back_days
    fresh_hours: float | None = None  # override of [run] fresh_hours
    agendas: frozenset[str] = frozenset()  # EPD agendas within the clinics; empty = all
    hours: tuple[dt.time, dt.time] | None = None  # appointment start times covered [from, to)
    cron: str | None = None  # cron-style timing (min hour dom mon dow); else daily at run_at
    run_until: dt.time | None = None  # end of the time window a run may use (local)
    run_from: dt.time | None = None  # start of that window: a run does not start before it
    operator: str | None = None  # who operates it (team or person), for the desk
    source: str | None = None  # the appointment source (a `[sources.NAME]` of the settings)
    columns: tuple[tuple[str, str], ...] = ()  # CSV column mapping (ours, theirs)

    def __post_init__(self) -> None:
        if not self.id or not self.id.replace("-", "").replace("_", "").isalnum():
            raise InvalidValueError("schedule id must be letters, digits, - or _")
        if not self.clinics:
            raise InvalidValueError("schedule must name at least one clinic", schedule=self.id)
        if not 0 <= self.days_ahead <= 14:
            raise InvalidValueError("days_ahead must be between 0 and 14", schedule=self.id)
        if self.look_back_days is not None and not 1 <= self.look_back_days <= 3650:
            raise InvalidValueError("look_back_days must be between 1 and 3650", schedule=self.id)
        if self.fresh_hours is not None and not 0 <= self.fresh_hours <= MAX_FRESH_HOURS:
            raise InvalidValueError(
                f"fresh_hours must be between 0 and {MAX_FRESH_HOURS}", schedule=self.id
            )

    def look_back_from(self, clinic_day: dt.date, default_days: int) -> dt.date:
        """First day of the dispenses to ask for: the schedule's window, else the default."""
        days = default_days if self.look_back_days is None else self.look_back_days
        return clinic_day - dt.timedelta(days=days)

    def fresh_for(self, default: dt.timedelta) -> dt.timedelta:
        """How long a fetch stays fresh for this schedule: its own hours, else the default."""
        return default if self.fresh_hours is None else dt.timedelta(hours=self.fresh_hours)

    def covers(self, clinic: str, agenda: str | None) -> bool:
        """The appointment's clinic (and agenda, when the schedule names agendas) is ours."""
        if clinic not in self.clinics:
            return False
        return not self.agendas or (agenda is not None and agenda in self.agendas)

    def in_hours(self, local_start: dt.time) -> bool:
        if self.hours is None:
            return True
        start, end = self.hours
        return start <= local_start < end

    def includes_type(self, appointment_type: str) -> bool:
        if appointment_type in self.excluded_appointment_types:
            return False
        return not self.appointment_types or appointment_type in self.appointment_types
