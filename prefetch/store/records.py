"""The values that go into and come out of the store's repositories (the run's own values
are in `prefetch.domain.run`; re-exported here for the callers that import them from the
store).

BSN fields hold the nine digits (the store needs the number) but are left out of `repr`,
so that logging a record never prints one.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from prefetch.domain.bsn import passes_eleven_check
from prefetch.domain.dispense import Dispense, DispenseProvenance
from prefetch.domain.outcome import OutcomeKind
from prefetch.domain.run import (
    ClaimedItem,
    ItemRecord,
    ItemState,
    NewItem,
    RunKind,
    RunRecord,
    RunState,
    RunSummary,
)
from prefetch.errors import InvalidValueError

__all__ = [
    "AuditAction",
    "AuditEvent",
    "ClaimedItem",
    "DetailValue",
    "ItemRecord",
    "ItemState",
    "NewItem",
    "RecordResult",
    "RunKind",
    "RunRecord",
    "RunState",
    "RunSummary",
    "StoredDispense",
]

DetailValue = str | int | float | bool | None


class AuditAction(enum.Enum):
    """NEN 7513 / IHE ATNA action codes."""

    CREATE = "C"
    READ = "R"
    UPDATE = "U"
    DELETE = "D"
    EXECUTE = "E"  # e.g. an LSP query


def _require_aware(name: str, value: dt.datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValueError(f"{name} must be timezone-aware")


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One NEN 7513 log line: who did what, to whose data, under whose authority.

    `object_detail` describes the object (query id, dispense count, page); it must never
    hold dispensed content or a BSN (a value that looks like one is refused).
    """

    event_id: str  # unique; the idempotency key of the log line
    event_type: str  # lsp_query, record_view, refetch, ...
    action: AuditAction
    occurred_at: dt.datetime  # aware
    user_id: str  # UZI number, employee id or UZI system number
    source_system: str  # our application / host
    outcome: str  # e.g. the OutcomeKind value, "success", "denied"
    user_role: str | None = None  # UZI role code or desk role
    responsible_user_id: str | None = None  # the overseer (mandating clinician)
    patient_bsn: str | None = field(default=None, repr=False)
    object_detail: Mapping[str, DetailValue] = field(default_factory=dict)
    authorisation_basis: str | None = None  # mandate id
    source_workstation: str | None = None

    def __post_init__(self) -> None:
        _require_aware("occurred_at", self.occurred_at)
        if not self.event_id or not self.event_type or not self.user_id:
            raise InvalidValueError("audit event needs an event id, type and user id")
        if self.patient_bsn is not None and not passes_eleven_check(self.patient_bsn):
            raise InvalidValueError(
                "audit patient identifier is not a valid BSN", event_id=self.event_id
            )
        for key, value in self.object_detail.items():
            if isinstance(value, str) and passes_eleven_check(value.strip()):
                raise InvalidValueError(
                    "audit object detail must not hold a BSN", event_id=self.event_id, key=key
                )
        object.__setattr__(self, "object_detail", MappingProxyType(dict(self.object_detail)))


@dataclass(frozen=True, slots=True)
class RecordResult:
    """Dispense rows written by one `record_outcome`: new rows and refreshed rows.

    A dispense already stored from a later fetch is left as it is and counted in neither.
    """

    inserted: int
    updated: int
    lease_lost: bool = False  # the worker no longer held the item: only the audit row went in


@dataclass(frozen=True, slots=True)
class StoredDispense:
    """A dispense with where it came from; `first_fetched_at` is its first arrival."""

    dispense: Dispense
    provenance: DispenseProvenance
    patient_bsn: str = field(repr=False)
    first_fetched_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Recording:
    """One answer to record (`RunStore.record_many`): a final outcome, or with
    `next_attempt_at` a retry (the item waits to ask again; `outcome_code` says why)."""

    item_id: int
    audit: AuditEvent
    outcome_kind: OutcomeKind
    outcome_code: str | None = None
    detail: str | None = None
    dispenses: tuple[tuple[Dispense, DispenseProvenance], ...] = ()
    next_attempt_at: dt.datetime | None = None
    worker_id: str | None = None
