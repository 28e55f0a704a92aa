"""`prefetch db upgrade` and `prefetch db create-roles`.

Database URLs with a password never come from the command line (argv is visible to every
user through `ps`): `--database-url-file` names a 0600 file whose first line is the URL;
otherwise the settings' `[database]` (`PREFETCH_DATABASE_URL`, `url_file`) are used.

Exit codes: 0 done (or already current); 2 bad URL, bad settings or unreachable
database (one line on stderr, no traceback).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import typer

from prefetch.cli.common import CONFIG_OPTION, EXIT_USAGE

DATABASE_URL_FILE_OPTION = typer.Option(
    None,
    "--database-url-file",
    help="A file (mode 0600) whose first line is the database URL, e.g. "
    "postgresql+psycopg://owner:secret@host/db; default: the database from the settings.",
)


def database_url(url_file: Path | None, config: Path | None) -> str:
    """The URL from `--database-url-file`, else from the settings; exits 2 on a problem."""
    from prefetch.cli.common import settings_or_exit
    from prefetch.errors import ConfigError
    from prefetch.security.filemodes import read_secret_line

    try:
        if url_file is not None:
            return read_secret_line(url_file, "database URL file")
        return settings_or_exit(config).database_url
    except ConfigError as exc:
        _fail(str(exc))


@contextmanager
def database_errors(shown: str) -> Iterator[None]:
    """One line on stderr and exit 2 for a database that cannot be used."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from prefetch.errors import PrefetchError

    try:
        yield
    except PrefetchError as exc:
        _fail(f"{exc} ({shown})")
    except DBAPIError as exc:
        # Schema and role statements touch no patient data: the driver's first line is safe.
        reason = str(exc.orig).strip().splitlines()[0][:200] if exc.orig else type(exc).__name__
        _fail(f"cannot use the database at {shown}: {reason}; is it running and reachable?")
    except SQLAlchemyError as exc:
        _fail(f"cannot use the database at {shown}: {type(exc).__name__}")


def register(app: typer.Typer) -> None:
    db_app = typer.Typer(help="Database: schema migrations and roles.", no_args_is_help=True)
    app.add_typer(db_app, name="db")

    @db_app.command("upgrade")
    def upgrade_command(
        database_url_file: Path | None = DATABASE_URL_FILE_OPTION,
        config: Path | None = CONFIG_OPTION,
    ) -> None:
        """Run the schema migrations up to the newest revision (idempotent). On PostgreSQL
        run it as the owner role (see deploy/postgresql-roles.md)."""
        from prefetch.store.db import display_url, head_revision, upgrade

        url = database_url(database_url_file, config)
        shown = display_url(url)
        with database_errors(shown):
            revision = upgrade(url)
        where = "head" if revision == head_revision() else "NOT the newest"
        typer.echo(f"ok: database {shown} is at revision {revision} ({where})")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)
