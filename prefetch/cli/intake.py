"""`prefetch intake read|load|listen`: appointment intake for integrators and feeds.

`read` prints what a file holds (exit 0 when it could be read, even with row errors; 2 when
it cannot be read at all). `load` applies a file to the appointment book of the store.
`listen` receives an HL7v2 MLLP feed into the book and acknowledges every message.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from prefetch.cli.common import EXIT_OK, EXIT_USAGE, fail
from prefetch.sources.intake import FORMATS, SourceUnreadable

FORMAT_OPTION = typer.Option(
    None, "--format", "-f", help=f"One of {', '.join(FORMATS)}; default: from the file name."
)


def _format(path: Path, fmt: str | None) -> str:
    from prefetch.sources.formats import guess_format

    chosen = fmt or guess_format(path)
    if chosen not in FORMATS:
        raise fail(f"{path}: say --format {'|'.join(FORMATS)}")
    return chosen


def register(app: typer.Typer) -> None:
    intake_app = typer.Typer(help="Appointment intake: read files, load them, listen to feeds.")
    app.add_typer(intake_app, name="intake")

    @intake_app.command("read")
    def read(
        file: Path = typer.Argument(..., help="The export, message file or FHIR JSON."),
        fmt: str | None = FORMAT_OPTION,
        as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    ) -> None:
        """Print the appointments a file holds and every row, message or entry error."""
        from prefetch.sources.formats import appointment_json, read_path, result_json

        chosen = _format(file, fmt)
        try:
            result = read_path(file, chosen)
        except SourceUnreadable as exc:
            raise fail(str(exc), EXIT_USAGE) from None
        if as_json:
            typer.echo(json.dumps(result_json(result), ensure_ascii=False, indent=1))
            raise typer.Exit(EXIT_OK)
        for a in result.appointments:
            j = appointment_json(a)
            typer.echo(
                f"{j['id']}  {j['start']}  {j['clinic']}/{j['agenda'] or '-'}  {j['type']}  "
                f"{j['status']}  patient {j['patient_id']}"
            )
        for e in result.errors:
            typer.echo(f"error: {e}", err=True)
        typer.echo(f"{len(result.appointments)} appointments, {len(result.errors)} errors")
        raise typer.Exit(EXIT_OK)
