"""How the simulated LSP behaves: latency, faults, outages, rate limits, regions.

A `Profile` is a frozen value; every field is documented where it is declared. The
built-in profiles are `ideal`, `realistic`, `flaky`, `outage` and `regions`
(`BUILTIN`); `load_profile` also reads a TOML file that starts from a built-in one::

    [profile]
    base = "realistic"          # built-in profile to start from (default "ideal")
    name = "realistic-fast"
    time_scale = 0.02           # every simulated duration multiplied by this
    not_registered = "key204"   # empty_batch | lsp_nf | key204

    [latency]
    median_s = 1.5

    [faults]
    soap_fault = 0.01

    [rate]
    max_rate = 2.0              # omit (or set max_rate = 0) for no enforcement
    max_concurrency = 4

    [outage]
    start_after_s = 0.0
    duration_s = 30.0

    [regions]
    enabled = true
    client_regions = [1]

Time scale: all durations (latencies, pharmacy time-out, outage, Retry-After) are
multiplied by `time_scale`, and the allowed query rate is divided by it, so that a
compressed run keeps the shape of a real one (the demo runs a 200-patient day in seconds
with `time_scale=0.02`). Concurrency limits are not scaled.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefetch.errors import ConfigError


class NotRegistered(enum.Enum):
    """The wire form of "nobody registered this BSN" (not public, AORTA.md section 3)."""

    EMPTY_BATCH = "empty_batch"  # MCCI_IN200101 with transmissionQuantity 0
    LSP_NF = "lsp_nf"  # one LSP-authored item with queryResponseCode NF
    KEY204 = "key204"  # one LSP-authored item with detected issue KEY204, AE


class FailureForm(enum.Enum):
    """A transient failure the simulator can answer instead of the batch."""

    SOAP_FAULT = "soap_fault"  # HTTP 500, soap:Server fault
    HTTP_503 = "http_503"  # HTTP 503 with Retry-After
    CONNECTION_RESET = "connection_reset"  # socket closed without an answer
    TRUNCATED_XML = "truncated_xml"  # HTTP 200, the batch cut off half-way
    MALFORMED_XML = "malformed_xml"  # HTTP 200, a body that is not XML
    QABRTITI = "qabrtiti"  # HTTP 200, batch with one LSP QABRTITI item


@dataclass(frozen=True, slots=True)
class Latency:
    """Per-pharmacy answer time: lognormal around a per-pharmacy median."""

    median_s: float = 0.0
    """Median answer time of a typical pharmacy, seconds. 0 answers instantly."""
    sigma: float = 0.9
    """Lognormal shape of one pharmacy's answer times (0.9: p99 is about 8x the median)."""
    pharmacy_spread: float = 0.5
    """Lognormal shape of the per-pharmacy median factor: some systems are slower."""
    cap_s: float = 60.0
    """No pharmacy takes longer than this (the long tail ends here)."""
    pharmacy_timeout_s: float = 30.0
    """The LSP stops waiting for a pharmacy after this; that pharmacy's item becomes an
    LSP-authored QABRTITI item and the batch is partial."""


@dataclass(frozen=True, slots=True)
class Faults:
    """Per-query probabilities of a transient failure; together at most 1."""

    soap_fault: float = 0.0
    """HTTP 500 with a soap:Server fault."""
    http_503: float = 0.0
    """HTTP 503 with a Retry-After header."""
    connection_reset: float = 0.0
    """The connection is closed without an answer."""
    truncated_xml: float = 0.0
    """HTTP 200 with the batch cut off in the middle."""
    malformed_xml: float = 0.0
    """HTTP 200 with a body that is not well-formed XML."""
    qabrtiti: float = 0.0
    """The whole query times out at the LSP: a batch with only a QABRTITI item."""
    retry_after_s: float = 2.0
    """Retry-After sent with HTTP 503 (scaled, rounded up to whole seconds)."""

    def table(self) -> tuple[tuple[FailureForm, float], ...]:
        return (
            (FailureForm.SOAP_FAULT, self.soap_fault),
            (FailureForm.HTTP_503, self.http_503),
            (FailureForm.CONNECTION_RESET, self.connection_reset),
            (FailureForm.TRUNCATED_XML, self.truncated_xml),
            (FailureForm.MALFORMED_XML, self.malformed_xml),
            (FailureForm.QABRTITI, self.qabrtiti),
        )

    @property
    def total(self) -> float:
        return sum(p for _, p in self.table())


@dataclass(frozen=True, slots=True)
class Outage:
    """Everything fails for a while, then the LSP recovers."""

    duration_s: float = 0.0
    """How long every query fails; 0 means no outage."""
    start_after_s: float = 0.0
    """Delay after the first query (since start or `/_sim/reset`) before the outage."""
    form: FailureForm = FailureForm.HTTP_503
    """How queries fail during the outage."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """What one connected system may send. Above it the simulator answers overload.

    Overload is HTTP 503 with `Retry-After` (the form the LSP's load balancer uses) and
    counts a violation; the query is not processed.
    """

    max_rate: float | None = None
    """Queries per second per client over a sliding window; None: not enforced."""
    max_concurrency: int | None = None
    """Queries in flight per client; None: not enforced."""
    window_s: float = 1.0
    """Length of the sliding window for `max_rate`; widened to `1 / max_rate` below one
    query per window. At most `max(1, floor(max_rate * window))` queries per window."""
    tolerance_s: float = 0.05
    """Network jitter forgiven when admitting: a query arriving up to this much early is
    still admitted (the enforcement window is this much shorter). The reported
    `peak_rate_per_s` is always measured over a full second and is not affected."""
    retry_after_s: float = 1.0
    """Retry-After sent with an overload answer (scaled, rounded up to whole seconds)."""


@dataclass(frozen=True, slots=True)
class Regions:
    """The historical (pre-April 2022) regional partitioning of the LSP."""

    enabled: bool = False
    """Pharmacies outside the client's regions answer AUTERR_SWV_FALSE."""
    client_regions: frozenset[int] = frozenset({1})
    """Regions the querying hospital belongs to."""


@dataclass(frozen=True, slots=True)
class Profile:
    """One complete behaviour of the simulated LSP."""

    name: str
    """Profile name as shown in stats and logs."""
    description: str = ""
    """One line for humans."""
    seed: int = 0
    """Seed of every random choice (latency, faults): same seed + query order, same run."""
    time_scale: float = 1.0
    """Multiplier for every simulated duration; the allowed rate is divided by it."""
    not_registered: NotRegistered = NotRegistered.KEY204
    """Wire form of "nobody registered this BSN"."""
    latency: Latency = field(default_factory=Latency)
    faults: Faults = field(default_factory=Faults)
    outage: Outage = field(default_factory=Outage)
    rate: RateLimit = field(default_factory=RateLimit)
    regions: Regions = field(default_factory=Regions)

    def __post_init__(self) -> None:
        if self.time_scale < 0:
            raise ConfigError("time_scale must not be negative", profile=self.name)
        if self.faults.total > 1.0 + 1e-9:
            raise ConfigError("fault probabilities add up to more than 1", profile=self.name)
        if any(p < 0 for _, p in self.faults.table()):
            raise ConfigError("fault probabilities must not be negative", profile=self.name)
        if self.rate.window_s <= 0 or not 0 <= self.rate.tolerance_s < self.rate.window_s:
            raise ConfigError(
                "rate window must be positive and longer than the jitter tolerance",
                profile=self.name,
            )

    def scaled(self, seconds: float) -> float:
        """A simulated duration in real seconds."""
        return seconds * self.time_scale

    @property
    def effective_rate(self) -> float | None:
        """Allowed queries per (real) second after time scaling."""
        if self.rate.max_rate is None or self.rate.max_rate <= 0:
            return None
        if self.time_scale == 0:
            return None
        return self.rate.max_rate / self.time_scale

    def with_time_scale(self, time_scale: float) -> Profile:
        return dataclasses.replace(self, time_scale=time_scale)


_LSP_LIMITS = RateLimit(max_rate=2.0, max_concurrency=4)

BUILTIN: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(name="ideal", description="no latency, no faults, no limits (CPU benchmarks)"),
        Profile(
            name="realistic",
            description="lognormal pharmacy latency (median 1.5 s, tail to 60 s, time-out "
            "20 s), a few faults, 2 queries/s and 4 in flight",
            latency=Latency(
                median_s=1.5, sigma=1.0, pharmacy_spread=0.5, cap_s=60.0, pharmacy_timeout_s=20.0
            ),
            faults=Faults(
                soap_fault=0.004,
                http_503=0.004,
                connection_reset=0.002,
                truncated_xml=0.002,
                malformed_xml=0.001,
                qabrtiti=0.004,
            ),
            rate=_LSP_LIMITS,
        ),
        Profile(
            name="flaky",
            description="about 30% transient failures of every kind",
            latency=Latency(median_s=0.3, sigma=0.6, cap_s=10.0, pharmacy_timeout_s=8.0),
            faults=Faults(
                soap_fault=0.06,
                http_503=0.07,
                connection_reset=0.05,
                truncated_xml=0.04,
                malformed_xml=0.03,
                qabrtiti=0.05,
            ),
            rate=_LSP_LIMITS,
        ),
        Profile(
            name="outage",
            description="every query fails with HTTP 503 for 60 s, then the LSP recovers",
            latency=Latency(median_s=0.3, sigma=0.6, cap_s=10.0, pharmacy_timeout_s=8.0),
            outage=Outage(duration_s=60.0, start_after_s=0.0, form=FailureForm.HTTP_503),
            rate=_LSP_LIMITS,
        ),
        Profile(
            name="regions",
            description="historical regions: pharmacies outside region 1 answer AUTERR_SWV_FALSE",
            regions=Regions(enabled=True, client_regions=frozenset({1})),
        ),
    )
}


def get_profile(name: str) -> Profile:
    """A built-in profile by name; ConfigError naming the choices otherwise."""
    try:
        return BUILTIN[name]
    except KeyError:
        raise ConfigError(
            "unknown simulator profile", profile=name, choices=",".join(sorted(BUILTIN))
        ) from None


def load_profile(source: str | Path, *, time_scale: float | None = None) -> Profile:
    """A built-in profile name or a TOML file path; optionally with another time scale."""
    path = Path(source)
    if str(source) in BUILTIN or path.suffix != ".toml":
        profile = get_profile(str(source))
    else:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError("cannot read profile file", path=str(path), error=str(exc)) from None
        profile = profile_from_dict(data, origin=str(path))
    return profile if time_scale is None else profile.with_time_scale(time_scale)


_SECTIONS: dict[str, type] = {
    "latency": Latency,
    "faults": Faults,
    "outage": Outage,
    "rate": RateLimit,
    "regions": Regions,
}
_SECTION_OF = {cls: name for name, cls in _SECTIONS.items()}


_TYPE_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def _check_type(cls: type, key: str, value: Any, origin: str, name: str) -> None:
    """ConfigError naming the key when `value` does not fit the field's declared type."""
    hint = typing.get_type_hints(cls)[key]
    args = (
        typing.get_args(hint)
        if typing.get_origin(hint) in (types.UnionType, typing.Union)
        else (hint,)
    )
    if value is None and type(None) in args:
        return
    for expected in args:
        if expected is bool and isinstance(value, bool):
            return
        if expected is int and isinstance(value, int) and not isinstance(value, bool):
            return
        if expected is float and isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                break
            return
        if expected is str and isinstance(value, str):
            return
    wanted = " or ".join(
        _TYPE_NAMES.get(t, getattr(t, "__name__", str(t))) for t in args if t is not type(None)
    )
    raise ConfigError(
        "bad value in profile", file=origin, key=name, value=repr(value), expected=wanted
    )


def _convert(cls: type, key: str, value: Any, origin: str) -> Any:
    name = f"{_SECTION_OF[cls]}.{key}"
    if cls is Outage and key == "form":
        return _enum(FailureForm, value, origin, name)
    if cls is Regions and key == "client_regions":
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise ConfigError(
                "bad value in profile",
                file=origin,
                key=name,
                value=repr(value),
                expected="a list of whole numbers",
            )
        return frozenset(value)
    _check_type(cls, key, value, origin, name)
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        raise ConfigError("negative value in profile", file=origin, key=name, value=repr(value))
    if cls is RateLimit and key == "max_rate" and value == 0:
        return None
    if cls is RateLimit and key == "max_concurrency" and value == 0:
        return None
    return value


def _enum(cls: type[enum.Enum], value: Any, origin: str, key: str) -> Any:
    try:
        return cls(value)
    except ValueError:
        raise ConfigError(
            "unknown value",
            file=origin,
            key=key,
            value=value,
            choices=",".join(str(m.value) for m in cls),
        ) from None


def profile_from_dict(data: dict[str, Any], *, origin: str = "<dict>") -> Profile:
    """Build a profile from parsed TOML; unknown sections or keys are errors."""
    head = dict(data.get("profile", {}))
    unknown = set(data) - {"profile", *_SECTIONS}
    if unknown:
        raise ConfigError(
            "unknown section in profile", file=origin, section=",".join(sorted(unknown))
        )
    base = get_profile(str(head.pop("base", "ideal")))
    changes: dict[str, Any] = {}
    top_fields = {f.name for f in dataclasses.fields(Profile)} - set(_SECTIONS)
    for key, value in head.items():
        if key not in top_fields:
            raise ConfigError("unknown key in [profile]", file=origin, key=key)
        if key == "not_registered":
            changes[key] = _enum(NotRegistered, value, origin, "profile.not_registered")
            continue
        _check_type(Profile, key, value, origin, f"profile.{key}")
        changes[key] = value
    for section, cls in _SECTIONS.items():
        if section not in data:
            continue
        names = {f.name for f in dataclasses.fields(cls)}
        values = {}
        for key, value in data[section].items():
            if key not in names:
                raise ConfigError(
                    "unknown key in profile section", file=origin, key=f"{section}.{key}"
                )
            values[key] = _convert(cls, key, value, origin)
        changes[section] = dataclasses.replace(getattr(base, section), **values)
    try:
        return dataclasses.replace(base, **changes)
    except TypeError as exc:
        raise ConfigError("bad value in profile", file=origin, error=str(exc)) from None
