"""`prefetch run`: prefetch one schedule's clinic day from an appointment export, now.

The same use case the nightly daemon calls (`prefetch.run_day.run_schedule_day`), started
by hand: settings, schedule file, appointments, the registered mandate (checked before
anything is sent), the LSP client with the configured UZI server certificate, the durable
run (a second call for the same schedule and day resumes it).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer
from rich.console import Console

from prefetch.cli.common import (
    CONFIG_OPTION,
    EXIT_FAILURES,
    EXIT_OK,
    EXIT_USAGE,
    clean_errors,
    database_errors,
    internal_errors,
    ready_settings_or_exit,
)
from prefetch.cli.progress import run_progress, summary_table
from prefetch.domain.localtime import AMSTERDAM
from prefetch.logging import configure_logging


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run_cmd(
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
    ) -> None:
        """Prefetch one clinic day for one schedule against the configured LSP.

        Exit codes: 0 every patient definitive; 1 failures, or incomplete (window closed,
        run stopped); 2 usage, configuration or database unreachable; 3 already running
        (the holder is named); 4 internal error (details in <data_dir>/logs).
        """
        from prefetch.composition import (
            load_credential,
            make_lsp_client,
            make_run_locks,
            make_run_services,
            open_stores,
            require_current_schema,
        )
        from prefetch.run_day import RunRequest, run_schedule_day
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
            with run_progress(console) as (on_stage, on_progress):
                result = run_schedule_day(
                    services,
                    RunRequest(
                        schedule=schedule,
                        clinic_day=clinic_day,
                        appointments=appts,
                        progress=on_progress,
                        on_stage=on_stage,
                        wait_for_lock=wait,
                    ),
                )
            stores.engine.dispose()
        summary = result.summary
        console.print(summary_table(summary, f"{schedule.id}, clinic day {clinic_day}"))
        console.print(f"run id: {result.run_id}")
        if result.stopped:
            console.print(f"run stopped: {result.stopped}")
        elif result.status == "incomplete":
            console.print(f"run incomplete: {summary.open} patients left when its window closed")
        raise typer.Exit(EXIT_OK if result.status == "complete" else EXIT_FAILURES)
