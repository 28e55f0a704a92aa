"""The daemon's runs take the clinic day from the appointment book (what `prefetch intake`
loaded), through the daemon's own wiring: with nothing in the book for the day no run is
started (an empty run would count as done), and the sweep starts it once the book is fed;
a CSV lying where the daemon once read its exports (`<data_dir>/exports/<day>.csv`) is not
read."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from daemon_world import make_world

from prefetch.daemon.runner import NoAppointmentsError
from prefetch.daemon.wiring import build_daemon
from prefetch.settings import load_settings


def _bsns(csv_lines: list[str]) -> set[str]:
    header = csv_lines[0].split(";")
    column = header.index("bsn")
    return {line.split(";")[column] for line in csv_lines[1:]}


def test_the_daemon_runs_what_the_book_holds(
    tmp_path: Path, database_url: str, dev_pki_dir: Path
) -> None:
    world = make_world(
        tmp_path,
        database_url,
        patients=6,
        rate=20,
        in_flight=2,
        pki_from=dev_pki_dir,
        load=False,
    )
    lines = world.export.read_text(encoding="utf-8").splitlines()
    assert lines[0].split(";").count("bsn") == 1, lines[0]
    booked = tmp_path / "booked.csv"  # the book gets 4 of the 6 patients
    booked.write_text("\n".join(lines[:5]) + "\n", encoding="utf-8")
    old_place = tmp_path / "exports"  # the old `[daemon] exports_dir` default: all 6
    old_place.mkdir()
    shutil.copy(world.export, old_place / f"{world.clinic_day.isoformat()}.csv")
    app = build_daemon(load_settings(world.config))
    try:
        daemon = app.daemon
        assert daemon.poll_leadership()
        schedule = daemon.book.get("demo")
        assert schedule is not None
        with pytest.raises(NoAppointmentsError, match="no appointments in the book"):
            daemon.runner.run_day(schedule, world.clinic_day)
        assert daemon.sweep() == []  # the sweep asks the book again later
        assert app.stores.runs.find_run("demo", world.clinic_day, "scheduled") is None
        world.load(booked)  # prefetch intake load
        assert daemon.sweep() == [("demo", world.clinic_day)]
        run = app.stores.runs.find_run("demo", world.clinic_day, "scheduled")
        assert run is not None
        summary = app.stores.runs.summary(run.id)
    finally:
        app.stop()
        world.sim.stop()
    assert summary.total == 4 and summary.by_state.get("done") == 4, summary
    asked = {q["bsn_sha256"] for q in world.sim.query_log()}
    assert asked == {hashlib.sha256(b.encode()).hexdigest() for b in _bsns(lines[:5])}
