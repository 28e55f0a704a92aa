"""The appointment sources of a hospital (`sources_file`, default `config/sources.toml`).

::

    [sources.epd-siu]                 # the name used by --source and in the book
    format = "hl7v2"
    verified = { field = "PID-32", value = "VIDE" }   # which field/value means "BSN verified"

    [sources.epd-csv]
    format = "csv"
    columns = { appointment_id = "Nr", start = "Wanneer" }   # ours = theirs

A source that is not listed is read with the defaults: the format from `--format` or the
file name, no column mapping, and no BSN counted as verified (HL7v2, FHIR).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefetch.errors import ConfigError, InvalidValueError
from prefetch.sources.hl7v2_source import VerifiedRule
from prefetch.sources.intake import FORMATS

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_KEYS = {"format", "verified", "columns"}


@dataclass(frozen=True, slots=True)
class SourceSettings:
    name: str
    format: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    verified: dict[str, str] = field(default_factory=dict)


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(
            "source name must be 1-64 letters, digits, '.', '_' or '-' (e.g. epd-siu)"
        )
    return name


def load_sources(path: Path) -> dict[str, SourceSettings]:
    """Every `[sources.NAME]` of the file; a missing file means no configured source."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({type(exc).__name__})") from None
    found: dict[str, SourceSettings] = {}
    tables: Any = data.get("sources", {})
    if not isinstance(tables, dict) or set(data) - {"sources"}:
        raise ConfigError(f"{path}: only [sources.NAME] tables belong here")
    for name, table in tables.items():
        where = f"{path}: sources.{name}"
        if not isinstance(table, dict) or set(table) - _KEYS:
            raise ConfigError(f"{where}: a table with {', '.join(sorted(_KEYS))}")
        fmt = table.get("format")
        if fmt is not None and fmt not in FORMATS:
            raise ConfigError(f"{where}.format: use one of {', '.join(FORMATS)}")
        columns = table.get("columns", {})
        verified = table.get("verified", {})
        if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
            raise ConfigError(f'{where}.columns: a table of column = "their header"')
        if not isinstance(verified, dict):
            raise ConfigError(f'{where}.verified: like {{ field = "PID-32", value = "Y" }}')
        try:
            VerifiedRule.from_mapping({str(k): str(v) for k, v in verified.items()})
        except InvalidValueError as exc:
            raise ConfigError(f"{where}.verified: {exc.message}") from None
        found[check_name(str(name))] = SourceSettings(
            str(name),
            fmt,
            {str(k): str(v) for k, v in columns.items()},
            {str(k): str(v) for k, v in verified.items()},
        )
    return found


def source_settings(path: Path, name: str) -> SourceSettings:
    return load_sources(path).get(check_name(name), SourceSettings(name))
