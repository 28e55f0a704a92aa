"""`prefetch fhir convert FILE`: an LSP answer as the FHIR R4 Bundle the API would serve,
and `prefetch api-token create|revoke|list`: the EPD's bearer tokens.

Exit codes: 0 ok; 1 converted, but a resource fails our MP9 checks (listed on stderr);
2 unreadable file, not an LSP answer, bad settings or database (one line, no traceback).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from prefetch.cli.common import CONFIG_OPTION, EXIT_FAILURES, fail

if TYPE_CHECKING:
    from prefetch.store.api_tokens import ApiTokens


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

    token_app = typer.Typer(help="Bearer tokens for the FHIR API (the EPD).", no_args_is_help=True)
    app.add_typer(token_app, name="api-token")

    @token_app.command("create")
    def token_create(
        name: str = typer.Argument(..., help="Who uses it, e.g. epd-productie."),
        config: Path | None = CONFIG_OPTION,
    ) -> None:
        """Create a token and print it once (only its hash is stored)."""
        tokens = _tokens(config)
        with _store_errors():
            token = tokens.create(name, now=_now())
        if token is None:
            raise fail(f"a token named {name!r} exists; revoke it and choose another name")
        typer.echo(token)
        typer.echo(f"token {name!r} created; it is shown only now: store it in the EPD", err=True)

    @token_app.command("revoke")
    def token_revoke(name: str = typer.Argument(...), config: Path | None = CONFIG_OPTION) -> None:
        """Revoke a token: the API refuses it from now on."""
        tokens = _tokens(config)
        with _store_errors():
            done = tokens.revoke(name, now=_now())
        if not done:
            raise fail(f"no active token named {name!r} (see `prefetch api-token list`)")
        typer.echo(f"token {name!r} revoked")

    @token_app.command("list")
    def token_list(config: Path | None = CONFIG_OPTION) -> None:
        """The tokens: name, created, revoked (never the token)."""
        tokens = _tokens(config)
        with _store_errors():
            infos = tokens.all()
        for info in infos:
            state = f"revoked {info.revoked_at:%Y-%m-%d %H:%M}Z" if info.revoked_at else "active"
            typer.echo(f"{info.name}\tcreated {info.created_at:%Y-%m-%d %H:%M}Z\t{state}")


def _tokens(config: Path | None) -> ApiTokens:
    from prefetch.cli.common import settings_or_exit
    from prefetch.composition import open_stores

    settings = settings_or_exit(config)
    with _store_errors():
        stores = open_stores(settings)
    from prefetch.store.api_tokens import ApiTokens

    return ApiTokens(stores.engine)


@contextmanager
def _store_errors() -> Iterator[None]:
    from prefetch.errors import PrefetchError

    try:
        yield
    except PrefetchError as exc:
        raise fail(str(exc)) from None
