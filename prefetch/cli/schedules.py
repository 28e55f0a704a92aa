"""`prefetch schedules check [FILE...]`: every problem as `file:line: message (hint: ...)`,
and for each valid schedule its next three run times. Exit 2 when anything is wrong."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from prefetch.cli.common import CONFIG_OPTION, EXIT_OK, EXIT_USAGE, settings_or_exit


def register(app: typer.Typer) -> None:
    schedules_app = typer.Typer(help="Schedule files: check them before use.")
    app.add_typer(schedules_app, name="schedules")

    @schedules_app.command("check")
    def schedules_check(
        files: list[Path] = typer.Argument(
            None, help="Schedule files; default: all in the schedules directory."
        ),
        config: Path | None = CONFIG_OPTION,
    ) -> None:
        """Check schedule files: the next runs, or the file, line and fix of each problem."""
        from prefetch.domain.timing import next_runs
        from prefetch.schedule_files import check_schedules

        settings = settings_or_exit(config)
        paths = files or sorted(Path(settings.schedules_dir).glob("*.toml"))
        if not paths:
            typer.echo(f"error: no schedule files in {settings.schedules_dir}", err=True)
            raise typer.Exit(EXIT_USAGE)
        valid, problems = check_schedules(paths, known_clinics=settings.hospital.clinics)
        for problem in problems:
            typer.echo(f"error: {problem}", err=True)
        now = dt.datetime.now(dt.UTC)
        for path, schedule in valid:
            runs = next_runs(schedule, now, 3)
            shown = ", ".join(f"{r:%a %d %b %H:%M}" for r in runs)
            first = runs[0].date() + dt.timedelta(days=schedule.days_ahead) if runs else None
            typer.echo(
                f"ok: {path} ({schedule.id}), next runs {shown} (Europe/Amsterdam); "
                f"first for clinic day {first}"
            )
        raise typer.Exit(EXIT_USAGE if problems else EXIT_OK)
