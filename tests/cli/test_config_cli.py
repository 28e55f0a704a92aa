import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prefetch.cli import app
from prefetch.cli.config import next_run

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


def test_schedules_check_ok_and_error_with_line(tmp_path: Path) -> None:
    good = ROOT / "schedules" / "cardiologie.toml"
    result = runner.invoke(app, ["schedules", "check", str(good)])
    assert result.exit_code == 0, result.output
    assert "next run" in result.output
    bad = tmp_path / "derm.toml"
    bad.write_text(good.read_text().replace('run_at = "19:00"', 'run_at = "7pm"'))
    result = runner.invoke(app, ["schedules", "check", str(bad)])
    assert result.exit_code == 2
    line = next(i for i, text in enumerate(bad.read_text().splitlines(), 1) if "run_at" in text)
    assert f"{bad}:{line}: run_at must be a local time" in result.output


def test_next_run_across_dst() -> None:
    # Saturday before the autumn change, 20:00 local: the next 19:00 is Sunday 19:00 CET.
    now = dt.datetime(2026, 10, 24, 18, 0, tzinfo=dt.UTC)
    when = next_run(dt.time(19, 0), now)
    assert when.date() == dt.date(2026, 10, 25)
    assert when.utcoffset() == dt.timedelta(hours=1)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("true", "fresh_hours must be a number of hours"),
        ("-1", "fresh_hours must be between 0 and 336"),
        ("400", "fresh_hours must be between 0 and 336"),
    ],
)
def test_schedules_check_refuses_a_fresh_hours_without_meaning(
    tmp_path: Path, value: str, message: str
) -> None:
    good = ROOT / "schedules" / "cardiologie.toml"
    bad = tmp_path / "card.toml"
    text = good.read_text()
    bad.write_text(text.replace("fresh_hours = 12 ", f"fresh_hours = {value} "))
    assert bad.read_text() != text
    result = runner.invoke(app, ["schedules", "check", str(bad)])
    assert result.exit_code == 2
    line = next(i for i, t in enumerate(bad.read_text().splitlines(), 1) if "fresh_hours" in t)
    assert f"{bad}:{line}: {message}" in result.output
