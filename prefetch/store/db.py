"""Engines, the UTC datetime column type and programmatic Alembic migrations.

- `make_engine(url)`: SQLite gets WAL, foreign keys, a busy timeout and explicit
  transaction control (so that write transactions can start with `BEGIN IMMEDIATE`);
  PostgreSQL goes through psycopg 3 (`postgresql+psycopg://`) with a finite connect
  time-out. Statement parameters are never rendered into exception text or logs
  (`hide_parameters=True`): they may hold a BSN.
- `UtcDateTime`: stores timezone-aware UTC, refuses naive datetimes, always returns aware
  UTC. On SQLite it is stored as a fixed-format UTC text, so `<`/`>` in SQL compare
  correctly; on PostgreSQL it is `timestamptz`.
- `upgrade(url)`: runs the migrations shipped in `prefetch/store/migrations/` to head;
  idempotent; returns the revision the database is at afterwards.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.types import TypeDecorator

from prefetch.errors import ConfigError, InvalidValueError, StopError

SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRES_CONNECT_TIMEOUT_S = 10
#: Connection execution option naming the SQLite BEGIN mode ("DEFERRED" or "IMMEDIATE").
SQLITE_BEGIN_OPTION = "prefetch_sqlite_begin"
_MIGRATIONS = Path(__file__).parent / "migrations"
#: The newest migration shipped with this version (`head_revision()` says the same, through
#: Alembic; a test keeps them equal). Checking a database against it needs no Alembic.
SCHEMA_HEAD = "0009"
_UPGRADE_LOCK_KEY = 0x70726566  # "pref": serialises concurrent upgrades on PostgreSQL


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timestamp that is aware UTC on the way in and on the way out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise InvalidValueError(
                "a UtcDateTime column needs a datetime", type=type(value).__name__
            )
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidValueError("naive datetime refused: store aware UTC")
        utc = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return utc.replace(tzinfo=None)  # stored as "YYYY-MM-DD HH:MM:SS.ffffff" UTC
        return utc

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise InvalidValueError(
                "database returned a non-datetime for a UtcDateTime", type=type(value).__name__
            )
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def _sqlite_engine(url: str) -> Engine:
    from prefetch.security.filemodes import private_dir, private_file, tighten_files

    database = make_url(url).database
    files: tuple[Path, ...] = ()
    if database and database != ":memory:" and not database.startswith("file:"):
        # The data directory and the database hold BSNs: private to this user (0700,
        # 0600; SQLite gives -wal and -shm the mode of the database file).
        path = Path(database)
        private_dir(path.parent)
        try:
            private_file(path)
        except OSError as exc:
            raise ConfigError(
                "cannot create the database file", path=str(path), error=type(exc).__name__
            ) from None
        files = (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
    engine = create_engine(
        url,
        hide_parameters=True,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (it would BEGIN lazily
        # and never IMMEDIATE); the "begin" listener below emits BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()
        tighten_files(*files)  # files made by an older version, or by hand

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN_OPTION, "DEFERRED")
        if mode not in ("DEFERRED", "IMMEDIATE"):
            raise ConfigError("unknown SQLite BEGIN mode", mode=mode)
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def make_engine(url: str) -> Engine:
    """An Engine for `url`: `sqlite:///path` or `postgresql+psycopg://...`.

    For a SQLite file the parent directory is created (mode 0700) when missing and the
    file itself 0600 (an existing directory or file of ours is tightened to that).

    Raises ConfigError for a URL that cannot be parsed or names another backend.
    Connecting happens lazily; an unreachable server shows up at first use as
    `sqlalchemy.exc.OperationalError`.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:  # ArgumentError, ValueError: the URL itself is malformed
        raise ConfigError(
            "database URL cannot be parsed", fix="use sqlite:///path or postgresql+psycopg://..."
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url)
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            raise ConfigError(
                "PostgreSQL URLs must use the psycopg 3 driver",
                fix="write postgresql+psycopg://...",
            )
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in parsed.query:
            connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT_S
        return create_engine(
            url, hide_parameters=True, pool_pre_ping=True, connect_args=connect_args
        )
    raise ConfigError(
        "unsupported database backend",
        backend=backend,
        fix="use sqlite:///path or postgresql+psycopg://...",
    )


def display_url(url: str) -> str:
    """`url` without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is not echoed: it may hold a secret
        return "<unparsable URL>"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def writer(engine: Engine) -> Engine:
    """The engine to use for write transactions: on SQLite they BEGIN IMMEDIATE.

    A deferred SQLite transaction that reads and then writes can fail with "database is
    locked" without waiting; taking the write lock at BEGIN makes writers queue on the
    busy timeout instead.
    """
    if is_sqlite(engine):
        return engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})
    return engine


def alembic_config(connection: Connection | None = None) -> Any:
    """An Alembic `Config` pointing at the packaged migrations (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(engine: Engine, revision: str = "head", *, down: bool = False) -> None:
    """Run the migrations on `engine` up (or down) to `revision`, in one transaction.

    PostgreSQL: a transaction-level advisory lock keeps two processes from migrating at
    the same time. SQLite: foreign keys are off while migrating (a table rebuild must not
    cascade deletes into the rows that point at it) and checked before commit.
    """
    from alembic import command

    sqlite = is_sqlite(engine)
    with engine.connect() as connection:
        # Only outside a transaction does this PRAGMA take effect: use the driver
        # connection directly (SQLAlchemy would begin one first).
        raw: Any = connection.connection.driver_connection
        if sqlite:
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                if not sqlite:
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:k)"), {"k": _UPGRADE_LOCK_KEY}
                    )
                step = command.downgrade if down else command.upgrade
                step(alembic_config(connection), revision)
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise StopError("migration left rows pointing at nothing", revision=revision)
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")


def upgrade(url: str, revision: str = "head") -> str | None:
    """Migrate the database at `url` to `revision` (default head); return where it is.

    Idempotent: at head nothing happens.
    """
    engine = make_engine(url)
    try:
        migrate(engine, revision)
        return current_revision(engine)
    finally:
        engine.dispose()


def head_revision() -> str:
    """The newest revision shipped with this version of the package."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise StopError("no migrations found in the package")
    return head


def schema_revision(engine: Engine) -> str | None:
    """The revision in the database's `alembic_version` table, read with one query and
    without importing Alembic (None: not migrated at all)."""
    from sqlalchemy import inspect

    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
        return None if row is None else str(row[0])


def require_schema_head(engine: Engine) -> None:
    """Refuse (ConfigError, one line) a database not at this version's schema."""
    found = schema_revision(engine)
    if found != SCHEMA_HEAD:
        raise ConfigError(
            f"database schema is not current (at {found or 'nothing'}, this version needs "
            f"{SCHEMA_HEAD})",
            fix="run `prefetch db upgrade`",
        )


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
