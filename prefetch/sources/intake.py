"""The `AppointmentSource` port and what every adapter returns.

An adapter turns one input (a CSV export, an HL7v2 SIU file or message, a FHIR JSON file)
into `Appointment` values plus one `EntryError` per bad row, message or entry: a bad entry
is reported and skipped, the good ones go on. Only an input that cannot be read at all
(missing, too large, undecodable, no usable header) raises `SourceUnreadable`.

Error messages name the file and the place (`row 7` with the header as row 1, `message 2`,
`entry 3`) and never repeat a value from the input: a shifted column could put a BSN there.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from prefetch.domain.people import Appointment
from prefetch.errors import ConfigError

FORMATS = ("csv", "hl7v2", "fhir")
MAX_FILE_BYTES = 64 * 1024 * 1024  # one day's export of a large hospital is a few MB


@dataclass(frozen=True, slots=True)
class EntryError:
    """One bad row, message or entry. `message` never contains a value from the input."""

    file: str
    where: str  # "row 7", "message 2", "entry 3", or "file"
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.message}"

    def as_json(self) -> dict[str, str]:
        return {"file": self.file, "where": self.where, "message": self.message}


@dataclass(frozen=True, slots=True)
class Received:
    """An appointment as one message or row stated it; `version` orders updates."""

    appointment: Appointment
    version: dt.datetime | None = None  # the sender's time of the change, when it says


@dataclass(slots=True)
class IntakeResult:
    received: list[Received] = field(default_factory=list)
    errors: list[EntryError] = field(default_factory=list)

    @property
    def appointments(self) -> list[Appointment]:
        return [r.appointment for r in self.received]


class SourceUnreadable(ConfigError):
    """The input cannot be read at all (exit code 2); the message names file and fix."""

    def __init__(self, file: str, message: str) -> None:
        super().__init__(f"{file}: {message}")
        self.file = file


class AppointmentSource(Protocol):
    """Reads one input into appointments and per-entry errors.

    Contract: never raises for a bad row, message or entry (that is an `EntryError`);
    raises `SourceUnreadable` only when nothing can be read; never puts input values in
    error text.
    """

    format: str

    def read_bytes(self, data: bytes, *, file: str) -> IntakeResult: ...


def read_file_size(path: Path) -> int:
    """The file's size, or `SourceUnreadable` (missing, unreadable, too large)."""
    try:
        if not path.is_file() and path.exists():
            raise IsADirectoryError
        size = path.stat().st_size
    except FileNotFoundError:
        raise SourceUnreadable(str(path), "file not found") from None
    except IsADirectoryError:
        raise SourceUnreadable(str(path), "is a directory, not a file") from None
    except OSError as exc:
        raise SourceUnreadable(str(path), f"cannot read file ({exc.strerror})") from None
    if size > MAX_FILE_BYTES:
        raise SourceUnreadable(
            str(path),
            f"file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB: split the export",
        )
    return size


def read_file_bytes(path: Path) -> bytes:
    """The file's bytes, or `SourceUnreadable` (missing, unreadable, too large)."""
    read_file_size(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SourceUnreadable(str(path), "file not found") from None
    except IsADirectoryError:
        raise SourceUnreadable(str(path), "is a directory, not a file") from None
    except OSError as exc:
        raise SourceUnreadable(str(path), f"cannot read file ({exc.strerror})") from None
