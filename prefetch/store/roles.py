"""Least privilege on PostgreSQL: an owner role that migrates, a service role that runs.

- The **owner** owns the schema and every table; `prefetch db upgrade` runs as the owner.
- The **service** (the daemon, `prefetch run`, the desk) may read and write the working
  tables, but on `audit_log` and `audit_checkpoints` it may only INSERT and SELECT: no
  UPDATE, DELETE or TRUNCATE privilege, and as it owns nothing it can neither ALTER (so no
  DISABLE TRIGGER) nor DROP them. The append-only triggers stay as a second line.

`create_roles` (run once by a database administrator) makes both roles and the schema;
`grant_service` (run by the owner after each upgrade: `prefetch db upgrade --grant-to`)
gives the service its privileges on the tables as they are now.
"""

from __future__ import annotations

import re

from sqlalchemy import Connection, Engine, text

from prefetch.errors import ConfigError

#: Tables the service may only append to and read.
APPEND_ONLY_TABLES = ("audit_log", "audit_checkpoints")
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _ident(name: str, what: str) -> str:
    """A role or schema name, checked (it is spliced into DDL, which takes no parameters)."""
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"invalid {what} name", name=name, fix="use lower-case letters, digits and _"
        )
    return f'"{name}"'


def _require_postgres(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        raise ConfigError(
            "database roles exist on PostgreSQL only",
            fix="SQLite has one user: the file modes (0600) are its access control",
        )


def create_roles(engine: Engine, *, owner: str, service: str, schema: str) -> list[str]:
    """Create the owner and service roles (LOGIN, no password: set one with ALTER ROLE or
    use certificate / peer authentication) and `schema` owned by the owner. Idempotent.
    Returns what was done, one line each."""
    _require_postgres(engine)
    o, s, sc = (
        _ident(owner, "owner role"),
        _ident(service, "service role"),
        _ident(schema, "schema"),
    )
    if owner == service:
        raise ConfigError("owner and service must be different roles", role=owner)
    done: list[str] = []
    with engine.begin() as connection:
        for name, quoted in ((owner, o), (service, s)):
            exists = connection.execute(
                text("SELECT 1 FROM pg_roles WHERE rolname = :n"), {"n": name}
            ).first()
            if exists is None:
                connection.execute(text(f"CREATE ROLE {quoted} LOGIN"))
                done.append(f"created role {name}")
        database = connection.execute(text("SELECT current_database()")).scalar_one()
        db = _ident(str(database), "database") if _NAME.fullmatch(str(database)) else None
        if db is not None:
            connection.execute(text(f"GRANT CONNECT ON DATABASE {db} TO {o}, {s}"))
        connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {sc} AUTHORIZATION {o}"))
        connection.execute(text(f"ALTER SCHEMA {sc} OWNER TO {o}"))
        connection.execute(text(f"REVOKE CREATE ON SCHEMA {sc} FROM PUBLIC"))
        connection.execute(text(f"GRANT USAGE ON SCHEMA {sc} TO {s}"))
        done.append(f"schema {schema} owned by {owner}; {service} may use it")
    return done


def grant_service(connection: Connection, *, service: str, schema: str) -> None:
    """Give `service` its privileges on the tables of `schema` as they are now (run as the
    owner, in the migration's transaction or after it)."""
    s, sc = _ident(service, "service role"), _ident(schema, "schema")
    connection.execute(text(f"GRANT USAGE ON SCHEMA {sc} TO {s}"))
    connection.execute(text(f"REVOKE ALL ON ALL TABLES IN SCHEMA {sc} FROM {s}"))
    connection.execute(
        text(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {sc} TO {s}")
    )
    for table in APPEND_ONLY_TABLES:
        connection.execute(text(f"REVOKE ALL ON {sc}.{table} FROM {s}"))
        connection.execute(text(f"GRANT SELECT, INSERT ON {sc}.{table} TO {s}"))
    connection.execute(text(f"REVOKE ALL ON {sc}.alembic_version FROM {s}"))
    connection.execute(text(f"GRANT SELECT ON {sc}.alembic_version TO {s}"))
    connection.execute(text(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {sc} TO {s}"))


def grant_service_role(engine: Engine, service: str) -> str:
    """`grant_service` on the engine's current schema; returns the schema's name."""
    _require_postgres(engine)
    with engine.begin() as connection:
        schema = str(connection.execute(text("SELECT current_schema()")).scalar_one())
        grant_service(connection, service=service, schema=schema)
    return schema
