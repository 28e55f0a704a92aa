"""Operational logging: structlog, configured once at the edge, with redaction.

No BSN, name or birth date may reach an operational log. The redaction processor drops
keys that name personal data and replaces any 9-digit number that passes the BSN 11-check
(with or without separators) in every string value by "[bsn]". The audit log is a
separate table, not a log stream.

Standard-library loggers (urllib3, sqlalchemy, apscheduler, signxml) go through the same
pipeline; signxml stays at WARNING (at DEBUG it prints the signed assertions).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from prefetch.domain.bsn import passes_eleven_check

_PERSONAL_KEYS = frozenset(
    {
        "bsn",
        "patient_bsn",
        "name",
        "patient_name",
        "birth_date",
        "birthdate",
        "birth_time",
        "address",
        "family",
        "given",
    }
)
_NINE_DIGITS = re.compile(r"(?<!\d)(\d[\s.\-]?){8}\d(?!\d)")
# signxml logs the signed assertion (with the BSN) at DEBUG.
_QUIET_LOGGERS = {
    "signxml": logging.WARNING,
    "urllib3": logging.WARNING,
    "sqlalchemy.engine": logging.WARNING,
    "alembic": logging.WARNING,
    "apscheduler": logging.INFO,
}


def redact_text(text: str) -> str:
    """Replace every 11-check-valid 9-digit number in `text` by "[bsn]"."""

    def _sub(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return "[bsn]" if passes_eleven_check(digits) else match.group(0)

    return _NINE_DIGITS.sub(_sub, text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return redact_text(str(value)) if len(str(value)) in (8, 9) else value
    if isinstance(value, dict):
        return {
            k: ("[redacted]" if k in _PERSONAL_KEYS else _redact_value(v)) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


def redact_personal_data(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: the last line of defence against patient data in logs."""
    for key in list(event_dict):
        if key in _PERSONAL_KEYS:
            event_dict[key] = "[redacted]"
        else:
            event_dict[key] = _redact_value(event_dict[key])
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Configure structlog and the standard library once, at the edge (CLI / daemon)."""
    stream = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_personal_data,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name, quiet in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(quiet, logging.getLevelName(level.upper())))
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.stdlib.get_logger(name)
