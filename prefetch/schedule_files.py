"""Schedule files (`schedules/<id>.toml`), reviewed like code and checked before use.

Every problem names the file, the line (where the key is) and the fix.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path
from typing import Any

from prefetch.domain.people import Clinician
from prefetch.domain.schedule import Schedule
from prefetch.errors import ConfigError, InvalidValueError

_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_KNOWN = {
    "id",
    "clinics",
    "appointment_types",
    "exclude_appointment_types",
    "run_at",
    "days_ahead",
    "look_back_days",
    "fresh_hours",
    "mandate",
    "overseer",
}


class ScheduleError(ConfigError):
    def __init__(self, path: Path, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


def _line_of(text: str, key: str) -> int | None:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=", re.MULTILINE)
    m = pattern.search(text)
    if m is None:
        m = re.search(rf"^\s*\[{re.escape(key)}\]", text, re.MULTILINE)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _strings(data: dict[str, Any], key: str, fail: Any) -> frozenset[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        fail(key, f'{key} must be a list of codes, e.g. {key} = ["CARD"]')
    return frozenset(v.strip() for v in value)


def load_schedule(path: Path) -> Schedule:
    """Read and validate one schedule file; raise ScheduleError naming file, line and fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScheduleError(path, None, f"cannot read file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ScheduleError(path, None, "not UTF-8 text: save the file as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        raise ScheduleError(path, line, f"not valid TOML: {exc}") from None

    def fail(key: str, message: str) -> None:
        raise ScheduleError(path, _line_of(text, key), message)

    for key in data:
        if key not in _KNOWN:
            fail(key, f"unknown key '{key}'; known keys: {', '.join(sorted(_KNOWN))}")
    for key in ("clinics", "run_at", "overseer"):
        if key not in data:
            raise ScheduleError(path, None, f"missing required key '{key}'")
    run_at = data["run_at"]
    if isinstance(run_at, dt.time):
        run_time = run_at
    elif isinstance(run_at, str) and (m := _TIME.match(run_at)):
        run_time = dt.time(int(m.group(1)), int(m.group(2)))
    else:
        fail("run_at", 'run_at must be a local time like "19:00"')
    overseer = data["overseer"]
    if not isinstance(overseer, dict):
        fail("overseer", "overseer must be a table with uzi, role and name")
    try:
        clinician = Clinician(
            uzi_number=str(overseer.get("uzi", "")),
            role_code=str(overseer.get("role", "")),
            name=str(overseer.get("name", "")),
            ura=overseer.get("ura"),
        )
    except InvalidValueError as exc:
        fail("overseer", f"overseer: {exc.message}")
    for key in ("days_ahead", "look_back_days"):
        if key in data and (not isinstance(data[key], int) or isinstance(data[key], bool)):
            fail(key, f"{key} must be a whole number")
    fresh = data.get("fresh_hours")
    if "fresh_hours" in data and (not isinstance(fresh, int | float) or isinstance(fresh, bool)):
        fail("fresh_hours", "fresh_hours must be a number of hours")
    try:
        return Schedule(
            id=str(data.get("id", path.stem)),
            clinics=frozenset(c.upper() for c in _strings(data, "clinics", fail)),
            appointment_types=_strings(data, "appointment_types", fail),
            excluded_appointment_types=_strings(data, "exclude_appointment_types", fail),
            overseer=clinician,
            mandate_id=data.get("mandate"),
            run_at=run_time,
            days_ahead=data.get("days_ahead", 1),
            look_back_days=data.get("look_back_days"),
            fresh_hours=data.get("fresh_hours"),
        )
    except InvalidValueError as exc:
        key = next(
            (
                k
                for k in ("clinics", "days_ahead", "look_back_days", "fresh_hours", "id")
                if k in exc.message
            ),
            "id",
        )
        raise ScheduleError(path, _line_of(text, key), exc.message) from None


def load_schedules(directory: Path) -> list[Schedule]:
    """All `*.toml` schedules of a directory, sorted by id; ids must be unique."""
    schedules = [load_schedule(p) for p in sorted(directory.glob("*.toml"))]
    seen: set[str] = set()
    for s in schedules:
        if s.id in seen:
            raise ScheduleError(directory, None, f"schedule id '{s.id}' is used twice")
        seen.add(s.id)
    return schedules
