"""What happened to one patient in a run: skipped before querying, or an LSP outcome."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from prefetch.domain.dispense import Dispense


class SkipReason(enum.Enum):
    """Why a patient was not queried. Stored, counted and shown; never holds a BSN."""

    NO_BSN = "no_bsn"
    BSN_INVALID = "bsn_invalid"
    BSN_UNVERIFIED = "bsn_unverified"
    CONSENT_REFUSED = "consent_refused"
    APPOINTMENT_TYPE_EXCLUDED = "appointment_type_excluded"
    CANCELLED = "cancelled"
    FRESH = "fresh"
    MANDATE_MISSING = "mandate_missing"
    MANDATE_EXPIRED = "mandate_expired"
    OUTSIDE_WINDOW = "outside_window"  # appointment outside the schedule's hours, or past
    DUPLICATE = "duplicate"  # an earlier schedule of the same night queries this patient


class OutcomeKind(enum.Enum):
    """DESIGN.md step 5: how an LSP answer maps for the run."""

    RECORDS = "records"  # at least one dispense
    NO_RECORDS = "no_records"  # sources answered NF / empty lists
    NO_REGISTRATIONS = "no_registrations"  # nobody registered the BSN (or no consent)
    REFUSED = "refused"  # definitive refusal with a code
    TRANSIENT = "transient"  # retry later
    FAILED = "failed"  # gave up / our bug / unknown code

    @property
    def is_final(self) -> bool:
        return self is not OutcomeKind.TRANSIENT


class SourceStatus(enum.Enum):
    OK = "OK"  # data found
    NF = "NF"  # nothing found
    AE = "AE"  # application error
    QE = "QE"  # query parameter error


@dataclass(frozen=True, slots=True)
class Issue:
    """A detected issue / acknowledgement detail code as the LSP sent it."""

    code: str
    system: str | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class SourceAnswer:
    """One item of the batch: what one pharmacy (or the LSP itself) answered."""

    organization_ura: str | None
    organization_name: str | None
    application_id: str | None  # AORTA application id (2.16.840.1.113883.2.4.6.6)
    system_uzi: str | None  # UZI system number (2.16.528.1.1007.3.2)
    message_id: str | None  # root^extension of the item
    status: SourceStatus | None
    issues: tuple[Issue, ...] = ()
    dispenses: tuple[Dispense, ...] = ()
    lsp_authored: bool = False  # authored by the LSP itself (app id 1)
    # dispenses the source sent that could not be kept (e.g. `id` without root): the
    # source counts as failed, never as "no medication"
    dropped_dispenses: int = 0


@dataclass(frozen=True, slots=True)
class Outcome:
    """The classified result of one query."""

    kind: OutcomeKind
    sources: tuple[SourceAnswer, ...] = ()
    code: str | None = None  # the deciding issue code, if any
    detail: str | None = None  # operator text, never patient data
    retry_after: float | None = None
    failed_sources: tuple[str, ...] = field(default=())  # URAs/app ids that errored

    @property
    def dispenses(self) -> tuple[Dispense, ...]:
        return tuple(d for s in self.sources for d in s.dispenses)
