"""`prefetch db upgrade`: exit codes and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect
from typer.testing import CliRunner

from prefetch.cli import app
from prefetch.store.db import head_revision, make_engine

runner = CliRunner()


def _url_file(tmp_path: Path, url: str, mode: int = 0o600) -> str:
    path = tmp_path / "database.url"
    path.write_text(url + "\n")
    path.chmod(mode)
    return str(path)


def test_upgrade_with_database_url_file_is_idempotent(database_url: str, tmp_path: Path) -> None:
    url_file = _url_file(tmp_path, database_url)
    for _ in range(2):
        result = runner.invoke(app, ["db", "upgrade", "--database-url-file", url_file])
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
def test_unusable_database_exits_2_with_one_line(url: str, expected: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["db", "upgrade", "--database-url-file", _url_file(tmp_path, url)])
    assert result.exit_code == 2
    assert result.output.startswith("error: ")
    assert expected in result.output
    assert result.output.count("\n") == 1
    assert "Traceback" not in result.output
    assert "s3cret" not in result.output


def test_the_url_never_comes_from_argv_and_an_open_url_file_is_refused(tmp_path: Path) -> None:
    url = "postgresql+psycopg://owner:s3cret@127.0.0.1:1/test"
    result = runner.invoke(app, ["db", "upgrade", "--database-url", url])
    assert result.exit_code == 2  # no such option
    result = runner.invoke(
        app, ["db", "upgrade", "--database-url-file", _url_file(tmp_path, url, 0o644)]
    )
    assert result.exit_code == 2
    assert "chmod 600" in result.output
    assert "s3cret" not in result.output
    assert result.output.count("\n") == 1


def test_settings_read_the_url_from_a_private_file(tmp_path: Path) -> None:
    from prefetch.settings import load_settings

    url = f"sqlite:///{tmp_path / 'x.sqlite'}"
    settings = load_settings(None, env={"PREFETCH_DATABASE_URL_FILE": _url_file(tmp_path, url)})
    assert settings.database_url == url
