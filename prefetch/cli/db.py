"""`prefetch db upgrade`: migrate the database to the newest schema.

Exit codes: 0 migrated (or already current); 2 bad URL, bad settings or unreachable
database (one line on stderr, no traceback).
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer

from prefetch.cli.common import CONFIG_OPTION, EXIT_USAGE

DATABASE_URL_OPTION = typer.Option(
    None,
    "--database-url",
    help="sqlite:///path or postgresql+psycopg://user@host/db; "
    "default: the database from the settings.",
)


def register(app: typer.Typer) -> None:
    db_app = typer.Typer(help="Database: schema migrations.", no_args_is_help=True)
    app.add_typer(db_app, name="db")

    @db_app.command("upgrade")
    def upgrade_command(
        database_url: str | None = DATABASE_URL_OPTION,
        config: Path | None = CONFIG_OPTION,
    ) -> None:
        """Run the schema migrations up to the newest revision (idempotent)."""
        from sqlalchemy.exc import DBAPIError, SQLAlchemyError

        from prefetch.errors import PrefetchError
        from prefetch.store.db import display_url, head_revision, upgrade

        if database_url is None:
            from prefetch.cli.common import settings_or_exit

            database_url = settings_or_exit(config).database_url
        shown = display_url(database_url)
        try:
            revision = upgrade(database_url)
        except PrefetchError as exc:
            _fail(f"{exc} ({shown})")
        except DBAPIError as exc:
            # Schema migrations touch no patient data: the driver's first line is safe.
            reason = str(exc.orig).strip().splitlines()[0][:200] if exc.orig else type(exc).__name__
            _fail(f"cannot use the database at {shown}: {reason}; is it running and reachable?")
        except SQLAlchemyError as exc:
            _fail(f"cannot use the database at {shown}: {type(exc).__name__}")
        where = "head" if revision == head_revision() else "NOT the newest"
        typer.echo(f"ok: database {shown} is at revision {revision} ({where})")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)
