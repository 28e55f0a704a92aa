"""Schedule files (`schedules/<id>.toml`), reviewed like code and checked before use.

`check_schedule(path)` returns the schedule (or None) and every problem, each naming the
file, the line (where the key is) and a hint; `check_schedules(paths)` adds the problems
between files (the same id twice, overlapping schedules under different clinicians).
`load_schedule(path)` raises `ScheduleError` with the first problem (for runs).

Keys: id, clinics, agendas, appointment_types, exclude_appointment_types, run_at (a local
time) or cron (five fields), run_window ("19:00-23:00": the time a run may use),
days_ahead, hours ("08:00-17:00": the appointment times covered), look_back_days,
fresh_hours, mandate, [overseer] (uzi, role, name, ura), operator, source, [columns].
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefetch.domain.people import Clinician
from prefetch.domain.schedule import Schedule
from prefetch.domain.timing import CronError, dst_hour_runs, parse_cron
from prefetch.errors import ConfigError, InvalidValueError

_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_SPAN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)\s*-\s*([01]\d|2[0-4]):([0-5]\d)$")
_KNOWN = {
    "id",
    "clinics",
    "agendas",
    "appointment_types",
    "exclude_appointment_types",
    "run_at",
    "cron",
    "run_window",
    "days_ahead",
    "hours",
    "look_back_days",
    "fresh_hours",
    "mandate",
    "overseer",
    "operator",
    "source",
    "columns",
}


@dataclass(frozen=True, slots=True)
class Problem:
    path: Path
    line: int | None
    message: str
    hint: str = ""
    blocking: bool = True  # False: `schedules check` fails, but a run can still use it

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{where}: {self.message}{hint}"


class ScheduleError(ConfigError):
    def __init__(self, path: Path, line: int | None, message: str, hint: str = "") -> None:
        super().__init__(str(Problem(path, line, message, hint)))
        self.path = path
        self.line = line


def _line_of(text: str, key: str) -> int | None:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=", re.MULTILINE)
    m = pattern.search(text)
    if m is None:
        m = re.search(rf"^\s*\[{re.escape(key)}\]", text, re.MULTILINE)
    return text.count("\n", 0, m.start()) + 1 if m else None


def _time(value: object) -> dt.time | None:
    if isinstance(value, dt.time):
        return value
    if isinstance(value, str) and (m := _TIME.match(value.strip())):
        return dt.time(int(m.group(1)), int(m.group(2)))
    return None


def _span(value: object) -> tuple[dt.time, dt.time] | None:
    if not isinstance(value, str) or not (m := _SPAN.match(value.strip())):
        return None
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    end = dt.time(23, 59, 59) if h2 == 24 else dt.time(h2, m2)
    return dt.time(h1, m1), end


class _Reader:
    """Reads one file's keys, collecting problems instead of stopping at the first."""

    def __init__(self, path: Path, text: str, data: dict[str, Any]) -> None:
        self.path, self.text, self.data = path, text, data
        self.problems: list[Problem] = []

    def fail(self, key: str, message: str, hint: str = "") -> None:
        self.problems.append(Problem(self.path, _line_of(self.text, key), message, hint))

    def strings(self, key: str) -> frozenset[str]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.fail(key, f"{key} must be a list of codes", f'{key} = ["CARD"]')
            return frozenset()
        return frozenset(v.strip() for v in value)

    def whole(self, key: str) -> Any:
        value = self.data.get(key)
        if key in self.data and (not isinstance(value, int) or isinstance(value, bool)):
            self.fail(key, f"{key} must be a whole number")
            return None
        return value

    def run_time(self) -> tuple[dt.time, str | None]:
        run_at, cron = self.data.get("run_at"), self.data.get("cron")
        if run_at is None and cron is None:
            self.problems.append(
                Problem(self.path, None, "missing run_at or cron", 'run_at = "19:00"')
            )
            return dt.time(19, 0), None
        if run_at is not None and cron is not None:
            self.fail("cron", "give run_at or cron, not both")
        if cron is not None:
            try:
                parsed = parse_cron(str(cron)) if isinstance(cron, str) else parse_cron("")
            except CronError as exc:
                self.fail("cron", f"cron: {exc}", 'cron = "0 19 * * mon-fri"')
                return dt.time(19, 0), None
            return dt.time(min(parsed.hours), min(parsed.minutes)), str(cron)
        when = _time(run_at)
        if when is None:
            self.fail("run_at", 'run_at must be a local time like "19:00"', "HH:MM, 24-hour clock")
            return dt.time(19, 0), None
        return when, None

    def overseer(self) -> Clinician | None:
        overseer = self.data.get("overseer")
        if overseer is None:
            self.problems.append(
                Problem(
                    self.path,
                    None,
                    "missing [overseer]: the responsible clinician",
                    "add [overseer] with uzi, role and name of the mandating specialist",
                )
            )
            return None
        if not isinstance(overseer, dict):
            self.fail("overseer", "overseer must be a table with uzi, role and name")
            return None
        try:
            return Clinician(
                uzi_number=str(overseer.get("uzi", "")),
                role_code=str(overseer.get("role", "")),
                name=str(overseer.get("name", "")),
                ura=overseer.get("ura"),
            )
        except InvalidValueError as exc:
            self.fail("overseer", f"overseer: {exc.message}")
            return None


def _parse(path: Path) -> tuple[str, dict[str, Any]] | Problem:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return Problem(path, None, "not UTF-8 text", "save the file as UTF-8")
    except OSError as exc:
        return Problem(path, None, f"cannot read file ({exc.strerror})")
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return Problem(path, getattr(exc, "lineno", None), f"not valid TOML: {exc}")


def check_schedule(
    path: Path, *, known_clinics: Iterable[str] = ()
) -> tuple[Schedule | None, list[Problem]]:
    """The schedule and every problem of one file (schedule None when any problem)."""
    parsed = _parse(path)
    if isinstance(parsed, Problem):
        return None, [parsed]
    text, data = parsed
    r = _Reader(path, text, data)
    for key in data:
        if key not in _KNOWN:
            r.fail(key, f"unknown key '{key}'", f"known keys: {', '.join(sorted(_KNOWN))}")
    if "clinics" not in data:
        r.problems.append(Problem(path, None, "missing clinics", 'clinics = ["CARD"]'))
    clinics = frozenset(c.upper() for c in r.strings("clinics"))
    known = {c.upper() for c in known_clinics}
    for clinic in sorted(clinics - known if known else set()):
        r.fail("clinics", f"unknown clinic '{clinic}'", f"known: {', '.join(sorted(known))}")
    run_at, cron = r.run_time()
    window = _span(data["run_window"]) if "run_window" in data else None
    if "run_window" in data and window is None:
        r.fail("run_window", 'run_window must look like "19:00-23:00"')
    hours = _span(data["hours"]) if "hours" in data else None
    if "hours" in data and hours is None:
        r.fail("hours", 'hours must look like "08:00-17:00"')
    if "mandate" not in data:  # a run stops at the mandate check with its own message
        r.problems.append(
            Problem(
                path,
                None,
                "missing mandate",
                "register one with `prefetch mandate register`",
                blocking=False,
            )
        )
    elif not isinstance(data["mandate"], str) or not data["mandate"].strip():
        r.fail("mandate", "mandate must be the id of a registered mandate")
    clinician = r.overseer()
    fresh = data.get("fresh_hours")
    if "fresh_hours" in data and (not isinstance(fresh, int | float) or isinstance(fresh, bool)):
        r.fail("fresh_hours", "fresh_hours must be a number of hours")
    columns = data.get("columns", {})
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        r.fail("columns", 'columns must be a table of column = "their header"')
        columns = {}
    for key in ("operator", "source"):
        if key in data and not isinstance(data[key], str):
            r.fail(key, f"{key} must be a text")
    values = {k: r.whole(k) for k in ("days_ahead", "look_back_days")}
    if any(p.blocking for p in r.problems) or clinician is None:
        return None, r.problems
    try:
        schedule = Schedule(
            id=str(data.get("id", path.stem)),
            clinics=clinics,
            agendas=r.strings("agendas"),
            appointment_types=r.strings("appointment_types"),
            excluded_appointment_types=r.strings("exclude_appointment_types"),
            overseer=clinician,
            mandate_id=data.get("mandate"),
            run_at=run_at,
            cron=cron,
            run_until=window[1] if window else None,
            run_from=window[0] if window else None,
            days_ahead=values["days_ahead"] if values["days_ahead"] is not None else 1,
            look_back_days=values["look_back_days"],
            fresh_hours=fresh,
            hours=hours,
            operator=data.get("operator"),
            source=data.get("source"),
            columns=tuple(sorted((str(k), str(v)) for k, v in columns.items())),
        )
    except InvalidValueError as exc:
        key = next(
            (
                k
                for k in ("clinics", "days_ahead", "look_back_days", "fresh_hours")
                if k in exc.message
            ),
            "id",
        )
        r.fail(key, exc.message)
        return None, r.problems
    if dst_hour_runs(schedule):  # next_runs keeps it safe; the check still refuses it
        key = "cron" if cron else "run_at"
        r.problems.append(
            Problem(
                path,
                _line_of(text, key),
                "runs between 02:00 and 03:00, the hour that daylight saving skips or repeats",
                "choose a time outside 02:00-03:00, e.g. 01:30 or 03:30",
                blocking=False,
            )
        )
    if window and not _inside(run_at, window):
        r.fail(
            "run_window", "the run time is outside run_window", "widen the window or move run_at"
        )
    blocking = any(p.blocking for p in r.problems)
    return (None if blocking else schedule), r.problems


def _inside(when: dt.time, window: tuple[dt.time, dt.time]) -> bool:
    start, end = window
    return start <= when < end if start <= end else (when >= start or when < end)


def load_schedule(path: Path, *, known_clinics: Iterable[str] = ()) -> Schedule:
    """Read and validate one schedule file; raise ScheduleError naming file, line and fix."""
    schedule, problems = check_schedule(path, known_clinics=known_clinics)
    if schedule is None:
        first = next(p for p in problems if p.blocking)
        raise ScheduleError(first.path, first.line, first.message, first.hint)
    return schedule


def _overlap(a: Schedule, b: Schedule) -> set[str]:
    shared = set(a.clinics & b.clinics)
    if a.agendas and b.agendas and not a.agendas & b.agendas:
        return set()
    return shared


def check_schedules(
    paths: Sequence[Path], *, known_clinics: Iterable[str] = ()
) -> tuple[list[tuple[Path, Schedule]], list[Problem]]:
    """Every file checked, then the problems between them."""
    valid: list[tuple[Path, Schedule]] = []
    problems: list[Problem] = []
    for path in paths:
        schedule, found = check_schedule(path, known_clinics=known_clinics)
        problems += found
        if schedule is not None and not found:
            valid.append((path, schedule))
    seen: dict[str, Path] = {}
    for path, schedule in valid:
        text = path.read_text(encoding="utf-8")
        if schedule.id in seen:
            problems.append(
                Problem(
                    path,
                    _line_of(text, "id"),
                    f"schedule id '{schedule.id}' also used in {seen[schedule.id]}",
                    "give each schedule its own id",
                )
            )
        seen.setdefault(schedule.id, path)
    for index, (path, schedule) in enumerate(valid):
        for other_path, other in valid[:index]:
            shared = _overlap(schedule, other)
            if shared and other.overseer.uzi_number != schedule.overseer.uzi_number:
                problems.append(
                    Problem(
                        path,
                        _line_of(path.read_text(encoding="utf-8"), "clinics"),
                        f"clinic(s) {', '.join(sorted(shared))} also in {other_path} under "
                        "another responsible clinician",
                        "one clinician per clinic: split by agendas or use the same overseer",
                    )
                )
    bad = {p.path for p in problems}
    return [(p, s) for p, s in valid if p not in bad], problems


def load_schedules(directory: Path) -> list[Schedule]:
    """All `*.toml` schedules of a directory, sorted by id; ids must be unique."""
    schedules = [load_schedule(p) for p in sorted(directory.glob("*.toml"))]
    seen: set[str] = set()
    for s in schedules:
        if s.id in seen:
            raise ScheduleError(directory, None, f"schedule id '{s.id}' is used twice")
        seen.add(s.id)
    return schedules
