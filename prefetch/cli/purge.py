"""`prefetch purge`: data minimisation by the `[retention]` settings.

Exit codes: 0 done; 2 usage or configuration error.
"""

from __future__ import annotations

from pathlib import Path

import typer

from prefetch.cli.common import CONFIG_OPTION, clean_errors, settings_or_exit


def register(app: typer.Typer) -> None:
    @app.command("purge")
    def purge_command(
        audit: bool = typer.Option(
            False,
            "--audit",
            help="Also remove audit rows past [retention] audit_years (at least 5), through "
            "a checkpoint signed with the system certificate; needs the owner role.",
        ),
        config: Path | None = CONFIG_OPTION,
    ) -> None:
        """Remove dispenses, runs and (with --audit) old audit rows past their retention."""
        import datetime as dt

        from prefetch.composition import load_credential, open_engine
        from prefetch.store.purge import purge

        settings = settings_or_exit(config)
        with clean_errors():
            credential = load_credential(settings) if audit else None
            engine = open_engine(settings)
            try:
                report = purge(
                    engine,
                    settings.retention,
                    now=dt.datetime.now(dt.UTC),
                    credential=credential,
                    audit=audit,
                )
            finally:
                engine.dispose()
        typer.echo(report.summary())
