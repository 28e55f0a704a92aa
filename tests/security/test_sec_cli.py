"""`prefetch pki dev` and `prefetch mandate register|check` through the real CLI app."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from sec_helpers import unencrypted_key_files
from structlog.testing import capture_logs
from typer.testing import CliRunner, Result

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
    short.chmod(0o600)  # else refused for its mode before its length is read
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
                "--pki",
                str(pki),
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
        assert refused.exit_code == 2, refused.output
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
                "--pki",
                str(pki),
                "-c",
                str(cfg),
            ],
            env={"PREFETCH_PKI_PASSPHRASE": SECRET},
        )
        assert server.exit_code == 2 and "personal UZI pass" in server.output
    logged = " ".join(str(e) for e in events) + caplog.text
    assert "PRIVATE KEY" not in logged and SECRET not in logged
    assert unencrypted_key_files(base) == []


ENV = {"PREFETCH_PKI_PASSPHRASE": SECRET}


def _register(cfg: Path, pki: Path, *extra: str, p12: str = "specialist.p12") -> Result:
    return runner.invoke(
        app,
        [
            "mandate",
            "register",
            "--clinician-p12",
            str(pki / p12),
            "--name",
            "Dr. X",
            "--pki",
            str(pki),
            "-c",
            str(cfg),
            *extra,
        ],
        env=ENV,
    )


def _one_error_line(result: Result) -> str:
    """Exit 2, no traceback, and one `error:` (or `refused:`) line: return it."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(("error:", "refused:")), result.output
    return lines[0]


def test_mandate_register_refuses_an_assistant_pass(cli_pki: tuple[Path, Path, str]) -> None:
    base, cfg, _ = cli_pki
    line = _one_error_line(_register(cfg, base / "pki", "--schedule", "s", p12="assistant.p12"))
    assert "card type Z" in line


def test_mandate_register_validates_the_pass_against_the_trust(
    cli_pki: tuple[Path, Path, str], tmp_path: Path
) -> None:
    """A Z pass from another CA (not in the trust store) is refused before it signs."""
    base, cfg, _ = cli_pki
    other = tmp_path / "other"
    made = runner.invoke(
        app, ["pki", "dev", str(other), "--key-size", "2048", "-c", str(cfg)], env=ENV
    )
    assert made.exit_code == 0, made.output
    result = runner.invoke(
        app,
        [
            "mandate",
            "register",
            "--clinician-p12",
            str(other / "specialist.p12"),
            "--name",
            "Dr. X",
            "--schedule",
            "s",
            "--pki",
            str(base / "pki"),
            "-c",
            str(cfg),
        ],
        env=ENV,
    )
    line = _one_error_line(result)
    assert "not valid for signing a mandate" in line and "certificate=untrusted" in line


def test_mandate_register_needs_trust(cli_pki: tuple[Path, Path, str]) -> None:
    base, cfg, _ = cli_pki
    result = runner.invoke(
        app,
        [
            "mandate",
            "register",
            "--clinician-p12",
            str(base / "pki" / "specialist.p12"),
            "--name",
            "Dr. X",
            "--schedule",
            "s",
            "-c",
            str(cfg),
        ],
        env=ENV,
    )
    assert "no UZI trust anchors configured" in _one_error_line(result)


@pytest.mark.parametrize("value", ["", "  "])
def test_mandate_register_refuses_an_empty_schedule(
    cli_pki: tuple[Path, Path, str], value: str
) -> None:
    base, cfg, _ = cli_pki
    line = _one_error_line(_register(cfg, base / "pki", "--schedule", value))
    assert "--schedule" in line


def test_mandate_register_does_not_overwrite_an_id(cli_pki: tuple[Path, Path, str]) -> None:
    base, cfg, _ = cli_pki
    first = _register(cfg, base / "pki", "--schedule", "a", "--id", "m-once")
    assert first.exit_code == 0, first.output
    again = _register(cfg, base / "pki", "--schedule", "b", "--id", "m-once")
    assert "exists already" in _one_error_line(again)
    check = runner.invoke(
        app, ["mandate", "check", "--schedule", "a", "--pki", str(base / "pki"), "-c", str(cfg)]
    )
    assert check.exit_code == 0 and "m-once" in check.output, check.output


@pytest.mark.parametrize("name", ["missing.p12", "manifest.json", ""])
def test_mandate_register_with_a_missing_or_unreadable_p12(
    cli_pki: tuple[Path, Path, str], name: str
) -> None:
    base, cfg, _ = cli_pki
    line = _one_error_line(_register(cfg, base / "pki", "--schedule", "s", p12=name))
    assert "PKCS#12" in line


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        ("{}", "manifest.json incomplete"),
        ("[]", "manifest.json incomplete"),
        ("{", "missing or bad"),
    ],
)
def test_mandate_check_with_a_bad_manifest(
    cli_pki: tuple[Path, Path, str], tmp_path: Path, manifest: str, expected: str
) -> None:
    _base, cfg, _ = cli_pki
    (tmp_path / "manifest.json").write_text(manifest)
    result = runner.invoke(
        app, ["mandate", "check", "--schedule", "s", "--pki", str(tmp_path), "-c", str(cfg)]
    )
    assert expected in _one_error_line(result)


def _pki_dev(target: Path, cfg: Path, *extra: str) -> Result:
    return runner.invoke(
        app, ["pki", "dev", str(target), "--key-size", "2048", "-c", str(cfg), *extra], env=ENV
    )


def test_pki_dev_on_a_file_or_an_unwritable_place(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    afile = tmp_path / "afile"
    afile.write_text("keep me\n")
    assert "cannot create the dev PKI directory" in _one_error_line(_pki_dev(afile, cfg))
    assert afile.read_text() == "keep me\n"
    line = _one_error_line(_pki_dev(Path("/proc/prefetch-no-such/xx"), cfg))
    assert "cannot create the dev PKI directory" in line
    line = _one_error_line(_pki_dev(afile / "sub", cfg))
    assert "cannot create" in line


def test_pki_dev_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    assert "not empty" in _one_error_line(_pki_dev(full, cfg))
    assert sorted(p.name for p in full.iterdir()) == ["x"]


@pytest.mark.parametrize(
    "option",
    [
        ["--hospital-ura", "abc"],
        ["--hospital-ura", "1234567"],
        ["--system-uzi", "12"],
        ["--system-uzi", "90000001a"],
    ],
)
def test_pki_dev_validates_values_before_writing(tmp_path: Path, option: list[str]) -> None:
    cfg = _config(tmp_path)
    target = tmp_path / "new" / "pki"
    line = _one_error_line(_pki_dev(target, cfg, *option))
    assert "URA must be 8 digits" in line
    assert not (tmp_path / "new").exists()


def test_pki_dev_removes_a_half_written_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the first files were written leaves nothing behind."""
    from prefetch.security import certbuild
    from prefetch.security.pki import create_dev_pki

    def failing(*args: object, **kwargs: object) -> object:
        raise OSError("disk full")

    monkeypatch.setattr(certbuild, "make_crl", failing)  # the CRLs come after the keys
    with pytest.raises(OSError, match="disk full"):
        create_dev_pki(tmp_path / "half", passphrase=SECRET.encode(), key_size=2048)
    assert not (tmp_path / "half").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(OSError, match="disk full"):
        create_dev_pki(empty, passphrase=SECRET.encode(), key_size=2048)
    assert empty.is_dir() and list(empty.iterdir()) == []
