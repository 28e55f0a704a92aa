"""`prefetch plan SCHEDULE --date D [--json]`: the worklist of a clinic day, sending nothing.

Each patient with their decision and reason (`duplicate` names the earlier schedule of the
same night that queries them). The appointments come from the appointment book, or from
`--appointments FILE`; the objection register is applied either way. No BSN is printed.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import typer

from prefetch.cli.common import CONFIG_OPTION, EXIT_OK, clean_errors, fail, settings_or_exit
from prefetch.domain.schedule import Schedule
from prefetch.settings import Settings


def find_schedule(settings: Settings, name: str) -> tuple[Schedule, list[Schedule]]:
    """The schedule named by file or id, and the other valid schedules of the directory."""
    from prefetch.schedule_files import ScheduleError, load_schedule

    others: list[Schedule] = []
    for path in sorted(Path(settings.schedules_dir).glob("*.toml")):
        try:
            others.append(load_schedule(path))
        except ScheduleError:
            continue  # `prefetch schedules check` reports it
    as_path = Path(name)
    if as_path.suffix == ".toml" or as_path.exists():
        return load_schedule(as_path), others
    for schedule in others:
        if schedule.id == name:
            return schedule, others
    raise fail(f"no schedule '{name}' in {settings.schedules_dir}: give its file or id")


def register(app: typer.Typer) -> None:
    @app.command("plan")
    def plan_cmd(  # noqa: PLR0917 - typer maps each parameter to an option
        schedule_name: str = typer.Argument(..., help="Schedule file or id."),
        date: str = typer.Option(..., "--date", help="Clinic day YYYY-MM-DD."),
        appointments: Path | None = typer.Option(
            None, "--appointments", help="Read the day from this file instead of the book."
        ),
        fmt: str | None = typer.Option(None, "--format", help="csv, hl7v2 or fhir."),
        as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
        config: Path | None = CONFIG_OPTION,
    ) -> None:
        """Show who would be queried for a clinic day, and why the others would not."""
        from prefetch.composition import open_stores, require_current_schema
        from prefetch.sources.formats import guess_format, read_path
        from prefetch.worklist import DayInputs, decide_day, refusing_of

        settings = settings_or_exit(config)
        try:
            clinic_day = dt.date.fromisoformat(date)
        except ValueError:
            raise fail(f"--date {date[:20]!r} is not a date like 2026-11-24") from None
        with clean_errors():
            schedule, others = find_schedule(settings, schedule_name)
            stores = open_stores(settings, migrate=False)
            require_current_schema(stores)
            from_file = None
            if appointments is not None:
                chosen = fmt or guess_format(appointments) or "csv"
                result = read_path(appointments, chosen)
                for error in result.errors:
                    typer.echo(f"warning: {error}", err=True)
                from_file = result.appointments

            def appointments_for(s: Schedule) -> list:  # type: ignore[type-arg]
                found = (
                    from_file if from_file is not None else stores.book.day(s.clinics, clinic_day)
                )
                return refusing_of(found, stores.consent.refusing)

            inputs = DayInputs(
                now=dt.datetime.now(dt.UTC),
                fresh_default=dt.timedelta(hours=settings.run.fresh_hours),
                last_fetched_at_many=stores.dispenses.last_fetched_at_many,
                mandate_for=lambda s: stores.mandates.get(s.mandate_id) if s.mandate_id else None,
                appointments_for=appointments_for,
            )
            lines = decide_day(schedule, clinic_day, inputs, others)
            stores.engine.dispose()
        if as_json:
            typer.echo(json.dumps([line.as_json() for line in lines], indent=1))
            raise typer.Exit(EXIT_OK)
        for line in lines:
            why = line.reason or ""
            if line.detail:
                why += f" (queried by {line.detail})"
            typer.echo(f"{line.appointment_id}  {line.patient_local_id}  {line.decision}  {why}")
        eligible = sum(1 for line in lines if line.decision == "eligible")
        typer.echo(f"{schedule.id}, clinic day {clinic_day}: {eligible} of {len(lines)} to query")
        raise typer.Exit(EXIT_OK)
