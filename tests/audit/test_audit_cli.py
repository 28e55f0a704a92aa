"""`prefetch audit verify` on the configured database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from audit_helpers import as_owner_without_guards, event
from sqlalchemy import Engine
from typer.testing import CliRunner

from prefetch.cli import app
from prefetch.store.audit import AuditLog
from prefetch.store.db import make_engine, upgrade

runner = CliRunner()


@pytest.fixture
def configured(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The configured database (PREFETCH_DATABASE_URL), migrated, with an empty audit log."""
    monkeypatch.setenv("PREFETCH_DATABASE_URL", database_url)
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _append(engine: Engine, n: int) -> None:
    log = AuditLog(engine)
    for _ in range(n):
        log.append(event())


def test_verify_says_ok_then_names_the_changed_row(configured: Engine) -> None:
    _append(configured, 3)
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "audit chain ok: 3 rows checked" in result.output
    as_owner_without_guards(configured, "UPDATE audit_log SET user_id = 'x' WHERE id = 2")
    result = runner.invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert result.output.strip() == "audit chain BROKEN: row 2 changed"


def test_status_says_the_audit_chain_is_ok_or_broken(configured: Engine) -> None:
    _append(configured, 2)
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "audit chain ok: 2 rows checked" in result.output
    as_owner_without_guards(configured, "DELETE FROM audit_log WHERE id = 1")
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1
    assert "audit chain BROKEN" in result.output


def test_verify_on_a_database_not_migrated_exits_2(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    result = runner.invoke(app, ["audit", "verify"], env={"PREFETCH_DATABASE_URL": url})
    assert result.exit_code == 2
    assert "prefetch db upgrade" in result.output
