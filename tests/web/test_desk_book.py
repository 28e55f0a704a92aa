"""The desk's worklist reads the clinic day from the appointment book, as the runs do: a
booking loaded with `prefetch intake load` gives the patient's time; a cancellation
loaded later takes that time away (another booked appointment's time shows instead)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from desk_client import DemoDesk, sign_in
from desk_helpers import DAY
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from prefetch.cli import app as cli
from prefetch.composition import open_stores
from prefetch.domain.localtime import AMSTERDAM
from prefetch.domain.people import AppointmentStatus
from prefetch.settings import load_settings
from prefetch.web.compose import desk_app

HEADER = "appointment_id,patient_id,clinic,start,appointment_type,status\n"
SCHEDULE = (
    'id = "card"\nclinics = ["CARD", "INT"]\nrun_at = "19:00"\nhours = "08:00-17:00"\n'
    '[overseer]\nuzi = "900000011"\nrole = "01.010"\nname = "Dr. A. de Vries"\n'
)


def _row_of(html: str, patient: str) -> str:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = [re.sub(r"\s+", " ", r) for r in body.split("<tr>")[1:]]
    [row] = [r for r in rows if f">{patient}</a>" in r]
    return row


def _time_of(html: str, patient: str) -> str:
    found = re.search(r"<td>([^<]*)</td>", _row_of(html, patient))
    assert found is not None
    return found.group(1).strip()


def test_bookings_and_later_cancellations_from_intake_show_on_the_worklist(
    tmp_path: Path, desk_engine: Engine
) -> None:
    schedules = tmp_path / "schedules"
    schedules.mkdir()
    (schedules / "card.toml").write_text(SCHEDULE, encoding="utf-8")
    config = tmp_path / "prefetch.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\nschedules_dir = "{schedules}"\n'
        f'[database]\nurl = "{desk_engine.url.render_as_string(hide_password=False)}"\n',
        encoding="utf-8",
    )
    settings = load_settings(config, env={})
    stores = open_stores(settings, migrate=False)
    client = sign_in(TestClient(desk_app(settings, stores), follow_redirects=False), "anna")

    def worklist() -> str:
        page = client.get(f"/werklijst?dag={DAY.isoformat()}")
        assert page.status_code == 200
        return page.text

    def intake_load(name: str, rows: str) -> None:
        path = tmp_path / name
        path.write_text(HEADER + rows, encoding="utf-8")
        args = ["intake", "load", str(path), "--source", "epd-csv", "--config", str(config)]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output

    try:
        before = worklist()
        assert _time_of(before, "P1") == "\u2013"
        assert _time_of(before, "P3") == "\u2013"
        intake_load(
            "day.csv",
            f"A1,P1,CARD,{DAY}T10:15,POLI,gepland\n"
            f"A2,P1,INT,{DAY}T08:45,POLI,gepland\n"
            f"A3,P3,INT,{DAY}T11:00,POLI,gepland\n"
            f"A5,P6,CARD,{DAY}T09:10,POLI,gepland\n"
            f"A6,P6,INT,{DAY}T08:30,POLI,gepland\n"
            f"A4,P2,NOM,{DAY}T09:00,POLI,gepland\n",  # no schedule reads clinic NOM
        )
        booked = worklist()
        assert _time_of(booked, "P1") == "08:45"
        assert _time_of(booked, "P3") == "11:00"
        assert _time_of(booked, "P6") == "08:30"
        assert _time_of(booked, "P2") == "\u2013"
        rows = booked.split("<tbody>", 1)[1]
        assert rows.index(">P1</a>") < rows.index(">P3</a>")  # by time, as before
        intake_load(
            "cancel.csv",
            f"A2,P1,INT,{DAY}T08:45,POLI,geannuleerd\nA6,P6,INT,{DAY}T08:30,POLI,geannuleerd\n",
        )
        cancelled = worklist()
        assert _time_of(cancelled, "P1") == "10:15"  # the cancelled 08:45 is gone
        assert "08:45" not in cancelled
        assert _time_of(cancelled, "P6") == "09:10"
        only_int = client.get(f"/werklijst?dag={DAY.isoformat()}&poli=INT").text
        assert _time_of(only_int, "P6") == "\u2013"  # P6's INT appointment is cancelled
        assert _time_of(only_int, "P3") == "11:00"
    finally:
        stores.engine.dispose()


def test_the_demo_desk_shows_the_demos_day_from_the_book(demo_desk: DemoDesk) -> None:
    """`prefetch desk --demo DIR`: each patient's time is that of their first booked
    appointment in the book (the demo loaded its CSV there), in Amsterdam time."""
    from prefetch.demo.setup import DEMO_CLINICS

    client = TestClient(demo_desk.app, follow_redirects=False)
    sign_in(client, demo_desk.username, demo_desk.password)
    html = client.get(f"/werklijst?dag={demo_desk.clinic_day.isoformat()}").text
    booked: dict[str, dt.datetime] = {}
    for a in demo_desk.stores.book.day(DEMO_CLINICS, demo_desk.clinic_day):
        if a.status is AppointmentStatus.BOOKED:
            first = booked.get(a.patient.local_id)
            booked[a.patient.local_id] = a.start if first is None else min(first, a.start)
    assert len(booked) > 100
    checked = 0
    for patient, start in sorted(booked.items())[:20]:
        if f">{patient}</a>" in html:
            assert _time_of(html, patient) == start.astimezone(AMSTERDAM).strftime("%H:%M")
            checked += 1
    assert checked > 10
