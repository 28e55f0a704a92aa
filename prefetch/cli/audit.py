"""`prefetch audit verify` and `prefetch audit patient BSN`: the NEN 7513 audit log.

Exit codes: 0 ok; 1 the chain is broken (the first changed, removed or inserted row is
named); 2 usage or configuration error.
"""

from __future__ import annotations

from pathlib import Path

import typer

from prefetch.cli.common import CONFIG_OPTION, EXIT_FAILURES, clean_errors, settings_or_exit


def register(app: typer.Typer) -> None:
    audit_app = typer.Typer(help="The NEN 7513 audit log.", no_args_is_help=True)
    app.add_typer(audit_app, name="audit")

    @audit_app.command("verify")
    def verify_command(
        quick: bool = typer.Option(False, "--quick", help="Only from the last checkpoint on."),
        config: Path | None = CONFIG_OPTION,
    ) -> None:
        """Walk the audit hash chain; name the first changed, removed or inserted row."""
        from prefetch.composition import audit_trust, open_engine
        from prefetch.store.audit_verify import verify_chain

        settings = settings_or_exit(config)
        with clean_errors():
            engine = open_engine(settings)
            try:
                report = verify_chain(engine, quick=quick, trust=audit_trust(settings))
            finally:
                engine.dispose()
        typer.echo(report.summary(), err=not report.ok)
        if not report.ok:
            raise typer.Exit(EXIT_FAILURES)
