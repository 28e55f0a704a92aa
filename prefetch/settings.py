"""One frozen settings object, loaded from TOML plus environment overrides.

Order: built-in defaults < `config/prefetch.toml` (or the file given) < environment
variables `PREFETCH_<SECTION>_<KEY>` (for example `PREFETCH_DATABASE_URL`,
`PREFETCH_THROTTLE_RATE_PER_SECOND`). Every problem is reported with its key; nothing is
sent or opened while loading. `config/prefetch.example.toml` documents every key.

Secrets are never values here: only paths (`lsp.client_p12`) and the name of an
environment variable or a file holding a passphrase.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from prefetch.errors import ConfigError
from prefetch.hl7v3.aorta_settings import AortaSettings

DEFAULT_CONFIG_FILE = Path("config/prefetch.toml")
ENV_PREFIX = "PREFETCH_"


@dataclass(frozen=True, slots=True)
class HospitalSettings:
    ura: str = "00000000"
    name: str = "Ziekenhuis"
    application_id: str = "0"
    system_uzi: str = "000000000"
    clinics: tuple[str, ...] = ()  # the poli codes schedules may name; empty: not checked


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    url: str = ""  # empty: SQLite file in the data directory
    url_file: str = ""  # else: a 0600 file whose first line is the URL (keeps the password out)


@dataclass(frozen=True, slots=True)
class LspSettings:
    url: str = "https://127.0.0.1:8443/lsp"
    connect_timeout: float = 5.0
    read_timeout: float = 120.0
    client_p12: str = ""  # PKCS#12 with the UZI server certificate and key
    ca_file: str = ""  # trust anchor(s) for the LSP's TLS certificate
    passphrase_file: str = ""  # else the passphrase is in $PREFETCH_PKI_PASSPHRASE
    look_back_days: int = 365


@dataclass(frozen=True, slots=True)
class ThrottleSettings:
    rate_per_second: float = 2.0
    max_in_flight: int = 4
    breaker_failures: int = 5  # consecutive transport failures that open the breaker
    breaker_reset_seconds: float = 60.0
    # Sends are spaced so that no window of one second plus this margin holds more than the
    # rate; a send that would leave later than half of it takes a new slot, and the other
    # half covers the jitter between our send and the LSP's count (the network, the LSP).
    # 0.1 s: the simulator on a loaded machine measured arrivals up to 52 ms after the
    # send (bench/README.md); against an in-flight-bound LSP it costs about 1% throughput.
    jitter_margin_seconds: float = 0.1


@dataclass(frozen=True, slots=True)
class RunSettings:
    fresh_hours: float = 12.0  # skip a patient fetched more recently than this
    max_attempts: int = 3  # per patient per run (transient failures; at most 3)
    backoff_base_seconds: float = 2.0  # retries interleave with the first pass
    backoff_max_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class SecuritySettings:
    """Trust for certificates we check ourselves (mandate tokens): UZI CA files."""

    trust_anchors: tuple[str, ...] = ()  # PEM files with the UZI root CA(s)
    intermediates: tuple[str, ...] = ()  # PEM files with the UZI issuing CA(s)
    crls: tuple[str, ...] = ()  # PEM CRLs of those CAs (required: no CRL, no trust)


@dataclass(frozen=True, slots=True)
class Hl7v3Settings:
    """Where the HL7/Nictiz schema set is (read in place; see `hl7v3.schema_set`)."""

    schema_dir: str = ""  # empty: ../shared/hl7v3/schemas beside the checkout, if present


@dataclass(frozen=True, slots=True)
class LoggingSettings:
    level: str = "INFO"
    format: str = "auto"  # auto (JSON unless a terminal) | json | console


@dataclass(frozen=True, slots=True)
class DeskSettings:
    """The desk web app (`prefetch desk`): where it listens, sessions, hospital SSO."""

    host: str = "127.0.0.1"
    port: int = 8080
    session_minutes: int = 30  # a session expires after this long without a request
    secret_file: str = ""  # signing key of the session cookie; empty: <data_dir>/desk.secret
    # Hospital single sign-on through a reverse proxy: the user name header is believed only
    # from these addresses (empty: header mode off). The user must have a local account.
    trusted_proxies: tuple[str, ...] = ()
    proxy_user_header: str = "X-Remote-User"
    secure_cookie: bool = False  # send the session cookie over HTTPS only (behind TLS)


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    """`prefetch daemon`: its HTTP endpoint, leadership and timing (see deploy/README.md)."""

    http_host: str = "127.0.0.1"  # /metrics (Prometheus) and /health
    http_port: int = 9464  # 0: no HTTP endpoint
    leader_poll_seconds: float = 10.0  # followers try to take over this often
    misfire_grace_seconds: float = 900.0  # a run fired this late still starts on time
    sweep_seconds: float = 300.0  # leader: look for due or missed runs this often
    work_poll_seconds: float = 5.0  # every daemon: join running runs this often
    reload_seconds: float = 30.0  # check schedule files for changes this often
    clinic_day_starts: str = "07:00"  # a missed run is caught up only before this


@dataclass(frozen=True, slots=True)
class RetentionSettings:
    """Data minimisation (`prefetch purge`, the daemon daily): how long what is kept."""

    dispense_days: int = 30  # any prefetched dispense, counted from its last fetch
    unviewed_days: int = 7  # after the clinic day, when nobody viewed the patient's data
    run_days: int = 90  # runs and their items (BSN, outcome)
    audit_years: int = 7  # NEN 7513 audit rows: at least 5
    remove_cancelled: bool = True  # dispenses of a patient whose appointment was cancelled


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: str = "prefetch-data"
    schedules_dir: str = "schedules"
    sources_file: str = "config/sources.toml"  # appointment sources (prefetch/sources/config.py)
    hospital: HospitalSettings = field(default_factory=HospitalSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    lsp: LspSettings = field(default_factory=LspSettings)
    throttle: ThrottleSettings = field(default_factory=ThrottleSettings)
    run: RunSettings = field(default_factory=RunSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    hl7v3: Hl7v3Settings = field(default_factory=Hl7v3Settings)
    aorta: AortaSettings = field(default_factory=AortaSettings)
    desk: DeskSettings = field(default_factory=DeskSettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @property
    def database_url(self) -> str:
        """`[database] url`, else the first line of `url_file` (refused when others may
        read it), else the SQLite file in the data directory."""
        if self.database.url:
            return self.database.url
        if self.database.url_file:
            from prefetch.security.filemodes import read_secret_line

            return read_secret_line(Path(self.database.url_file), "database URL file")
        return f"sqlite:///{(self.data_path / 'prefetch.sqlite').resolve()}"


class SettingsProblems(ConfigError):
    """All problems found while loading settings; `problems` lists (key, message)."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        lines = "; ".join(f"{k}: {m}" for k, m in problems)
        super().__init__(f"invalid settings in {source}: {lines}")
        self.source = source
        self.problems = problems


# The [sections] and their value types, read off `Settings` itself (one list, not two).
_SECTION_TYPES: dict[str, type] = {
    name: hint
    for name, hint in get_type_hints(Settings).items()
    if isinstance(hint, type) and dataclasses.is_dataclass(hint)
}


def _convert(value: Any, target: Any, key: str, problems: list[tuple[str, str]]) -> Any:
    try:
        if target is bool:
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            if isinstance(value, bool):
                return value
            raise ValueError(value)
        if target is int:
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if target is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        if target is str:
            if not isinstance(value, str):  # numbers lose leading zeros: quote them
                raise ValueError(value)
            return str(value)
        if target == tuple[str, ...]:  # a TOML list, or comma-separated in the environment
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
                raise ValueError(value)
            return tuple(i.strip() for i in items if i.strip())
    except (TypeError, ValueError):
        name = getattr(target, "__name__", "list of strings")
        problems.append((key, f"expected {name}, got {value!r}"))
        return None
    return value


#: Settings that existed once: a config that still sets one is told what replaced it.
REMOVED = {
    "daemon.exports_dir": "removed: the desk reads the appointment book; load the EPD's "
    "exports with `prefetch intake load FILE --source NAME`",
}


def _build_section(
    cls: type,
    name: str,
    raw: Mapping[str, Any],
    env: Mapping[str, str],
    problems: list[tuple[str, str]],
) -> Any:
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    known = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if f"{name}.{key}" in REMOVED:
            problems.append((f"{name}.{key}", REMOVED[f"{name}.{key}"]))
        elif key not in known:
            problems.append(
                (f"{name}.{key}", f"unknown setting (known: {', '.join(sorted(known))})")
            )
    for f in dataclasses.fields(cls):
        env_name = f"{ENV_PREFIX}{name}_{f.name}".upper()
        value: Any
        if env_name in env:
            value = env[env_name]
        elif f.name in raw:
            value = raw[f.name]
        else:
            continue
        converted = _convert(value, hints[f.name], f"{name}.{f.name}", problems)
        if converted is not None:
            kwargs[f.name] = converted
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        key = str(exc.context.get("key", "?"))
        problems.append((f"{name}.{key}", exc.message))
    return cls()


def _bounded(
    problems: list[tuple[str, str]],
    key: str,
    value: float,
    low: float,
    high: float,
    *,
    unit: str = "",
) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        problems.append((key, f"must be between {low:g} and {high:g}{unit}"))


def _check(settings: Settings, problems: list[tuple[str, str]]) -> None:
    h = settings.hospital
    if not (h.ura.isdigit() and len(h.ura) == 8):
        problems.append(("hospital.ura", "must be the 8-digit URA number, in quotes"))
    if not h.application_id.isdigit():
        problems.append(("hospital.application_id", "must be the numeric AORTA application id"))
    if not (h.system_uzi.isdigit() and len(h.system_uzi) == 9):
        problems.append(("hospital.system_uzi", "must be the 9-digit UZI system number"))
    if not h.name.strip() or not h.name.isprintable():
        problems.append(("hospital.name", "must be a name without control characters"))
    t = settings.throttle
    _bounded(problems, "throttle.rate_per_second", t.rate_per_second, 0.01, 100, unit=" per second")
    _bounded(problems, "throttle.max_in_flight", t.max_in_flight, 1, 64)
    _bounded(problems, "throttle.breaker_failures", t.breaker_failures, 1, 1000)
    _bounded(problems, "throttle.breaker_reset_seconds", t.breaker_reset_seconds, 1, 3600)
    _bounded(problems, "throttle.jitter_margin_seconds", t.jitter_margin_seconds, 0, 0.5, unit=" s")
    lsp = settings.lsp
    if not lsp.url.startswith("https://"):
        problems.append(("lsp.url", "must be an https:// URL (the LSP is only spoken to over TLS)"))
    for key in ("connect_timeout", "read_timeout"):
        _bounded(problems, f"lsp.{key}", getattr(lsp, key), 0.1, 600, unit=" seconds")
    _bounded(problems, "lsp.look_back_days", lsp.look_back_days, 1, 3650, unit=" days")
    r = settings.run
    _bounded(problems, "run.max_attempts", r.max_attempts, 1, 3)
    _bounded(problems, "run.fresh_hours", r.fresh_hours, 0, 24 * 14, unit=" hours")
    _bounded(
        problems, "run.backoff_base_seconds", r.backoff_base_seconds, 0.1, 3600, unit=" seconds"
    )
    _bounded(
        problems,
        "run.backoff_max_seconds",
        r.backoff_max_seconds,
        r.backoff_base_seconds,
        24 * 3600,
        unit=" seconds (and not below backoff_base_seconds)",
    )
    _check_daemon(settings.daemon, problems)
    _check_retention(settings.retention, problems)
    if settings.logging.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append(("logging.level", "must be DEBUG, INFO, WARNING or ERROR"))
    if settings.logging.format not in ("auto", "json", "console"):
        problems.append(("logging.format", "must be auto, json or console"))


def _check_retention(r: RetentionSettings, problems: list[tuple[str, str]]) -> None:
    _bounded(problems, "retention.dispense_days", r.dispense_days, 1, 3650, unit=" days")
    _bounded(problems, "retention.unviewed_days", r.unviewed_days, 1, 365, unit=" days")
    _bounded(problems, "retention.run_days", r.run_days, 1, 3650, unit=" days")
    _bounded(problems, "retention.audit_years", r.audit_years, 5, 100, unit=" years (NEN 7513)")


def _check_daemon(d: DaemonSettings, problems: list[tuple[str, str]]) -> None:
    _bounded(problems, "daemon.http_port", d.http_port, 0, 65535)
    _bounded(problems, "daemon.leader_poll_seconds", d.leader_poll_seconds, 0.1, 30, unit=" s")
    _bounded(problems, "daemon.misfire_grace_seconds", d.misfire_grace_seconds, 1, 86400)
    for key in ("sweep_seconds", "work_poll_seconds", "reload_seconds"):
        _bounded(problems, f"daemon.{key}", getattr(d, key), 0.1, 3600, unit=" seconds")
    if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", d.clinic_day_starts):
        problems.append(("daemon.clinic_day_starts", 'must be a local time like "07:00"'))


def readiness_problems(settings: Settings) -> list[tuple[str, str]]:
    """What must still be filled in before anything is sent to the LSP: placeholders for
    the hospital's identity and missing certificate paths. (Loading does not require them:
    `db upgrade` and `schedules check` work without.)"""
    problems: list[tuple[str, str]] = []
    h, lsp = settings.hospital, settings.lsp
    if set(h.ura) <= {"0"}:
        problems.append(("hospital.ura", "still the placeholder; set the hospital's URA"))
    if set(h.system_uzi) <= {"0"}:
        problems.append(("hospital.system_uzi", "still the placeholder; set the UZI system number"))
    if set(h.application_id) <= {"0"}:
        problems.append(("hospital.application_id", "still the placeholder; set the AORTA id"))
    for key in ("client_p12", "ca_file"):
        value = getattr(lsp, key)
        if not value:
            problems.append((f"lsp.{key}", "not set"))
        elif not Path(value).is_file():
            problems.append((f"lsp.{key}", f"file not found: {value}"))
    if not settings.security.trust_anchors:
        problems.append(
            ("security.trust_anchors", "not set: the UZI root CA is needed to check mandates")
        )
    return problems


def load_settings(path: Path | None, *, env: Mapping[str, str] | None = None) -> Settings:
    """Load settings; `path=None` uses config/prefetch.toml when it exists, else defaults.

    Raises SettingsProblems listing every problem with its key.
    """
    env = os.environ if env is None else env
    source = "defaults"
    raw: dict[str, Any] = {}
    if path is None and DEFAULT_CONFIG_FILE.exists():
        path = DEFAULT_CONFIG_FILE
    if path is not None:
        source = str(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsProblems(source, [("-", "file not found")]) from None
        except (OSError, UnicodeDecodeError) as exc:
            reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else "cannot read"
            raise SettingsProblems(source, [("-", f"{reason} ({type(exc).__name__})")]) from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsProblems(source, [("-", f"not valid TOML: {exc}")]) from None
    problems: list[tuple[str, str]] = []
    top: dict[str, Any] = {}
    for key in ("data_dir", "schedules_dir", "sources_file"):
        env_name = f"{ENV_PREFIX}{key}".upper()
        value = env.get(env_name, raw.get(key))
        if value is not None:
            top[key] = _convert(value, str, key, problems)
    for key, value in raw.items():
        if key in ("data_dir", "schedules_dir", "sources_file"):
            continue
        if key not in _SECTION_TYPES:
            problems.append((key, f"unknown section (known: {', '.join(sorted(_SECTION_TYPES))})"))
        elif not isinstance(value, dict):
            problems.append((key, "must be a [section] table"))
    sections = {
        name: _build_section(
            _SECTION_TYPES[name],
            name,
            raw.get(name, {}) if isinstance(raw.get(name), dict) else {},
            env,
            problems,
        )
        for name in _SECTION_TYPES
    }
    settings = Settings(**{k: v for k, v in top.items() if v is not None}, **sections)
    _check(settings, problems)
    if problems:
        raise SettingsProblems(source, problems)
    return settings
