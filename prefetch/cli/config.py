"""`prefetch config check`: validate the settings without sending anything."""

from __future__ import annotations

from pathlib import Path

import typer

from prefetch.cli.common import CONFIG_OPTION, EXIT_USAGE, settings_or_exit
from prefetch.settings import readiness_problems


def register(app: typer.Typer) -> None:
    config_app = typer.Typer(help="Settings: check them without sending anything.")
    app.add_typer(config_app, name="config")

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
