"""`prefetch api-token create|revoke|list`: the token is printed once, only its hash is
stored, a revoked token is refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from prefetch.cli import app
from prefetch.store.api_tokens import ApiTokens
from prefetch.store.db import make_engine

runner = CliRunner()


@pytest.fixture
def db_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    monkeypatch.setenv("PREFETCH_DATABASE_URL", url)
    return url


def test_create_list_revoke(db_url: str) -> None:
    created = runner.invoke(app, ["api-token", "create", "epd-productie"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    assert token.startswith("pft_") and len(token) > 40
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM api_tokens")).mappings().all()
        assert len(rows) == 1
        assert rows[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
        assert token not in {str(v) for v in rows[0].values()}
        assert ApiTokens(engine).holder(token) == "epd-productie"

        listed = runner.invoke(app, ["api-token", "list"])
        assert listed.exit_code == 0
        assert "epd-productie" in listed.stdout and "active" in listed.stdout
        assert token not in listed.output

        again = runner.invoke(app, ["api-token", "create", "epd-productie"])
        assert again.exit_code == 2
        assert again.stderr.startswith("error: a token named 'epd-productie' exists")

        revoked = runner.invoke(app, ["api-token", "revoke", "epd-productie"])
        assert revoked.exit_code == 0
        assert ApiTokens(engine).holder(token) is None
        assert "revoked" in runner.invoke(app, ["api-token", "list"]).stdout
        twice = runner.invoke(app, ["api-token", "revoke", "epd-productie"])
        assert twice.exit_code == 2
        assert "no active token" in twice.stderr
    finally:
        engine.dispose()


def test_unknown_or_malformed_tokens_have_no_holder(db_url: str) -> None:
    assert runner.invoke(app, ["api-token", "create", "a"]).exit_code == 0
    engine = make_engine(db_url)
    try:
        tokens = ApiTokens(engine)
        assert tokens.holder("") is None
        assert tokens.holder("pft_" + "A" * 43) is None
        assert tokens.holder("not-a-token") is None
    finally:
        engine.dispose()
