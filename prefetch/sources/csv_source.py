"""Appointment lists as exported by the EPD: CSV with a header row.

Header names are matched ignoring case, spaces, `_`, `-` and `.`, through this alias table
(a schedule's `[source] columns` maps other exports' names onto the same columns):

================  ========  ==================================================  ==============
column            required  aliases                                             meaning
================  ========  ==================================================  ==============
appointment_id    yes       afspraak_id, afspraaknummer, appointment            EPD id
patient_id        yes       patientnummer, patnr, patient_number, mrn           hospital no.
bsn               no        burgerservicenummer                                 9 digits
bsn_verified      no        bsn_geverifieerd, geverifieerd, wid_checked         yes/no (no)
consent           no        toestemming, bezwaar_status                         see below
clinic            yes       poli, polikliniek, afdeling, specialisme            poli code
agenda            no        spreekuur, resource                                 EPD agenda
start             yes       start_time, starttijd, begin, datum_tijd            date-time
end               no        end_time, eind, eindtijd                            date-time
appointment_type  yes       type, afspraaktype, afspraak_type, soort            type code
status            no        afspraakstatus, appointment_status                  see below
clinician_uzi     no        behandelaar_uzi, uzi                                UZI number
================  ========  ==================================================  ==============

Consent: unknown/granted/refused (onbekend/ja/nee, bezwaar = refused). Status:
booked/cancelled/noshow (gepland, geannuleerd, afgezegd, verwijderd...). Times: ISO 8601 or
`24-11-2026 09:30`; without an offset Europe/Amsterdam, a non-existent or ambiguous local
time is a row error. Encoding: UTF-8 with or without BOM, UTF-16 with BOM, else cp1252
(decided once for the whole file). Separator `;`, `,` or tab (from the header row).

An invalid BSN does not make a row bad: the patient is kept with `bsn_invalid=True` so that
eligibility reports `bsn_invalid`. Any other problem makes the row an `EntryError` ("row 7",
the header being row 1) and the other rows go on. No message repeats a value from the file.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TypeVar

from prefetch.domain.people import Appointment, Patient
from prefetch.errors import InvalidValueError
from prefetch.logging import get_logger
from prefetch.sources import values
from prefetch.sources.intake import (
    MAX_FILE_BYTES,
    EntryError,
    IntakeResult,
    Received,
    SourceUnreadable,
    read_file_bytes,
    read_file_size,
)

log = get_logger("prefetch.sources.csv")

REQUIRED = ("appointment_id", "patient_id", "clinic", "start", "appointment_type")
OPTIONAL = ("bsn", "bsn_verified", "consent", "agenda", "end", "status", "clinician_uzi")
ALIASES: dict[str, tuple[str, ...]] = {
    "appointment_id": ("afspraak_id", "afspraaknummer", "afspraaknr", "appointment"),
    "patient_id": ("patientnummer", "patnr", "patient_number", "patient_nr", "mrn"),
    "bsn": ("burgerservicenummer",),
    "bsn_verified": ("bsn_geverifieerd", "geverifieerd", "wid_checked", "bsn_checked"),
    "consent": ("toestemming", "bezwaar_status", "lsp_consent"),
    "clinic": ("poli", "polikliniek", "afdeling", "specialisme"),
    "agenda": ("spreekuur", "resource"),
    "start": ("start_time", "starttijd", "begin", "datum_tijd", "start_datetime"),
    "end": ("end_time", "eind", "eindtijd", "end_datetime"),
    "appointment_type": ("type", "afspraaktype", "afspraak_type", "soort"),
    "status": ("afspraakstatus", "appointment_status"),
    "clinician_uzi": ("behandelaar_uzi", "uzi"),
}
MAX_ROWS = 200_000
T = TypeVar("T")


def normalise_header(name: str) -> str:
    cleaned = name.replace("\ufeff", "").replace("\u200b", "").strip().lower()
    return "".join(ch for ch in cleaned if ch not in " _-.\t")


_LOOKUP: dict[str, str] = {}
for _column in (*REQUIRED, *OPTIONAL):
    for _name in (_column, *ALIASES.get(_column, ())):
        _LOOKUP[normalise_header(_name)] = _column

# The csv module's own limit (131,072) raises mid-file; ours is checked per field instead.
csv.field_size_limit(MAX_FILE_BYTES)


def decode(data: bytes, file: str) -> str:
    """UTF-8 (BOM or not), UTF-16 with BOM, else cp1252: one decision for the whole file."""
    if data.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            encoding = "cp1252"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        raise SourceUnreadable(
            file, f"not readable as {encoding}: export as UTF-8 (or Excel's CSV)"
        ) from None


def _delimiter(header_line: str) -> str:
    counts = {d: header_line.count(d) for d in (";", ",", "\t")}
    return max(counts, key=lambda d: (counts[d], d == ";"))


def column_map(
    header: list[str], file: str, columns: Mapping[str, str] | None = None
) -> dict[str, int]:
    """Canonical column -> index; unknown headers are ignored, duplicates refused."""
    custom = {normalise_header(v): k for k, v in (columns or {}).items()}
    found: dict[str, int] = {}
    for index, name in enumerate(header):
        key = normalise_header(name)
        column = custom.get(key) or _LOOKUP.get(key)
        if column is None:
            continue
        if column in found:
            raise SourceUnreadable(
                file,
                f"row 1: two columns mean '{column}' (columns {found[column] + 1} "
                f"and {index + 1}): keep one",
            )
        found[column] = index
    missing = [c for c in REQUIRED if c not in found]
    if missing:
        raise SourceUnreadable(
            file,
            f"row 1: missing required column(s) {', '.join(missing)}; see the alias table "
            "in the documentation or map them in the schedule's [source] columns",
        )
    return found


def _cell(row: list[str], cols: Mapping[str, int], name: str) -> str:
    index = cols.get(name)
    raw = row[index] if index is not None and index < len(row) else ""
    if len(raw) > values.MAX_FIELD_CHARS:
        raise values.ValueProblem(f"{name}: longer than {values.MAX_FIELD_CHARS} characters")
    return raw


def _parse(fn: Callable[[str], T], row: list[str], cols: Mapping[str, int], name: str) -> T:
    try:
        return fn(_cell(row, cols, name))
    except values.ValueProblem as exc:
        raise values.ValueProblem(f"{name}: {exc}") from None


def row_to_appointment(row: list[str], cols: Mapping[str, int]) -> Appointment:
    """One data row; raises `values.ValueProblem` naming the column (never the value)."""
    for name in REQUIRED:
        if not _cell(row, cols, name).strip():
            raise values.ValueProblem(f"{name}: required value is empty")
    bsn, bsn_invalid = values.bsn(_cell(row, cols, "bsn"))
    end = _parse(values.when, row, cols, "end") if _cell(row, cols, "end").strip() else None
    try:
        patient = Patient(
            local_id=_parse(values.code, row, cols, "patient_id"),
            bsn=bsn,
            bsn_verified=_parse(values.flag, row, cols, "bsn_verified"),
            consent=_parse(values.consent, row, cols, "consent"),
            bsn_invalid=bsn_invalid,
        )
        return Appointment(
            id=_parse(values.code, row, cols, "appointment_id"),
            patient=patient,
            # A day repeats a few clinics and types: one string each (a big day is held).
            clinic=sys.intern(_parse(values.code, row, cols, "clinic").upper()),
            start=_parse(values.when, row, cols, "start"),
            end=end,
            appointment_type=sys.intern(_parse(values.code, row, cols, "appointment_type")),
            status=_parse(values.status, row, cols, "status"),
            clinician_uzi=_parse(values.code, row, cols, "clinician_uzi") or None,
            agenda=_parse(values.code, row, cols, "agenda") or None,
        )
    except InvalidValueError as exc:
        raise values.ValueProblem(exc.message) from None


def parse_csv(
    text: str, *, file: str = "<csv>", columns: Mapping[str, str] | None = None
) -> IntakeResult:
    """Parse a decoded export: good rows kept, each bad row one `EntryError`."""
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise SourceUnreadable(file, "the file is empty: expected a header row and rows")
    result = IntakeResult()
    lines = io.StringIO(text, newline="")
    result.received.extend(_received(lines, file, columns, result.errors))
    return result


def _received(
    lines: Iterable[str], file: str, columns: Mapping[str, str] | None, errors: list[EntryError]
) -> Iterator[Received]:
    """The good rows of an export, one at a time; each bad row appended to `errors`."""
    lines = iter(lines)
    first = next(lines, "").removeprefix("\ufeff")
    if not first.strip():
        raise SourceUnreadable(file, "the file is empty: expected a header row and rows")
    reader = csv.reader(itertools.chain([first], lines), delimiter=_delimiter(first))
    try:
        header = next(reader)
        cols = column_map(header, file, columns)
        seen: dict[str, int] = {}
        row_number = 1
        for row in reader:
            row_number += 1
            if row_number > MAX_ROWS + 1:
                errors.append(
                    EntryError(file, "file", f"more than {MAX_ROWS} rows: the rest is ignored")
                )
                break
            if not any(cell.strip() for cell in row):
                continue
            where = f"row {row_number}"
            if len(row) != len(header):
                errors.append(
                    EntryError(
                        file,
                        where,
                        f"{len(row)} fields where the header has {len(header)}: "
                        "a shifted or split column (check the separator and quotes)",
                    )
                )
                continue
            try:
                appt = row_to_appointment(row, cols)
            except values.ValueProblem as exc:
                errors.append(EntryError(file, where, str(exc)))
                continue
            if appt.id in seen:
                errors.append(
                    EntryError(
                        file,
                        where,
                        f"appointment_id: same id as row {seen[appt.id]}; kept that one",
                    )
                )
                continue
            seen[appt.id] = row_number
            yield Received(appt)
    except csv.Error:
        errors.append(
            EntryError(file, f"row {reader.line_num}", "broken quoting: the rest is unreadable")
        )


def _encoding(path: Path) -> str:
    """`decode`'s choice for a file, made without holding it: UTF-8 (BOM or not), UTF-16
    with BOM, else cp1252."""
    with path.open("rb") as handle:
        head = handle.read(4)
        if head.startswith(codecs.BOM_UTF8):
            return "utf-8-sig"
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16"
        handle.seek(0)
        checker = codecs.getincrementaldecoder("utf-8")()
        try:
            while block := handle.read(1 << 20):
                checker.decode(block)
            checker.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252"
    return "utf-8"


def stream_csv(path: Path, columns: Mapping[str, str] | None = None) -> Iterator[Appointment]:
    """The good appointments of an export file, read a row at a time (a big day is not
    held as text); bad rows are logged (place only) as they are met. The same checks
    as `read_csv` (size, encoding, header, rows)."""
    read_file_size(path)
    file = str(path)
    encoding = _encoding(path)
    errors: list[EntryError] = []
    try:
        with path.open(encoding=encoding, newline="") as handle:
            for received in _received(handle, file, columns, errors):
                _log(errors)
                yield received.appointment
            _log(errors)
    except UnicodeDecodeError:
        raise SourceUnreadable(
            file, f"not readable as {encoding}: export as UTF-8 (or Excel's CSV)"
        ) from None


def _log(errors: list[EntryError]) -> None:
    for error in errors:
        log.warning("intake_row_skipped", file=error.file, where=error.where, reason=error.message)
    errors.clear()


class CsvSource:
    """`AppointmentSource` for CSV exports, with an optional column mapping."""

    format = "csv"

    def __init__(self, columns: Mapping[str, str] | None = None) -> None:
        self.columns = dict(columns or {})

    def read_bytes(self, data: bytes, *, file: str) -> IntakeResult:
        return parse_csv(decode(data, file), file=file, columns=self.columns)


def read_csv(path: Path, columns: Mapping[str, str] | None = None) -> IntakeResult:
    return CsvSource(columns).read_bytes(read_file_bytes(path), file=str(path))


def read_appointments_csv(path: Path) -> list[Appointment]:
    """The good appointments of an export; bad rows are logged (place only) and skipped."""
    return _logged(read_csv(path))


def _logged(result: IntakeResult) -> list[Appointment]:
    _log(list(result.errors))
    return result.appointments


def parse_appointments_csv(text: str, *, source: str = "<csv>") -> list[Appointment]:
    """The good appointments of decoded CSV text (row errors logged, as above)."""
    return _logged(parse_csv(text, file=source))
