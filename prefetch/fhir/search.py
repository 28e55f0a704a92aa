"""The FHIR search the EPD uses, as Nictiz's MP9 test queries write it (pure):

    MedicationDispense?patient.identifier=http://fhir.nl/fhir/NamingSystem/bsn|<BSN>
        &category=http://snomed.info/sct|373784005
        &whenhandedover=ge2024-01-01
        &_include=MedicationDispense:medication
        &_revinclude=Provenance:target

`patient.identifier` is required (no search over every patient). `category` takes a
comma-separated list of tokens (`system|code` or `code`): any matches. `whenhandedover`
may repeat (all must hold); prefixes eq, ne, gt, lt, ge, le; precision year, month or day
(a time part is read as its day). A resource without `whenHandedOver` (an administration
agreement) does not match a date filter. Unknown parameters are refused (400), so that a
typo never widens a search.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from prefetch.domain.bsn import passes_eleven_check
from prefetch.fhir import systems as s
from prefetch.fhir.quantities import Json

INCLUDE_MEDICATION = "MedicationDispense:medication"
REVINCLUDE_PROVENANCE = "Provenance:target"
_KNOWN = frozenset(
    {"patient.identifier", "category", "whenhandedover", "_include", "_revinclude", "_format"}
)
_DATE = re.compile(r"^(eq|ne|gt|lt|ge|le)?(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?(?:T.*)?$")


class SearchError(ValueError):
    """A search the API refuses (400), with a message that holds no patient data."""


@dataclass(frozen=True, slots=True)
class DateFilter:
    prefix: str
    start: dt.date  # the value's range at its precision: [start, end)
    end: dt.date

    def holds(self, day: dt.date) -> bool:
        if self.prefix == "eq":
            return self.start <= day < self.end
        if self.prefix == "ne":
            return not self.start <= day < self.end
        if self.prefix == "gt":
            return day >= self.end
        if self.prefix == "lt":
            return day < self.start
        if self.prefix == "ge":
            return day >= self.start
        return day < self.end  # le


@dataclass(frozen=True, slots=True)
class DispenseSearch:
    bsn: str = field(repr=False)
    categories: tuple[tuple[str | None, str], ...] = ()  # (system or None, code)
    handed_over: tuple[DateFilter, ...] = ()
    include_medication: bool = False
    include_provenance: bool = False

    def matches(self, resource: Json) -> bool:
        if self.categories:
            codings = resource.get("category", {}).get("coding", [])
            if not any(
                c.get("code") == code and (system is None or c.get("system") == system)
                for system, code in self.categories
                for c in codings
            ):
                return False
        if self.handed_over:
            when = resource.get("whenHandedOver")
            if not when:
                return False
            day = dt.date.fromisoformat(when[:10])
            return all(f.holds(day) for f in self.handed_over)
        return True


def _date_filter(raw: str) -> DateFilter:
    m = _DATE.match(raw.strip())
    if m is None:
        raise SearchError("whenhandedover: expected [eq|ne|gt|lt|ge|le]YYYY[-MM[-DD]]")
    prefix, year, month, day = m.group(1) or "eq", int(m.group(2)), m.group(3), m.group(4)
    try:
        if day is not None:
            start = dt.date(year, int(month or 1), int(day))
            end = start + dt.timedelta(days=1)
        elif month is not None:
            start = dt.date(year, int(month), 1)
            end = dt.date(year + (start.month == 12), start.month % 12 + 1, 1)
        else:
            start, end = dt.date(year, 1, 1), dt.date(year + 1, 1, 1)
    except ValueError:
        raise SearchError("whenhandedover: not a date") from None
    return DateFilter(prefix=prefix, start=start, end=end)


def _patient(values: Sequence[str]) -> str:
    if len(values) != 1:
        raise SearchError("give patient.identifier exactly once")
    system, sep, value = values[0].partition("|")
    if not sep or system != s.BSN:
        raise SearchError(f"patient.identifier must be {s.BSN}|<BSN>")
    if not (len(value) == 9 and value.isdigit() and passes_eleven_check(value)):
        raise SearchError("patient.identifier: not a valid BSN (nine digits, 11-check)")
    return value


def parse_search(params: Sequence[tuple[str, str]]) -> DispenseSearch:
    """The search from the query string's (name, value) pairs, or `SearchError`."""
    by_name: dict[str, list[str]] = {}
    for name, value in params:
        if name not in _KNOWN:
            raise SearchError(f"unsupported search parameter {name!r}")
        by_name.setdefault(name, []).append(value)
    if any(v not in ("json", "application/fhir+json") for v in by_name.get("_format", [])):
        raise SearchError("only _format=json is served")
    categories: list[tuple[str | None, str]] = []
    for value in by_name.get("category", []):
        for token in value.split(","):
            system, sep, code = token.partition("|")
            categories.append((system or None, code) if sep else (None, token))
    includes = set(by_name.get("_include", []))
    revincludes = set(by_name.get("_revinclude", []))
    if includes - {INCLUDE_MEDICATION}:
        raise SearchError(f"_include supports only {INCLUDE_MEDICATION}")
    if revincludes - {REVINCLUDE_PROVENANCE}:
        raise SearchError(f"_revinclude supports only {REVINCLUDE_PROVENANCE}")
    return DispenseSearch(
        bsn=_patient(by_name.get("patient.identifier", [])),
        categories=tuple(categories),
        handed_over=tuple(_date_filter(v) for v in by_name.get("whenhandedover", [])),
        include_medication=INCLUDE_MEDICATION in includes,
        include_provenance=REVINCLUDE_PROVENANCE in revincludes,
    )
