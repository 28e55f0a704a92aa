"""The values that describe a run to its callers: configuration, the prepared run,
progress while it works, the report at the end, and how run ids are made."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from prefetch.hl7v3.params import requester_roots
from prefetch.store.records import RunSummary


@dataclass(frozen=True, slots=True)
class EngineConfig:
    hospital_ura: str
    hospital_name: str
    application_id: str
    system_uzi: str
    max_attempts: int = 4
    backoff_base: dt.timedelta = dt.timedelta(seconds=30)
    backoff_max: dt.timedelta = dt.timedelta(minutes=15)
    fresh_for: dt.timedelta = dt.timedelta(hours=12)  # default; a schedule may override
    look_back_days: int = 365  # default; a schedule may override
    workers: int = 4
    stale_after: dt.timedelta = dt.timedelta(minutes=10)
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
    queried: int = 0
    errors: list[str] = field(default_factory=list)


def make_run_id(schedule_id: str, clinic_day: dt.date, kind: str) -> str:
    if kind == "scheduled":
        return f"{schedule_id}:{clinic_day.isoformat()}"
    return f"{schedule_id}:{clinic_day.isoformat()}:{kind}:{uuid.uuid4().hex[:12]}"
