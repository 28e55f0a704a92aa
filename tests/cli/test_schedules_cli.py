import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prefetch.cli import app
from prefetch.domain.timing import next_runs
from prefetch.schedule_files import load_schedule

runner = CliRunner()
ROOT = Path(__file__).parents[2]


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
    (when,) = next_runs(load_schedule(ROOT / "schedules" / "cardiologie.toml"), now, 1)
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


GOOD = (ROOT / "schedules" / "cardiologie.toml").read_text(encoding="utf-8")


def line_of(path: Path, needle: str) -> int:
    return next(i for i, t in enumerate(path.read_text().splitlines(), 1) if needle in t)


@pytest.mark.parametrize(
    ("change", "needle", "message"),
    [
        (("days_ahead = 1", "days_ahed = 1"), "days_ahed", "unknown key 'days_ahed' (hint: known"),
        (('run_at = "19:00"', 'cron = "0 19 * *"'), "cron", "cron: cron needs five fields"),
        (('run_at = "19:00"', 'run_at = "02:30"'), "run_at", "runs between 02:00 and 03:00"),
        (('run_at = "19:00"', 'cron = "30 1-3 * * *"'), "cron", "runs between 02:00 and 03:00"),
        (('clinics = ["CARD"]', 'clinics = ["CRAD"]'), "clinics", "unknown clinic 'CRAD'"),
        (
            ('run_at = "19:00"', 'run_at = "19:00"\nrun_window = "20:00-23:00"'),
            "run_window",
            "the run time is outside run_window",
        ),
        (
            ("fresh_hours = 12 ", 'hours = "8-17"\nfresh_hours = 12 '),
            "hours =",
            "hours must look like",
        ),
    ],
)
def test_each_problem_with_file_line_and_hint(
    tmp_path: Path, change: tuple[str, str], needle: str, message: str
) -> None:
    bad = tmp_path / "card.toml"
    bad.write_text(GOOD.replace(*change), encoding="utf-8")
    assert bad.read_text() != GOOD
    settings = tmp_path / "settings.toml"
    settings.write_text('[hospital]\nclinics = ["CARD", "INT"]\n', encoding="utf-8")
    result = runner.invoke(app, ["schedules", "check", str(bad), "--config", str(settings)])
    assert result.exit_code == 2, result.output
    assert f"{bad}:{line_of(bad, needle)}: {message}" in result.output


def test_missing_clinician_and_mandate_and_overlap(tmp_path: Path) -> None:
    bare = tmp_path / "bare.toml"
    bare.write_text('clinics = ["INT"]\nrun_at = "19:00"\n', encoding="utf-8")
    other = tmp_path / "other.toml"
    other.write_text(
        GOOD.replace('id = "cardiologie"', 'id = "hartfalen"').replace(
            '"900000011"', '"900000029"'
        ),
        encoding="utf-8",
    )
    good = tmp_path / "card.toml"
    good.write_text(GOOD, encoding="utf-8")
    result = runner.invoke(app, ["schedules", "check", str(bare), str(good), str(other)])
    assert result.exit_code == 2
    assert f"{bare}: missing mandate (hint: register one" in result.output
    assert f"{bare}: missing [overseer]: the responsible clinician" in result.output
    assert (
        f"{other}:{line_of(other, 'clinics')}: clinic(s) CARD also in {good} under another "
        "responsible clinician" in result.output
    )
    assert f"ok: {good} (cardiologie), next runs " in result.output


def test_valid_schedule_shows_three_next_runs() -> None:
    result = runner.invoke(
        app, ["schedules", "check", str(ROOT / "schedules" / "cardiologie.toml")]
    )
    assert result.exit_code == 0, result.output
    runs = result.output.split("next runs ", 1)[1].split(" (Europe/Amsterdam)")[0].split(", ")
    assert len(runs) == 3 and all(r.endswith("19:00") for r in runs)
