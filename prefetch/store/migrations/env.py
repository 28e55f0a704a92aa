"""Alembic environment for the packaged migrations.

Run through `prefetch.store.db.upgrade(url)`, which passes an open connection in
`config.attributes["connection"]`. Without one (plain `alembic` use), the URL comes from
the `sqlalchemy.url` main option and the engine from `make_engine`.

Tables, the version table and the audit triggers are created unqualified, so they land
in the first schema of the connection's `search_path` (how the tests isolate themselves).
"""

from __future__ import annotations

from alembic import context

from prefetch.store.db import make_engine
from prefetch.store.tables import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url or pass a connection")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported")
run_migrations_online()
