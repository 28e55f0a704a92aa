"""`prefetch run`: prefetch one schedule's clinic day from an appointment export, now.

The same use case the nightly daemon calls (`prefetch.run_day.run_schedule_day`), started
by hand: settings, schedule file, appointments, the registered mandate (checked before
anything is sent), the LSP client with the configured UZI server certificate, the durable
run (a second call for the same schedule and day resumes it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from prefetch.cli.common import (
    CONFIG_OPTION,
    EXIT_ALREADY_RUNNING,
    EXIT_FAILURES,
    EXIT_OK,
    EXIT_USAGE,
    clean_errors,
    database_errors,
    fail,
    internal_errors,
    ready_settings_or_exit,
)
from prefetch.cli.progress import run_progress, summary_table
from prefetch.domain.localtime import AMSTERDAM
from prefetch.logging import configure_logging


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run_cmd(  # noqa: PLR0917 - typer maps each parameter to an option
        schedule_file: Path = typer.Option(..., "--schedule", help="Schedule file (TOML)."),
        appointments: Path | None = typer.Option(
            None,
            "--appointments",
            help="Export of the clinic day (CSV, HL7v2 or FHIR); default: the appointment book.",
        ),
        day: str | None = typer.Option(
            None, "--day", help="Clinic day YYYY-MM-DD; default: today + days_ahead."
        ),
        config: Path | None = CONFIG_OPTION,
        wait: bool = typer.Option(
            False, "--wait", help="If another process runs this day, wait for it instead."
        ),
        again: bool = typer.Option(
            False,
            "--again",
            help="The day's run already finished: run the day once more (a new run; "
            "patients fetched within fresh_hours are skipped).",
        ),
        no_wait_window: bool = typer.Option(
            False,
            "--no-wait-window",
            help="Before the schedule's run_window opens: exit 2 instead of waiting for it.",
        ),
    ) -> None:
        """Prefetch one clinic day for one schedule against the configured LSP.

        Exit codes: 0 every patient definitive; 1 failures, or incomplete (window closed,
        run stopped); 2 usage, configuration or database unreachable, or the window not
        open yet with --no-wait-window; 3 already running (the holder is named) or already
        ran (the day's run finished before; --again runs it once more); 4 internal error
        (details in <data_dir>/logs).

        Started before the schedule's run_window opens, the run waits for it (a cron line
        a little early still runs on time), holding the day's lock.
        """
        from prefetch.composition import (
            load_credential,
            make_lsp_client,
            make_run_locks,
            make_run_services,
            open_stores,
            require_current_schema,
        )
        from prefetch.run_day import RunRequest, WindowNotOpenError, run_schedule_day
        from prefetch.schedule_files import load_schedule
        from prefetch.worklist import day_appointments

        settings = ready_settings_or_exit(config)
        try:
            clinic_day_arg = dt.date.fromisoformat(day) if day else None
        except ValueError:
            typer.echo(f"error: --day {day!r} is not a date like 2026-11-24", err=True)
            raise typer.Exit(EXIT_USAGE) from None
        configure_logging(settings.logging.level, settings.logging.format)
        console = Console()
        with (
            internal_errors(Path(settings.data_dir)),
            database_errors(settings.database_url),
            clean_errors(),
        ):
            schedule = load_schedule(schedule_file)
            now = dt.datetime.now(dt.UTC)
            clinic_day = clinic_day_arg or (
                now.astimezone(AMSTERDAM).date() + dt.timedelta(days=schedule.days_ahead)
            )
            stores = open_stores(settings, migrate=False)
            require_current_schema(stores)
            appts = day_appointments(
                schedule,
                clinic_day,
                book_day=stores.book.day,
                file=appointments,
            )
            client = make_lsp_client(settings, load_credential(settings))
            services = make_run_services(settings, stores, client, locks=make_run_locks(stores))
            with (
                run_progress(console) as (on_stage, on_progress),
                _not_open_exits_2(WindowNotOpenError),
            ):
                result = run_schedule_day(
                    services,
                    RunRequest(
                        schedule=schedule,
                        clinic_day=clinic_day,
                        appointments=appts,
                        progress=on_progress,
                        on_stage=on_stage,
                        wait_for_lock=wait,
                        again=again,
                        before_window="refuse" if no_wait_window else "wait",
                    ),
                )
            stores.engine.dispose()
        summary = result.summary
        if result.already_ran is not None:
            at = result.already_ran.astimezone(AMSTERDAM)
            why = (
                f"{result.holder} holds the day now"
                if result.holder
                else "the appointments bring no new patient"
            )
            raise fail(
                f"already ran: run {result.run_id} finished at {at:%Y-%m-%d %H:%M:%S %Z}; "
                f"{why} (--again runs the day once more)",
                EXIT_ALREADY_RUNNING,
            )
        console.print(summary_table(summary, f"{schedule.id}, clinic day {clinic_day}"))
        console.print(f"run id: {result.run_id}")
        if result.stopped:
            console.print(f"run stopped: {result.stopped}")
        elif result.status == "incomplete":
            console.print(f"run incomplete: {summary.open} patients left when its window closed")
        raise typer.Exit(EXIT_OK if result.status == "complete" else EXIT_FAILURES)


@contextmanager
def _not_open_exits_2(error: type[Exception]) -> Iterator[None]:
    """The window has not opened and the operator asked not to wait: one line, exit 2."""
    try:
        yield
    except error as exc:
        raise fail(str(exc), EXIT_USAGE) from None
