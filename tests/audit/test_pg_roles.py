"""Least privilege on real PostgreSQL: the owner migrates, the service role may insert and
read audit rows but not update, delete, truncate, alter (disable triggers) or drop them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from audit_helpers import event
from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from prefetch.cli import app
from prefetch.store.audit import AuditLog
from prefetch.store.audit_verify import verify_chain
from prefetch.store.db import make_engine

pytestmark = pytest.mark.postgres
runner = CliRunner()
ADMIN_URL = os.environ.get(
    "PREFETCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@dataclass(frozen=True)
class Roles:
    owner: str
    service: str
    schema: str

    def url(self, role: str) -> str:
        url = make_url(ADMIN_URL).set(username=role)
        url = url.update_query_dict({"options": f"-csearch_path={self.schema}"})
        return url.render_as_string(hide_password=False)


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    dsn = make_url(ADMIN_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        return psycopg.connect(dsn, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        if os.environ.get("PREFETCH_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL unreachable: {type(exc).__name__}")
        pytest.skip(f"PostgreSQL unreachable: {type(exc).__name__}")


@pytest.fixture
def roles(tmp_path: Path) -> Iterator[Roles]:
    tag = uuid.uuid4().hex[:10]
    made = Roles(f"pf_owner_{tag}", f"pf_service_{tag}", f"prefetch_roles_{tag}")
    admin = _admin()
    url_file = tmp_path / "admin.url"
    url_file.write_text(ADMIN_URL + "\n")
    url_file.chmod(0o600)
    try:
        result = runner.invoke(
            app,
            [
                "db", "create-roles", "--owner", made.owner, "--service", made.service,
                "--schema", made.schema, "--database-url-file", str(url_file),
            ],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert f"created role {made.service}" in result.output
        yield made
    finally:
        admin.execute("SET lock_timeout = '10s'")
        admin.execute(f'DROP SCHEMA IF EXISTS "{made.schema}" CASCADE')
        for role in (made.owner, made.service):
            exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if exists:
                admin.execute(f'DROP OWNED BY "{role}"')
                admin.execute(f'DROP ROLE "{role}"')
        admin.close()


@pytest.fixture
def service_engine(roles: Roles, tmp_path: Path) -> Iterator[Engine]:
    owner_file = tmp_path / "owner.url"
    owner_file.write_text(roles.url(roles.owner) + "\n")
    owner_file.chmod(0o600)
    result = runner.invoke(
        app, ["db", "upgrade", "--database-url-file", str(owner_file), "--grant-to", roles.service]
    )
    assert result.exit_code == 0, result.output
    assert f"{roles.service} may use schema {roles.schema}" in result.output
    engine = make_engine(roles.url(roles.service))
    try:
        yield engine
    finally:
        engine.dispose()


FORBIDDEN = (
    "UPDATE audit_log SET outcome = 'changed'",
    "DELETE FROM audit_log",
    "TRUNCATE audit_log",
    "ALTER TABLE audit_log DISABLE TRIGGER USER",
    "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete",
    "DROP TABLE audit_log",
    "DROP TRIGGER audit_log_no_update_delete ON audit_log",
    "UPDATE audit_checkpoints SET head_hash = NULL",
    "DELETE FROM audit_checkpoints",
    "ALTER TABLE audit_log ADD COLUMN note text",
)


def test_the_service_role_cannot_change_the_audit_log(service_engine: Engine) -> None:
    log = AuditLog(service_engine)
    log.append(event())  # insert: allowed
    for statement in FORBIDDEN:
        with pytest.raises(DBAPIError) as info, service_engine.begin() as connection:
            connection.execute(text(statement))
        reason = str(info.value.orig)
        assert getattr(info.value.orig, "sqlstate", None) == "42501", statement
        assert "permission denied" in reason or "must be owner" in reason, statement
    assert len(log.recent(5)) == 1  # read: allowed
    assert verify_chain(service_engine).ok


def test_the_service_role_runs_the_working_tables(service_engine: Engine) -> None:
    import datetime as dt

    from prefetch.store.records import NewItem
    from prefetch.store.runs import RunRepository

    runs = RunRepository(service_engine)
    at = dt.datetime(2026, 11, 20, 18, 0, tzinfo=dt.UTC)
    assert runs.create_run(
        "r1", "card", at.date(), "manual", at, [NewItem("p1", "999990019", ("C",))]
    )
    assert [i.patient_local_id for i in runs.items("r1")] == ["p1"]
    with pytest.raises(DBAPIError) as info, service_engine.begin() as connection:
        connection.execute(text("CREATE TABLE intruder (x int)"))  # the schema is the owner's
    assert getattr(info.value.orig, "sqlstate", None) == "42501"


def test_create_roles_refuses_sqlite_and_bad_names(tmp_path: Path) -> None:
    url_file = tmp_path / "db.url"
    url_file.write_text(f"sqlite:///{tmp_path / 'x.sqlite'}\n")
    url_file.chmod(0o600)
    result = runner.invoke(app, ["db", "create-roles", "--database-url-file", str(url_file)])
    assert result.exit_code == 2
    assert "PostgreSQL only" in result.output
    url_file.write_text(ADMIN_URL + "\n")
    result = runner.invoke(
        app, ["db", "create-roles", "--owner", 'x"; DROP', "--database-url-file", str(url_file)]
    )
    assert result.exit_code == 2
    assert "invalid owner role name" in result.output
