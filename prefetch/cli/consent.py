"""`prefetch consent refuse BSN --reason R` / `prefetch consent allow BSN`: the local
objection register, audited. The BSN is never echoed back."""

from __future__ import annotations

import getpass
from pathlib import Path

import typer

from prefetch.cli.common import CONFIG_OPTION, EXIT_OK, clean_errors, fail, settings_or_exit
from prefetch.domain.bsn import Bsn
from prefetch.errors import InvalidValueError

USER_OPTION = typer.Option(None, "--user", help="Who records this (default: the login name).")


def _user(user: str | None) -> str:
    return (user or getpass.getuser() or "unknown")[:128]


def _checked(bsn: str) -> str:
    """The BSN when it is valid; else exit 2 without repeating it."""
    try:
        return Bsn.parse(bsn).value
    except InvalidValueError as exc:
        raise fail(f"BSN: {exc.message}") from None


def register(app: typer.Typer) -> None:
    consent_app = typer.Typer(help="The local objection register (applied by eligibility).")
    app.add_typer(consent_app, name="consent")

    @consent_app.command("refuse")
    def refuse(
        bsn: str = typer.Argument(..., help="The patient's BSN."),
        reason: str = typer.Option(..., "--reason", help="Why (kept in the register)."),
        user: str | None = USER_OPTION,
        config: Path | None = CONFIG_OPTION,
    ) -> None:
        """Record that the patient objects: they are never queried (consent_refused)."""
        from prefetch.composition import open_stores, require_current_schema

        settings = settings_or_exit(config)
        bsn = _checked(bsn)
        with clean_errors():
            stores = open_stores(settings, migrate=False)
            require_current_schema(stores)
            changed = stores.consent.refuse(bsn, reason=reason, user=_user(user))
            stores.engine.dispose()
        typer.echo("objection recorded" if changed else "objection was already recorded")
        raise typer.Exit(EXIT_OK)

    @consent_app.command("allow")
    def allow(
        bsn: str = typer.Argument(..., help="The patient's BSN."),
        user: str | None = USER_OPTION,
        config: Path | None = CONFIG_OPTION,
    ) -> None:
        """Withdraw the patient's objection."""
        from prefetch.composition import open_stores, require_current_schema

        settings = settings_or_exit(config)
        bsn = _checked(bsn)
        with clean_errors():
            stores = open_stores(settings, migrate=False)
            require_current_schema(stores)
            changed = stores.consent.allow(bsn, user=_user(user))
            stores.engine.dispose()
        typer.echo("objection withdrawn" if changed else "no objection was recorded")
        raise typer.Exit(EXIT_OK)
