"""`prefetch pki dev` and `prefetch mandate register|check` through the real CLI app."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from sec_helpers import unencrypted_key_files
from structlog.testing import capture_logs
from typer.testing import CliRunner

from prefetch.cli import app

runner = CliRunner()
SECRET = "cli test passphrase 1234"


def _config(tmp_path: Path) -> Path:
    cfg = tmp_path / "prefetch.toml"
    cfg.write_text(
        f'data_dir = "{tmp_path / "data"}"\n'
        '[hospital]\nura = "12345678"\nname = "Testziekenhuis"\n'
        'application_id = "4242"\nsystem_uzi = "900000012"\n'
    )
    return cfg


@pytest.fixture(scope="module")
def cli_pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    base = tmp_path_factory.mktemp("cli")
    cfg = _config(base)
    result = runner.invoke(
        app,
        ["pki", "dev", str(base / "pki"), "--key-size", "2048", "-c", str(cfg)],
        env={"PREFETCH_PKI_PASSPHRASE": SECRET},
    )
    assert result.exit_code == 0, result.output
    return base, cfg, result.output


def test_pki_dev_writes_protected_pki(cli_pki: tuple[Path, Path, str]) -> None:
    base, _cfg, output = cli_pki
    assert "hospital" in output and "UZI 900000012 card S" in output
    assert unencrypted_key_files(base) == []
    assert SECRET not in output


def test_pki_dev_needs_a_passphrase_from_env_or_file(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    result = runner.invoke(
        app,
        ["pki", "dev", str(tmp_path / "p"), "-c", str(cfg)],
        env={"PREFETCH_PKI_PASSPHRASE": ""},
    )
    assert result.exit_code == 2
    assert "PREFETCH_PKI_PASSPHRASE" in result.output
    short = tmp_path / "short"
    short.write_text("tiny\n")
    result = runner.invoke(
        app, ["pki", "dev", str(tmp_path / "p"), "-c", str(cfg), "--passphrase-file", str(short)]
    )
    assert result.exit_code == 2 and "too short" in result.output
    result = runner.invoke(app, ["pki", "dev", str(tmp_path / "p"), "--passphrase", "x"])
    assert result.exit_code == 2  # there is no such option


def test_mandate_register_then_check(
    cli_pki: tuple[Path, Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    base, cfg, _ = cli_pki
    pki = base / "pki"
    caplog.set_level(logging.DEBUG)
    with capture_logs() as events:
        result = runner.invoke(
            app,
            [
                "mandate",
                "register",
                "--clinician-p12",
                str(pki / "specialist.p12"),
                "--schedule",
                "cardiologie",
                "--name",
                "Dr. A. Specialist",
                "--days",
                "30",
                "-c",
                str(cfg),
            ],
            env={"PREFETCH_PKI_PASSPHRASE": SECRET},
        )
        assert result.exit_code == 0, result.output
        assert re.search(
            r"mandate mandate-\w+ registered: UZI 123456782 \(01\.015\) "
            r"mandates 900000012 for cardiologie",
            result.output,
        )
        ok = runner.invoke(
            app,
            ["mandate", "check", "--schedule", "cardiologie", "--pki", str(pki), "-c", str(cfg)],
        )
        assert ok.exit_code == 0, ok.output
        refused = runner.invoke(
            app,
            ["mandate", "check", "--schedule", "longziekten", "--pki", str(pki), "-c", str(cfg)],
        )
        assert refused.exit_code == 1, refused.output
        assert "no mandate covers this schedule" in refused.output
        server = runner.invoke(
            app,
            [
                "mandate",
                "register",
                "--clinician-p12",
                str(pki / "hospital.p12"),
                "--schedule",
                "x",
                "--name",
                "x",
                "-c",
                str(cfg),
            ],
            env={"PREFETCH_PKI_PASSPHRASE": SECRET},
        )
        assert server.exit_code == 2 and "personal UZI pass" in server.output
    logged = " ".join(str(e) for e in events) + caplog.text
    assert "PRIVATE KEY" not in logged and SECRET not in logged
    assert unencrypted_key_files(base) == []
