"""`prefetch db upgrade`: exit codes and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect
from typer.testing import CliRunner

from prefetch.cli import app
from prefetch.store.db import head_revision, make_engine

runner = CliRunner()


def test_upgrade_with_database_url_is_idempotent(database_url: str) -> None:
    for _ in range(2):
        result = runner.invoke(app, ["db", "upgrade", "--database-url", database_url])
        assert result.exit_code == 0, result.output
        assert result.output.count("\n") == 1
        assert f"revision {head_revision()} (head)" in result.output
    engine = make_engine(database_url)
    try:
        assert "dispenses" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_upgrade_uses_the_settings_without_an_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PREFETCH_DATA_DIR", raising=False)
    monkeypatch.delenv("PREFETCH_DATABASE_URL", raising=False)
    config = tmp_path / "prefetch.toml"
    data = tmp_path / "data"
    config.write_text(f'data_dir = "{data}"\n')
    result = runner.invoke(app, ["db", "upgrade", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert (data / "prefetch.sqlite").exists()
    assert str(data) in result.output


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql+psycopg://postgres:s3cret@127.0.0.1:1/test?connect_timeout=2",
            "cannot use the database",
        ),
        ("not-a-url", "cannot be parsed"),
        ("mysql://u@h/db", "unsupported database backend"),
    ],
)
def test_unusable_database_exits_2_with_one_line(url: str, expected: str) -> None:
    result = runner.invoke(app, ["db", "upgrade", "--database-url", url])
    assert result.exit_code == 2
    assert result.output.startswith("error: ")
    assert expected in result.output
    assert result.output.count("\n") == 1
    assert "Traceback" not in result.output
    assert "s3cret" not in result.output
