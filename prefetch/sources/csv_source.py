"""Appointment lists as exported by the EPD: CSV with a header row.

Columns (header names, any order; `;` or `,` separated, UTF-8 with or without BOM):

==================  =========  ======================================================
column              required   meaning
==================  =========  ======================================================
appointment_id      yes        unique id of the appointment in the EPD
patient_id          yes        hospital patient number
bsn                 no         BSN (9 digits, or 8 without the leading 0); empty: none
bsn_verified        no         yes/no: identity checked with a WID (default no)
consent             no         unknown / granted / refused (default unknown)
clinic              yes        poli code, e.g. CARD
start               yes        ISO date-time; without offset it is Europe/Amsterdam
appointment_type    yes        EPD appointment type code
status              no         booked / cancelled / noshow (default booked)
clinician_uzi       no         UZI number of the treating clinician
==================  =========  ======================================================

An invalid BSN does not stop the intake: the patient is kept with `bsn_invalid=True` so
that eligibility reports `bsn_invalid`. Every other problem is collected and reported with
the file, the line and the fix, all at once.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from prefetch.domain.bsn import Bsn
from prefetch.domain.localtime import parse_local_datetime
from prefetch.domain.people import Appointment, AppointmentStatus, Consent, Patient
from prefetch.errors import ConfigError, InvalidValueError

REQUIRED = ("appointment_id", "patient_id", "clinic", "start", "appointment_type")
OPTIONAL = ("bsn", "bsn_verified", "consent", "status", "clinician_uzi")
_YES = {"yes", "y", "true", "1", "ja", "j"}
_NO = {"no", "n", "false", "0", "nee", ""}


@dataclass(frozen=True, slots=True)
class IntakeProblem:
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


class IntakeError(ConfigError):
    """The file cannot be used; `problems` says where and how to fix it."""

    def __init__(self, path: str, problems: list[IntakeProblem]) -> None:
        shown = "; ".join(str(p) for p in problems[:10])
        more = f" (+{len(problems) - 10} more)" if len(problems) > 10 else ""
        super().__init__(f"{path}: {shown}{more}")
        self.path = path
        self.problems = problems


def _flag(value: str, line: int, column: str, problems: list[IntakeProblem]) -> bool:
    v = value.strip().lower()
    if v in _YES:
        return True
    if v not in _NO:
        problems.append(IntakeProblem(line, column, f"'{value[:20]}' is not yes/no"))
    return False


def _row_to_appointment(
    row: dict[str, str], line: int, problems: list[IntakeProblem]
) -> Appointment | None:
    before = len(problems)
    for col in REQUIRED:
        if not (row.get(col) or "").strip():
            problems.append(IntakeProblem(line, col, "required value is empty"))
    raw_bsn = (row.get("bsn") or "").strip()
    bsn: Bsn | None = None
    bsn_invalid = False
    if raw_bsn:
        try:
            bsn = Bsn.parse(raw_bsn)
        except InvalidValueError:
            bsn_invalid = True
    verified = _flag(row.get("bsn_verified") or "", line, "bsn_verified", problems)
    consent_raw = (row.get("consent") or "unknown").strip().lower() or "unknown"
    try:
        consent = Consent(consent_raw)
    except ValueError:
        problems.append(IntakeProblem(line, "consent", "use unknown, granted or refused"))
        consent = Consent.UNKNOWN
    status_raw = (row.get("status") or "booked").strip().lower() or "booked"
    try:
        status = AppointmentStatus(status_raw)
    except ValueError:
        problems.append(IntakeProblem(line, "status", "use booked, cancelled or noshow"))
        status = AppointmentStatus.BOOKED
    start = None
    if (row.get("start") or "").strip():
        try:
            start = parse_local_datetime(row["start"])
        except InvalidValueError as exc:
            problems.append(IntakeProblem(line, "start", exc.message))
    if len(problems) > before or start is None:
        return None
    try:
        patient = Patient(
            local_id=row["patient_id"].strip(),
            bsn=bsn,
            bsn_verified=verified,
            consent=consent,
            bsn_invalid=bsn_invalid,
        )
        return Appointment(
            id=row["appointment_id"].strip(),
            patient=patient,
            clinic=row["clinic"].strip().upper(),
            start=start,
            appointment_type=row["appointment_type"].strip(),
            status=status,
            clinician_uzi=(row.get("clinician_uzi") or "").strip() or None,
        )
    except InvalidValueError as exc:
        problems.append(IntakeProblem(line, "-", exc.message))
        return None


def parse_appointments_csv(text: str, *, source: str = "<csv>") -> list[Appointment]:
    """Parse a whole CSV export; raise IntakeError listing every problem."""
    text = text.removeprefix("\ufeff")
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise IntakeError(
            source,
            [
                IntakeProblem(
                    1,
                    ",".join(missing),
                    f"missing column(s) in the header row; required: {', '.join(REQUIRED)}",
                )
            ],
        )
    reader.fieldnames = header
    problems: list[IntakeProblem] = []
    appointments: list[Appointment] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        appt = _row_to_appointment({k: v or "" for k, v in row.items() if k}, line, problems)
        if appt is None:
            continue
        if appt.id in seen:
            problems.append(
                IntakeProblem(line, "appointment_id", f"duplicate of line {seen[appt.id]}")
            )
            continue
        seen[appt.id] = line
        appointments.append(appt)
    if problems:
        raise IntakeError(source, problems)
    return appointments


def read_appointments_csv(path: Path) -> list[Appointment]:
    try:
        data = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise IntakeError(str(path), [IntakeProblem(0, "-", "file not found")]) from None
    except UnicodeDecodeError:
        raise IntakeError(
            str(path), [IntakeProblem(0, "-", "not UTF-8: export as UTF-8")]
        ) from None
    return parse_appointments_csv(data, source=str(path))
