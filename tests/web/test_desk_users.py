"""Desk accounts in the store (both backends) and `prefetch desk user ...`."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from prefetch.cli import app
from prefetch.errors import InvalidValueError
from prefetch.store.desk_users import DeskRole, DeskUserRepository
from prefetch.store.tables import DeskUserRow
from prefetch.web.compose import ensure_demo_account

NOW = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)
PASSWORD = "lang genoeg wachtwoord"


def test_accounts_store_only_an_argon2_hash(migrated_engine: Engine) -> None:
    users = DeskUserRepository(migrated_engine)
    users.add(
        "J.Jansen",
        display_name="J. Jansen",
        role="assistant",
        password=PASSWORD,
        mandate_id="m1",
        now=NOW,
    )
    with migrated_engine.connect() as conn:
        stored = conn.execute(select(DeskUserRow.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    user = users.authenticate("j.jansen", PASSWORD)
    assert user is not None
    assert user.role is DeskRole.ASSISTANT
    assert user.mandate_id == "m1"
    assert users.authenticate("j.jansen", PASSWORD + "x") is None
    assert users.authenticate("nobody", PASSWORD) is None
    users.set_disabled("j.jansen", disabled=True, now=NOW)
    assert users.authenticate("j.jansen", PASSWORD) is None
    with pytest.raises(InvalidValueError, match="exists"):
        users.add(
            "j.jansen",
            display_name="X",
            role="assistant",
            password=PASSWORD,
            mandate_id=None,
            now=NOW,
        )


def test_account_rules(migrated_engine: Engine) -> None:
    users = DeskUserRepository(migrated_engine)
    with pytest.raises(InvalidValueError, match="at least 12"):
        users.add(
            "kort", display_name="K", role="assistant", password="short", mandate_id=None, now=NOW
        )
    with pytest.raises(InvalidValueError, match="user name"):
        users.add(
            "bad name!",
            display_name="K",
            role="assistant",
            password=PASSWORD,
            mandate_id=None,
            now=NOW,
        )
    with pytest.raises(ValueError, match="not a valid DeskRole"):
        users.add(
            "x", display_name="K", role="superuser", password=PASSWORD, mandate_id=None, now=NOW
        )
    sso = users.add(
        "sso", display_name="S", role="polimanager", password=None, mandate_id=None, now=NOW
    )
    assert not sso.has_password
    assert users.authenticate("sso", "") is None
    assert DeskRole.ADMINISTRATOR.at_least(DeskRole.POLIMANAGER)
    assert not DeskRole.ASSISTANT.at_least(DeskRole.POLIMANAGER)


def test_demo_account_password_is_random_and_kept_0600(
    migrated_engine: Engine, tmp_path: Path
) -> None:
    users = DeskUserRepository(migrated_engine)
    name, password, path = ensure_demo_account(users, tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == password
    assert users.authenticate(name, password) is not None
    assert ensure_demo_account(users, tmp_path)[1] == password  # kept on the next demo
    path.unlink()
    again = ensure_demo_account(users, tmp_path)[1]
    assert again != password
    assert users.authenticate(name, password) is None


def test_cli_user_add_list_disable(tmp_path: Path) -> None:
    config = tmp_path / "prefetch.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n')
    runner = CliRunner()
    assert runner.invoke(app, ["db", "upgrade", "-c", str(config)]).exit_code == 0
    result = runner.invoke(
        app,
        [
            "desk",
            "user",
            "add",
            "a.bakker",
            "--name",
            "A. Bakker",
            "--role",
            "polimanager",
            "-c",
            str(config),
        ],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    listed = runner.invoke(app, ["desk", "user", "list", "-c", str(config)])
    assert "a.bakker\tpolimanager\tactive\tpassword" in listed.output
    assert (
        runner.invoke(app, ["desk", "user", "disable", "a.bakker", "-c", str(config)]).exit_code
        == 0
    )
    listed = runner.invoke(app, ["desk", "user", "list", "-c", str(config)])
    assert "a.bakker\tpolimanager\tdisabled" in listed.output
    bad = runner.invoke(
        app, ["desk", "user", "add", "x", "--name", "X", "--role", "root", "-c", str(config)]
    )
    assert bad.exit_code == 2
    assert "use assistant, polimanager or administrator" in bad.output
    short = runner.invoke(
        app, ["desk", "user", "add", "y", "--name", "Y", "-c", str(config)], input="kort\nkort\n"
    )
    assert short.exit_code == 2
    assert "at least 12 characters" in short.output
