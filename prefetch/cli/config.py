"""`prefetch config check` and `prefetch schedules check`: validate without sending."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from prefetch.cli.common import CONFIG_OPTION, EXIT_USAGE, settings_or_exit
from prefetch.domain.localtime import AMSTERDAM
from prefetch.schedule_files import ScheduleError, load_schedule
from prefetch.settings import readiness_problems


def next_run(run_at: dt.time, now: dt.datetime) -> dt.datetime:
    """The next local wall-clock occurrence of `run_at` after `now` (Europe/Amsterdam)."""
    local = now.astimezone(AMSTERDAM)
    day = local.date()
    for offset in range(3):
        candidate = dt.datetime.combine(day + dt.timedelta(days=offset), run_at, tzinfo=AMSTERDAM)
        if candidate > local:
            return candidate
    raise AssertionError("unreachable")  # pragma: no cover


def register(app: typer.Typer) -> None:
    config_app = typer.Typer(help="Settings: check them without sending anything.")
    schedules_app = typer.Typer(help="Schedule files: check them before use.")
    app.add_typer(config_app, name="config")
    app.add_typer(schedules_app, name="schedules")

    @config_app.command("check")
    def config_check(config: Path | None = CONFIG_OPTION) -> None:
        """Validate the settings and report every problem with its key, including what
        must still be filled in before anything can be sent to the LSP."""
        from prefetch.hl7v3.schema_set import requested_dir, schema_set_problem, schemas_required

        settings = settings_or_exit(config)
        schemas = schema_set_problem()
        if schemas is None:
            typer.echo(f"ok: HL7v3 schema set at {requested_dir()}")
        elif schemas_required():
            typer.echo(f"error: hl7v3.schema_dir: {schemas} (PREFETCH_REQUIRE_SCHEMAS=1)", err=True)
            raise typer.Exit(EXIT_USAGE)
        else:
            typer.echo(f"warning: hl7v3.schema_dir: {schemas}", err=True)
        missing = readiness_problems(settings)
        if missing:
            typer.echo("error: settings load, but are not ready to query the LSP:", err=True)
            for key, message in missing:
                typer.echo(f"  {key}: {message}", err=True)
            raise typer.Exit(EXIT_USAGE)
        typer.echo(
            f"ok: settings valid (database {settings.database_url.split('://')[0]}, "
            f"LSP {settings.lsp.url}, {settings.throttle.rate_per_second}/s, "
            f"{settings.throttle.max_in_flight} in flight)"
        )

    @schedules_app.command("check")
    def schedules_check(
        files: list[Path] = typer.Argument(
            None,
            help="Schedule files; default: all in the schedules directory.",
        ),
        config: Path | None = CONFIG_OPTION,
    ) -> None:
        """Check schedule files: ok with the next run, or the file, line and fix."""
        settings = settings_or_exit(config)
        paths = files or sorted(Path(settings.schedules_dir).glob("*.toml"))
        if not paths:
            typer.echo(f"error: no schedule files in {settings.schedules_dir}", err=True)
            raise typer.Exit(EXIT_USAGE)
        failed = False
        now = dt.datetime.now(dt.UTC)
        seen: dict[str, Path] = {}
        for path in paths:
            try:
                schedule = load_schedule(path)
            except ScheduleError as exc:
                typer.echo(f"error: {exc}", err=True)
                failed = True
                continue
            if schedule.id in seen:
                typer.echo(
                    f"error: {path}: schedule id '{schedule.id}' also used in "
                    f"{seen[schedule.id]}; give each schedule its own id",
                    err=True,
                )
                failed = True
                continue
            seen[schedule.id] = path
            when = next_run(schedule.run_at, now)
            typer.echo(
                f"ok: {path} ({schedule.id}), next run {when:%a %d %b %H:%M} "
                f"for clinic day {(when.date() + dt.timedelta(days=schedule.days_ahead))}"
            )
        if failed:
            raise typer.Exit(EXIT_USAGE)
