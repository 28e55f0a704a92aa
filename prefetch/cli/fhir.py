"""`prefetch fhir convert FILE`: an LSP answer as the FHIR R4 Bundle the API would serve,
and `prefetch api-token create|revoke|list`: the EPD's bearer tokens.

Exit codes: 0 ok; 1 converted, but a resource fails our MP9 checks (listed on stderr);
2 unreadable file, not an LSP answer, bad settings or database (one line, no traceback).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import typer

from prefetch.cli.common import CONFIG_OPTION, EXIT_FAILURES, fail


def _now() -> dt.datetime:
    """The current moment (a seam for tests)."""
    return dt.datetime.now(dt.UTC)


def register(app: typer.Typer) -> None:
    fhir_app = typer.Typer(help="FHIR R4 (Nictiz MP9 3.0) tools.", no_args_is_help=True)
    app.add_typer(fhir_app, name="fhir")

    @fhir_app.command("convert")
    def convert_cmd(
        file: Path = typer.Argument(..., help="An LSP answer: QURX_IN990113NL, batch or SOAP."),
        responsible_uzi: str | None = typer.Option(
            None, "--responsible-uzi", help="UZI number of the clinician the query ran under."
        ),
        responsible_name: str | None = typer.Option(None, "--responsible-name"),
        base: str = typer.Option(
            "urn:prefetch:fhir", "--base", help="Base of the entries' fullUrl."
        ),
    ) -> None:
        """Print the FHIR collection Bundle (JSON) for the dispenses of one answer."""
        from prefetch.errors import PrefetchError
        from prefetch.fhir.checks import mp9_problems
        from prefetch.fhir.convert import Responsible, convert_answer

        try:
            data = file.read_bytes()
        except OSError as exc:
            raise fail(f"{file}: cannot read ({exc.strerror or exc})") from None
        responsible = (
            Responsible(uzi=responsible_uzi, name=responsible_name) if responsible_uzi else None
        )
        try:
            bundle, _ = convert_answer(data, responsible=responsible, now=_now(), base=base)
        except PrefetchError as exc:
            raise fail(f"{file}: {exc}") from None
        typer.echo(json.dumps(bundle, indent=2, ensure_ascii=False))
        problems = [
            f"{e['resource']['resourceType']}/{e['resource']['id']}: {p}"
            for e in bundle["entry"]
            for p in mp9_problems(e["resource"])
        ]
        for line in problems:
            typer.echo(f"MP9 check: {line}", err=True)
        if problems:
            raise typer.Exit(EXIT_FAILURES)

    _ = CONFIG_OPTION  # api-token commands (below) read the settings
