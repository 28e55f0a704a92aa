"""`prefetch intake read|load|listen`: appointment intake for integrators and feeds.

`read` prints what a file holds (exit 0 when it could be read, even with row errors; 2 when
it cannot be read at all). `load` applies a file to the appointment book of the store.
`listen` receives an HL7v2 MLLP feed into the book and acknowledges every message.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from prefetch.cli.common import (
    CONFIG_OPTION,
    EXIT_OK,
    EXIT_USAGE,
    clean_errors,
    fail,
    settings_or_exit,
)
from prefetch.domain.people import Appointment, Consent
from prefetch.sources.intake import FORMATS, SourceUnreadable

if TYPE_CHECKING:
    from prefetch.store.objections import ConsentRegister

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

    register_feeds(intake_app)


def _source_options(
    settings_path: str, name: str, fmt: str | None, path: Path | None
) -> tuple[str, dict[str, object]]:
    from prefetch.sources.config import source_settings
    from prefetch.sources.formats import guess_format

    configured = source_settings(Path(settings_path), name)
    chosen = fmt or configured.format or (guess_format(path) if path else None)
    if chosen not in FORMATS:
        raise fail(
            f"source '{name}': say --format {'|'.join(FORMATS)} or set it in the sources file"
        )
    options: dict[str, object] = {}
    if chosen == "csv":
        options["columns"] = configured.columns
    if chosen == "hl7v2":
        options["verified"] = configured.verified
    return chosen, options


def register_feeds(intake_app: typer.Typer) -> None:
    @intake_app.command("load")
    def load(
        file: Path = typer.Argument(..., help="The export, message file or FHIR JSON."),
        source: str = typer.Option(..., "--source", help="Source name (the book's key)."),
        fmt: str | None = FORMAT_OPTION,
        config: Path | None = CONFIG_OPTION,
    ) -> None:
        """Apply a file to the appointment book (idempotent; cancellations are final)."""
        import datetime as dt

        from prefetch.composition import open_stores, require_current_schema
        from prefetch.sources.formats import read_path

        settings = settings_or_exit(config)
        with clean_errors():
            chosen, options = _source_options(settings.sources_file, source, fmt, file)
            result = read_path(file, chosen, **options)
            stores = open_stores(settings, migrate=False)
            require_current_schema(stores)
            report = stores.book.apply(source, result.received, now=dt.datetime.now(dt.UTC))
            refused = import_refusals(stores.consent, result.appointments, source)
            stores.engine.dispose()
        for error in result.errors:
            typer.echo(f"error: {error}", err=True)
        typer.echo(
            f"{file}: {report.added} added, {report.updated} updated, {report.cancelled} "
            f"cancelled, {report.ignored} unchanged or ignored; {len(result.errors)} errors; "
            f"{refused} objections imported"
        )
        raise typer.Exit(EXIT_OK)

    @intake_app.command("listen")
    def listen(
        port: int = typer.Option(..., "--port", min=1, max=65535, help="TCP port for MLLP."),
        source: str = typer.Option(..., "--source", help="Source name (the book's key)."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
        config: Path | None = CONFIG_OPTION,
    ) -> None:
        """Receive an HL7v2 SIU feed over MLLP into the book, acknowledging each message."""
        import asyncio
        import datetime as dt

        from prefetch.composition import open_stores, require_current_schema
        from prefetch.sources.hl7v2_source import VerifiedRule
        from prefetch.sources.mllp import FeedHandler, serve

        settings = settings_or_exit(config)
        with clean_errors():
            _, options = _source_options(settings.sources_file, source, "hl7v2", None)
            stores = open_stores(settings, migrate=False)
            require_current_schema(stores)
            rule = VerifiedRule.from_mapping(options.get("verified"))  # type: ignore[arg-type]
            handler = FeedHandler(
                lambda received: stores.book.apply(source, received, now=dt.datetime.now(dt.UTC)),
                rule,
            )

            async def main() -> None:
                server = await serve(handler, host=host, port=port)
                typer.echo(f"listening on {host}:{port} for source {source} (Ctrl-C stops)")
                async with server:
                    await server.serve_forever()

            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(main())
            stores.engine.dispose()
        typer.echo(f"stopped: {handler.counts}")
        raise typer.Exit(EXIT_OK)


def import_refusals(consent: ConsentRegister, appointments: list[Appointment], source: str) -> int:
    """Objections stated by a source (consent refused) go into the register."""
    count = 0
    for a in appointments:
        if a.patient.consent is Consent.REFUSED and a.patient.bsn is not None:
            count += consent.refuse(
                a.patient.bsn, reason=f"stated by source {source}", user=f"source:{source}"
            )
    return count
