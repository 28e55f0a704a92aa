from pathlib import Path

from typer.testing import CliRunner

from prefetch.cli import app

runner = CliRunner()
ROOT = Path(__file__).parents[2]


def test_config_check_ok_and_problems(tmp_path: Path) -> None:
    # The example loads, but is not ready to send: placeholders and missing files.
    result = runner.invoke(
        app, ["config", "check", "--config", str(ROOT / "config" / "prefetch.example.toml")]
    )
    assert result.exit_code == 2
    for key in ("hospital.ura", "lsp.client_p12", "security.trust_anchors"):
        assert key in result.output
    p12, ca = tmp_path / "h.p12", tmp_path / "ca.pem"
    p12.write_bytes(b"x")
    ca.write_bytes(b"x")
    ready = tmp_path / "ready.toml"
    ready.write_text(
        '[hospital]\nura = "12345678"\napplication_id = "10008890"\n'
        'system_uzi = "900000012"\n'
        f'[lsp]\nclient_p12 = "{p12}"\nca_file = "{ca}"\n'
        f'[security]\ntrust_anchors = ["{ca}"]\n'
    )
    result = runner.invoke(app, ["config", "check", "--config", str(ready)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok:")
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[throttle]\nmax_in_flight = 0\n[lsp]\nread_timeout = 0\nurl = "http://lsp.example/"\n'
        '[hospital]\nura = 12345678\nname = "Z\\u0001H"\n[run]\nbackoff_base_seconds = -5\n'
    )
    result = runner.invoke(app, ["config", "check", "--config", str(bad)])
    assert result.exit_code == 2
    for key in (
        "throttle.max_in_flight",
        "lsp.read_timeout",
        "lsp.url",
        "hospital.ura",
        "hospital.name",
        "run.backoff_base_seconds",
    ):
        assert key in result.output, key
    assert "Traceback" not in result.output


def test_config_check_unreadable_files(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "check", "--config", str(tmp_path)])
    assert result.exit_code == 2
    assert "cannot read" in result.output
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'[hospital]\nname = "Sint Jans Gasth\xf9is"\n')
    result = runner.invoke(app, ["config", "check", "--config", str(latin)])
    assert result.exit_code == 2
    assert "not UTF-8" in result.output
