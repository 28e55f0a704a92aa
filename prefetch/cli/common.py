"""Helpers shared by the CLI commands: settings loading and clean error exits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from prefetch.errors import (
    AlreadyRunningError,
    ConfigError,
    MandateError,
    PrefetchError,
    StopError,
    StoreUnavailableError,
)
from prefetch.settings import Settings, SettingsProblems, load_settings

EXIT_OK = 0
EXIT_FAILURES = 1  # finished with failures, or incomplete
EXIT_USAGE = 2  # usage or configuration error (also: the database is unreachable)
EXIT_ALREADY_RUNNING = 3
EXIT_INTERNAL = 4  # a bug: one line on the terminal, the traceback in a file

CONFIG_OPTION = typer.Option(
    None,
    "--config",
    "-c",
    help="Settings file (TOML); default config/prefetch.toml when present, else built-in defaults.",
)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def settings_or_exit(path: Path | None) -> Settings:
    """The settings, or every problem on stderr and exit 2. Also points the HL7v3 schema
    validators at `[hl7v3] schema_dir` (the one process-wide setting they read)."""
    from prefetch.hl7v3 import schema_set

    try:
        settings = load_settings(path)
    except SettingsProblems as exc:
        typer.echo(f"error: invalid settings in {exc.source}:", err=True)
        for key, message in exc.problems:
            typer.echo(f"  {key}: {message}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    schema_set.configure(settings.hl7v3.schema_dir)
    return settings


def ready_settings_or_exit(path: Path | None) -> Settings:
    """The settings, ready to send to the LSP (no placeholders, certificate files found);
    else every missing thing on stderr, with its key, and exit 2."""
    from prefetch.settings import readiness_problems

    settings = settings_or_exit(path)
    missing = readiness_problems(settings)
    if missing:
        for key, message in missing:
            typer.echo(f"error: {key}: {message}", err=True)
        raise typer.Exit(EXIT_USAGE)
    return settings


@contextmanager
def clean_errors() -> Iterator[None]:
    """Turn the product's own errors into one line on stderr and an exit code."""
    try:
        yield
    except AlreadyRunningError as exc:
        raise fail(str(exc), EXIT_ALREADY_RUNNING) from None
    except StoreUnavailableError as exc:
        raise fail(f"database unavailable: {exc}; is it running?", EXIT_USAGE) from None
    except (ConfigError, MandateError) as exc:  # the operator must fix something first
        raise fail(str(exc), EXIT_USAGE) from None
    except StopError as exc:
        raise fail(str(exc), EXIT_FAILURES) from None
    except PrefetchError as exc:
        raise fail(str(exc), EXIT_FAILURES) from None


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """A database that is down or refuses us: one line naming it, exit 2."""
    from sqlalchemy.exc import DBAPIError

    from prefetch.store.db import display_url

    try:
        yield
    except DBAPIError as exc:
        reason = str(exc.orig).splitlines()[0][:200] if exc.orig is not None else ""
        raise fail(
            f"database unavailable at {display_url(url)}: {reason or type(exc).__name__}"
            " (is it running, and is [database] url right?)",
            EXIT_USAGE,
        ) from None
    except StoreUnavailableError as exc:
        raise fail(
            f"database unavailable at {display_url(url)}: {exc} (is it running?)", EXIT_USAGE
        ) from None


@contextmanager
def internal_errors(data_dir: Path) -> Iterator[None]:
    """A bug: one line with where the traceback went, exit 4 (never a traceback here)."""
    try:
        yield
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        import traceback
        import uuid

        ref = uuid.uuid4().hex[:8]
        path = data_dir / "logs" / f"internal-error-{ref}.txt"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
            where = str(path)
        except OSError:
            where = "(could not write the traceback)"
        raise fail(
            f"internal error {type(exc).__name__} (ref {ref}); details: {where}", 4
        ) from None
