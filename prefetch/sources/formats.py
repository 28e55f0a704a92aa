"""Pick the adapter for a format, and write appointments as the integrators' JSON."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefetch.domain.people import Appointment, AppointmentStatus
from prefetch.errors import ConfigError
from prefetch.sources.intake import FORMATS, AppointmentSource, IntakeResult, read_file_bytes

_SUFFIXES = {".csv": "csv", ".txt": "csv", ".hl7": "hl7v2", ".er7": "hl7v2", ".json": "fhir"}


def guess_format(path: Path) -> str | None:
    return _SUFFIXES.get(path.suffix.lower())


def source_for(
    fmt: str,
    *,
    columns: Mapping[str, str] | None = None,
    verified: Mapping[str, str] | None = None,
) -> AppointmentSource:
    """The adapter for `fmt`; `columns` maps CSV columns, `verified` is the HL7v2
    "BSN verified" mapping of the source's settings (field and value)."""
    if fmt == "csv":
        from prefetch.sources.csv_source import CsvSource

        return CsvSource(columns)
    if fmt == "hl7v2":
        from prefetch.sources.hl7v2_source import Hl7v2Source, VerifiedRule

        return Hl7v2Source(VerifiedRule.from_mapping(verified))
    if fmt == "fhir":
        from prefetch.sources.fhir_source import FhirSource

        return FhirSource()
    raise ConfigError(f"unknown format '{fmt}': use one of {', '.join(FORMATS)}")


def read_path(path: Path, fmt: str, **options: Any) -> IntakeResult:
    return source_for(fmt, **options).read_bytes(read_file_bytes(path), file=str(path))


def appointment_json(a: Appointment) -> dict[str, object]:
    cancelled = a.status is AppointmentStatus.CANCELLED
    return {
        "id": a.id,
        "start": a.start.isoformat(),
        "end": a.end.isoformat() if a.end is not None else None,
        "status": "cancelled" if cancelled else a.status.value,
        "clinic": a.clinic,
        "agenda": a.agenda,
        "type": a.appointment_type,
        "patient_id": a.patient.local_id,
        "bsn": a.patient.bsn.value if a.patient.bsn is not None else None,
        "bsn_verified": a.patient.bsn_verified,
    }


def result_json(result: IntakeResult) -> dict[str, object]:
    return {
        "appointments": [appointment_json(a) for a in result.appointments],
        "errors": [e.as_json() for e in result.errors],
    }
