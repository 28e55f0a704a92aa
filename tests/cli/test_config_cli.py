import datetime as dt
from pathlib import Path

from typer.testing import CliRunner

from prefetch.cli import app
from prefetch.cli.config import next_run

runner = CliRunner()
ROOT = Path(__file__).parents[2]


def test_config_check_ok_and_problems(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["config", "check", "--config", str(ROOT / "config" / "prefetch.example.toml")]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok:")
    bad = tmp_path / "bad.toml"
    bad.write_text("[throttle]\nmax_in_flight = 0\n[lsp]\nread_timeout = 0\n")
    result = runner.invoke(app, ["config", "check", "--config", str(bad)])
    assert result.exit_code == 2
    assert "throttle.max_in_flight" in result.output
    assert "lsp.read_timeout" in result.output
    assert "Traceback" not in result.output


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
