"""Pure domain values and rules. No I/O, no clocks, no frameworks."""

from prefetch.domain.bsn import Bsn
from prefetch.domain.dispense import Dispense, DispenseProvenance
from prefetch.domain.outcome import Outcome, OutcomeKind, SkipReason, SourceAnswer
from prefetch.domain.people import (
    Appointment,
    AppointmentStatus,
    Clinician,
    Consent,
    Mandate,
    Patient,
)

__all__ = [
    "Appointment",
    "AppointmentStatus",
    "Bsn",
    "Clinician",
    "Consent",
    "Dispense",
    "DispenseProvenance",
    "Mandate",
    "Outcome",
    "OutcomeKind",
    "Patient",
    "SkipReason",
    "SourceAnswer",
]
