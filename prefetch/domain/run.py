"""The values of a run: its states, its items, the engine's configuration, progress and
the report. Pure values; the store keeps them (`prefetch.ports.RunStore`), the use case
(`prefetch.run_day`) and the engine (`prefetch.engine`) produce them.

BSN fields hold the nine digits (the store needs the number) but are left out of `repr`,
so that logging a record never prints one.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from prefetch.domain.bsn import passes_eleven_check
from prefetch.domain.localtime import AMSTERDAM
from prefetch.errors import InvalidValueError
from prefetch.hl7v3.params import requester_roots


class RunKind(enum.Enum):
    SCHEDULED = "scheduled"
    MANUAL = "manual"


class RunState(enum.Enum):
    PLANNED = "planned"
    RUNNING = "running"
    FINISHED = "finished"
    ABORTED = "aborted"
    INCOMPLETE = "incomplete"  # stopped at the end of its time window, items left


class ItemState(enum.Enum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    SKIPPED = "skipped"
    DONE = "done"
    RETRY_WAIT = "retry_wait"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class NewItem:
    """One patient to put in a new run. With a `skip_reason` it starts as skipped."""

    patient_local_id: str
    bsn: str | None = field(repr=False)
    clinics: tuple[str, ...]
    skip_reason: str | None = None

    def __post_init__(self) -> None:
        if not self.patient_local_id:
            raise InvalidValueError("run item needs a patient local id")
        if self.skip_reason is None and (self.bsn is None or not passes_eleven_check(self.bsn)):
            raise InvalidValueError(
                "an item to query needs a valid BSN (or a skip reason)",
                patient_local_id=self.patient_local_id,
            )


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: str
    schedule_id: str
    clinic_day: dt.date
    kind: RunKind
    state: RunState
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    counts: Mapping[str, object] | None


@dataclass(frozen=True, slots=True)
class ItemRecord:
    """A run item as stored (for listings, the desk and tests)."""

    id: int
    run_id: str
    patient_local_id: str
    bsn: str | None = field(repr=False)
    clinics: tuple[str, ...]
    state: ItemState
    skip_reason: str | None
    outcome_kind: str | None
    outcome_code: str | None
    outcome_detail: str | None
    attempts: int
    next_attempt_at: dt.datetime | None
    claimed_by: str | None
    claimed_at: dt.datetime | None
    updated_at: dt.datetime
    dispense_count: int


@dataclass(frozen=True, slots=True)
class ClaimedItem:
    """An item a worker now holds (state in_flight). `attempts` includes this one."""

    id: int
    run_id: str
    patient_local_id: str
    bsn: str = field(repr=False)
    clinics: tuple[str, ...]
    attempts: int
    claimed_by: str
    claimed_at: dt.datetime


@dataclass(frozen=True, slots=True)
class RunSummary:
    run_id: str
    total: int
    by_state: Mapping[str, int]
    by_outcome: Mapping[str, int]
    by_skip_reason: Mapping[str, int]
    dispenses: int  # dispenses received in this run (sum over items)

    def count(self, state: ItemState) -> int:
        return self.by_state.get(state.value, 0)

    @property
    def to_query(self) -> int:
        return self.total - self.count(ItemState.SKIPPED)

    @property
    def definitive(self) -> int:
        """Items with a final answer or a final failure."""
        return self.count(ItemState.DONE) + self.count(ItemState.FAILED)

    @property
    def open(self) -> int:
        """Items not yet final: pending, waiting for a retry or in flight."""
        return self.to_query - self.definitive


@dataclass(frozen=True, slots=True)
class EngineConfig:
    hospital_ura: str
    hospital_name: str
    application_id: str
    system_uzi: str
    max_attempts: int = 3
    backoff_base: dt.timedelta = dt.timedelta(seconds=2)
    backoff_max: dt.timedelta = dt.timedelta(minutes=1)
    fresh_for: dt.timedelta = dt.timedelta(hours=12)  # default; a schedule may override
    look_back_days: int = 365  # default; a schedule may override
    workers: int = 4
    lease: dt.timedelta = dt.timedelta(seconds=15)  # an item in flight, renewed by heartbeat
    idle_poll_seconds: float = 1.0
    store_attempts: int = 6

    @property
    def message_id_root(self) -> str:
        return requester_roots(self.hospital_ura)[0]

    @property
    def query_id_root(self) -> str:
        return requester_roots(self.hospital_ura)[1]


@dataclass(frozen=True, slots=True)
class PreparedRun:
    run_id: str
    created: bool  # False: the run existed already (resume)
    planned: int  # patients in the run
    to_query: int


@dataclass(frozen=True, slots=True)
class Progress:
    done: int  # items that reached a final state in this execution
    total: int  # items to query in this run
    last_kind: str


@dataclass
class RunReport:
    summary: RunSummary
    stopped: str | None = None  # why the run stopped early, if it did
    incomplete: bool = False  # the window closed with items left
    queried: int = 0
    reclaimed: int = 0  # items in flight of a process that died, taken back at the start
    errors: list[str] = field(default_factory=list)


def run_lock_name(schedule_id: str, clinic_day: dt.date) -> str:
    """The lock that keeps one run per schedule and clinic day at a time."""
    return f"run:{schedule_id}:{clinic_day.isoformat()}"


def run_deadline(
    run_at: dt.time, run_until: dt.time | None, clinic_day: dt.date, days_ahead: int
) -> dt.datetime | None:
    """The end of a run's time window ("not after"), aware UTC, or None without one.

    The window opens at `run_at` (Europe/Amsterdam) `days_ahead` days before the clinic
    day and closes at the next `run_until` after that (the next day when it is earlier).
    """
    if run_until is None:
        return None
    opens_on = clinic_day - dt.timedelta(days=days_ahead)
    closes_on = opens_on if run_until > run_at else opens_on + dt.timedelta(days=1)
    return dt.datetime.combine(closes_on, run_until, tzinfo=AMSTERDAM).astimezone(dt.UTC)


def make_run_id(schedule_id: str, clinic_day: dt.date, kind: str) -> str:
    if kind == "scheduled":
        return f"{schedule_id}:{clinic_day.isoformat()}"
    return f"{schedule_id}:{clinic_day.isoformat()}:{kind}:{uuid.uuid4().hex[:12]}"
