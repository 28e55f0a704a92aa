"""`prefetch desk`: serve the desk web app; `prefetch desk user ...`: manage its accounts.

Passwords are never taken from the command line (they would end up in the shell history
and the process list): `user add` and `user passwd` ask for them, or read them from
`--password-file` or from the environment variable `PREFETCH_DESK_PASSWORD`.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from prefetch.cli.common import CONFIG_OPTION, EXIT_USAGE, clean_errors, fail, settings_or_exit

if TYPE_CHECKING:
    from prefetch.store.desk_users import DeskUserRepository

PASSWORD_ENV = "PREFETCH_DESK_PASSWORD"  # noqa: S105 - a variable name


def _users(config: Path | None) -> DeskUserRepository:
    from prefetch.composition import open_stores, require_current_schema
    from prefetch.store.desk_users import DeskUserRepository

    settings = settings_or_exit(config)
    stores = open_stores(settings, migrate=False)
    require_current_schema(stores)
    return DeskUserRepository(stores.engine)


@contextmanager
def _checked() -> Iterator[None]:
    """A refused value (name, role, password rule) is a usage error: one line, exit 2."""
    from prefetch.errors import InvalidValueError

    with clean_errors():
        try:
            yield
        except InvalidValueError as exc:
            raise fail(exc.message) from None


def _password(password_file: Path | None, *, ask: bool) -> str | None:
    if password_file is not None:
        try:
            return password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise fail(f"{password_file}: cannot read the password file ({exc.strerror})") from None
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if not ask:
        return None
    return str(typer.prompt("Wachtwoord", hide_input=True, confirmation_prompt=True))


def _serve(app: object, host: str, port: int) -> None:
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False)  # type: ignore[arg-type]


def register(app: typer.Typer) -> None:
    desk = typer.Typer(help="The desk web app for the pharmacy assistants, and its accounts.")
    user = typer.Typer(help="Desk accounts: add, list, passwd, disable, enable.")
    desk.add_typer(user, name="user")
    app.add_typer(desk, name="desk")
    _register_serve(desk)
    _register_users(user)


def _register_serve(desk: typer.Typer) -> None:
    @desk.callback(invoke_without_command=True)
    def serve(
        ctx: typer.Context,
        host: str | None = typer.Option(None, help="Address to listen on ([desk] host)."),
        port: int | None = typer.Option(None, help="Port to listen on ([desk] port)."),
        demo: Path | None = typer.Option(
            None, "--demo", help="Serve the demo's data directory, with its LSP simulator."
        ),
        config: Path | None = CONFIG_OPTION,
    ) -> None:
        """Serve the desk (worklist, patient pages, audit view) on the configured database."""
        if ctx.invoked_subcommand is not None:
            return
        from prefetch.logging import configure_logging

        configure_logging("WARNING", "console")
        if demo is not None:
            from prefetch.web.compose import demo_desk_app

            if not (demo / "pki.passphrase").exists():
                raise fail(f"{demo}: no demo data here; run `prefetch demo --data-dir {demo}`")
            with clean_errors(), demo_desk_app(demo) as (web, stores):
                listen_host, listen_port = host or "127.0.0.1", port or 8080
                typer.echo(f"desk: http://{listen_host}:{listen_port}/ (Ctrl-C stops)")
                _serve(web, listen_host, listen_port)
            return
        from prefetch.composition import open_stores, require_current_schema
        from prefetch.web.compose import desk_app

        settings = settings_or_exit(config)
        with clean_errors():
            stores = open_stores(settings, migrate=False)
            require_current_schema(stores)
            web = desk_app(settings, stores)
        listen_host = host or settings.desk.host
        listen_port = port or settings.desk.port
        typer.echo(f"desk: http://{listen_host}:{listen_port}/ (Ctrl-C stops)")
        _serve(web, listen_host, listen_port)


def _register_users(user: typer.Typer) -> None:
    @user.command("add")
    def add(  # noqa: PLR0917 - typer maps parameters to options
        username: str = typer.Argument(..., help="User name, e.g. j.jansen"),
        name: str = typer.Option(..., "--name", help="Display name, e.g. 'J. Jansen'."),
        role: str = typer.Option(
            "assistant", "--role", help="assistant, polimanager or administrator."
        ),
        mandate: str | None = typer.Option(None, "--mandate", help="Mandate id they work under."),
        sso_only: bool = typer.Option(
            False, "--sso-only", help="No password: signs in only through the SSO proxy."
        ),
        password_file: Path | None = typer.Option(None, "--password-file"),
        config: Path | None = CONFIG_OPTION,
    ) -> None:
        """Add a desk account (the password is asked for, never given as an argument)."""
        from prefetch.store.desk_users import DeskRole

        if role not in {r.value for r in DeskRole}:
            raise fail(f"--role {role}: use assistant, polimanager or administrator")
        users = _users(config)
        password = None if sso_only else _password(password_file, ask=True)
        with _checked():
            created = users.add(
                username,
                display_name=name,
                role=role,
                password=password,
                mandate_id=mandate,
                now=dt.datetime.now(dt.UTC),
            )
        typer.echo(f"added desk user {created.username} ({created.role.value})")

    @user.command("list")
    def list_users(config: Path | None = CONFIG_OPTION) -> None:
        """List the desk accounts."""
        for u in _users(config).all():
            state = "active" if u.active else "disabled"
            login = "password" if u.has_password else "sso only"
            typer.echo(
                f"{u.username}\t{u.role.value}\t{state}\t{login}\t"
                f"mandate={u.mandate_id or '-'}\t{u.display_name}"
            )

    @user.command("passwd")
    def passwd(
        username: str = typer.Argument(...),
        password_file: Path | None = typer.Option(None, "--password-file"),
        config: Path | None = CONFIG_OPTION,
    ) -> None:
        """Set a new password."""
        users = _users(config)
        password = _password(password_file, ask=True)
        if password is None:
            raise typer.Exit(EXIT_USAGE)
        with _checked():
            users.set_password(username, password, now=dt.datetime.now(dt.UTC))
        typer.echo(f"password of {username} changed")

    def _set_disabled(username: str, config: Path | None, *, disabled: bool) -> None:
        users = _users(config)
        with _checked():
            users.set_disabled(username, disabled=disabled, now=dt.datetime.now(dt.UTC))
        typer.echo(f"{username} {'disabled' if disabled else 'enabled'}")

    @user.command("disable")
    def disable(username: str = typer.Argument(...), config: Path | None = CONFIG_OPTION) -> None:
        """Disable an account (its sessions end at their next request)."""
        _set_disabled(username, config, disabled=True)

    @user.command("enable")
    def enable(username: str = typer.Argument(...), config: Path | None = CONFIG_OPTION) -> None:
        """Enable a disabled account."""
        _set_disabled(username, config, disabled=False)
