"""`prefetch daemon [-c CONFIG]`: run every schedule on time until SIGTERM.

Exit codes: 0 stopped on SIGTERM/SIGINT (gracefully); 2 settings, schedules or database
not usable (one line on stderr naming what to fix).
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType

import typer

from prefetch.cli.common import (
    CONFIG_OPTION,
    EXIT_OK,
    EXIT_USAGE,
    clean_errors,
    ready_settings_or_exit,
)
from prefetch.logging import configure_logging, get_logger

log = get_logger("prefetch.cli.daemon")


def register(app: typer.Typer) -> None:
    @app.command("daemon")
    def daemon_cmd(config: Path | None = CONFIG_OPTION) -> None:
        """Run all schedules on time (APScheduler); several daemons may share PostgreSQL."""
        from sqlalchemy.exc import OperationalError

        from prefetch.daemon.wiring import build_daemon
        from prefetch.errors import StoreUnavailableError

        settings = ready_settings_or_exit(config)
        configure_logging(settings.logging.level, settings.logging.format)
        # APScheduler tells of every job it runs or skips (every few seconds): keep its
        # errors and its "missed by" warnings, not the chatter; the daemon logs its runs.
        logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)
        logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
        stop = threading.Event()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("signal_received", signal=signal.Signals(signum).name)
            stop.set()

        with clean_errors():
            try:
                app_ = build_daemon(settings)
            except (OperationalError, StoreUnavailableError) as exc:
                typer.echo(
                    f"error: database unreachable ({type(exc).__name__}); check "
                    "[database] url / PREFETCH_DATABASE_URL and that the server runs",
                    err=True,
                )
                raise typer.Exit(EXIT_USAGE) from None
            signal.signal(signal.SIGTERM, on_signal)
            signal.signal(signal.SIGINT, on_signal)
            app_.start()
            schedules = sorted(s.id for s in app_.daemon.book.schedules())
            endpoint = (
                f"; metrics and health on http://{settings.daemon.http_host}:{app_.ops.port}"
                if app_.ops
                else ""
            )
            typer.echo(
                f"daemon started: schedules {', '.join(schedules) or 'none'}{endpoint}", err=True
            )
            log.info(
                "daemon_started",
                schedules=schedules,
                next_fires={k: str(v) for k, v in app_.service.next_fires().items()},
            )
            announced = False
            while not stop.wait(1.0):
                if not announced and not app_.daemon.is_leader:
                    holder = app_.daemon.holder()
                    if holder:
                        typer.echo(f"standing by: {holder} leads on this database", err=True)
                        log.info("standing_by", leader=holder)
                        announced = True
                if app_.daemon.is_leader:
                    announced = False
            app_.stop()
        raise typer.Exit(EXIT_OK)
