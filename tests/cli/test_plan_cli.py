"""Acceptance 2: one row per skip reason, each visible in `prefetch plan`; header variants
keep objections and cancellations in force. Also the consent register and `intake load`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import insert
from typer.testing import CliRunner

from prefetch.cli import app
from prefetch.domain.localtime import AMSTERDAM
from prefetch.domain.people import Clinician, Mandate
from prefetch.store.db import make_engine, upgrade
from prefetch.store.mandates import MandateRepository
from prefetch.store.tables import DispenseRow

runner = CliRunner()
OVERSEER = Clinician("900000011", "01.010", "Dr. A. de Vries")


def bsn(n: int) -> str:
    """The n-th valid BSN of a simple series (11-check)."""
    k = 0
    while True:
        digits = f"{10000000 + n * 37 + k:08d}"
        total = sum(w * int(d) for w, d in zip(range(9, 1, -1), digits, strict=True))
        check = total % 11
        if check < 10:
            return digits + str(check)
        k += 1


DAY = dt.datetime.now(AMSTERDAM).date() + dt.timedelta(days=2)
D = DAY.isoformat()


def schedule_text(sid: str, clinics: str, run_at: str, mandate: str | None) -> str:
    text = f'id = "{sid}"\nclinics = [{clinics}]\nrun_at = "{run_at}"\n'
    text += 'exclude_appointment_types = ["TEL"]\nhours = "08:00-17:00"\n'
    if mandate:
        text += f'mandate = "{mandate}"\n'
    return text + '[overseer]\nuzi = "900000011"\nrole = "01.010"\nname = "Dr. A. de Vries"\n'


@pytest.fixture
def hospital(tmp_path: Path) -> Path:
    schedules = tmp_path / "schedules"
    schedules.mkdir()
    (schedules / "card.toml").write_text(schedule_text("card", '"CARD"', "19:00", "m-card"))
    (schedules / "int.toml").write_text(schedule_text("int", '"INT"', "18:00", "m-int"))
    (schedules / "nom.toml").write_text(schedule_text("nom", '"NOM"', "19:00", "m-none"))
    (schedules / "exp.toml").write_text(schedule_text("exp", '"EXP"', "19:00", "m-exp"))
    config = tmp_path / "prefetch.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\nschedules_dir = "{schedules}"\n'
        f'sources_file = "{tmp_path / "sources.toml"}"\n',
        encoding="utf-8",
    )
    (tmp_path / "data").mkdir()
    url = f"sqlite:///{(tmp_path / 'data' / 'prefetch.sqlite').resolve()}"
    upgrade(url)
    engine = make_engine(url)
    now = dt.datetime.now(dt.UTC)
    mandates = MandateRepository(engine)
    for mid, sid, until in (("m-card", "card", 30), ("m-int", "int", 30), ("m-exp", "exp", -1)):
        mandates.add(
            Mandate(
                mid,
                OVERSEER,
                "000000123",
                frozenset({sid}),
                now - dt.timedelta(days=9),
                now + dt.timedelta(days=until),
            )
        )
    with engine.begin() as conn:  # fetched an hour ago: "fresh"
        conn.execute(
            insert(DispenseRow),
            {
                "id_root": "1.2.3",
                "id_extension": "d1",
                "patient_bsn": bsn(9),
                "data": {},
                "query_id": "q1",
                "fetched_at": now - dt.timedelta(hours=1),
                "first_fetched_at": now - dt.timedelta(hours=1),
                "responsible_uzi": "900000011",
            },
        )
    engine.dispose()
    return config


HEADER = "Afspraak_ID;Patientnummer;BSN;BSN geverifieerd;Toestemming;Poli;Start;Type;Status"
ROWS = {
    # appointment id: (patient, bsn, verified, consent, clinic, time, type, status, expected)
    "A01": ("P01", "", "ja", "", "CARD", "09:00", "NP", "", ("skipped", "no_bsn")),
    "A02": ("P02", "123456789", "ja", "", "CARD", "09:00", "NP", "", ("skipped", "bsn_invalid")),
    "A03": ("P03", bsn(3), "nee", "", "CARD", "09:00", "NP", "", ("skipped", "bsn_unverified")),
    "A04": ("P04", bsn(4), "ja", "nee", "CARD", "09:00", "NP", "", ("skipped", "consent_refused")),
    "A05": ("P05", bsn(5), "ja", "", "CARD", "09:00", "NP", "", ("skipped", "consent_refused")),
    "A06": (
        "P06",
        bsn(6),
        "ja",
        "",
        "CARD",
        "09:00",
        "TEL",
        "",
        ("skipped", "appointment_type_excluded"),
    ),
    "A07": ("P07", bsn(7), "ja", "", "CARD", "09:00", "NP", "afgezegd", ("skipped", "cancelled")),
    "A08": ("P08", bsn(8), "ja", "", "CARD", "18:30", "NP", "", ("skipped", "outside_window")),
    "A09": ("P09", bsn(9), "ja", "", "CARD", "09:00", "NP", "", ("skipped", "fresh")),
    "A10": ("P10", bsn(10), "ja", "", "CARD", "10:00", "NP", "", ("skipped", "duplicate")),
    "A11": ("P10", bsn(10), "ja", "", "INT", "09:00", "NP", "", None),
    "A12": ("P12", bsn(12), "ja", "", "NOM", "09:00", "NP", "", ("skipped", "mandate_missing")),
    "A13": ("P13", bsn(13), "ja", "", "EXP", "09:00", "NP", "", ("skipped", "mandate_expired")),
    "A14": ("P14", bsn(14), "ja", "", "CARD", "09:00", "NP", "", ("eligible", None)),
}


def export(path: Path) -> Path:
    lines = [HEADER]
    for aid, (pid, number, ver, consent, clinic, time, kind, status, _) in ROWS.items():
        lines.append(f"{aid};{pid};{number};{ver};{consent};{clinic};{D} {time};{kind};{status}")
    path.write_bytes(("\n".join(lines) + "\n").encode("cp1252"))
    return path


def plan(config: Path, sid: str) -> dict[str, tuple[str, str | None]]:
    result = runner.invoke(app, ["plan", sid, "--date", D, "--json", "--config", str(config)])
    assert result.exit_code == 0, result.output
    lines = json.loads(result.stdout)
    assert all(set(line) <= {"appointment_id", "decision", "reason", "see"} for line in lines)
    return {line["appointment_id"]: (line["decision"], line["reason"]) for line in lines}


def test_every_skip_reason_is_visible_in_plan(hospital: Path, tmp_path: Path) -> None:
    refused = runner.invoke(
        app, ["consent", "refuse", bsn(5), "--reason", "at the desk", "--config", str(hospital)]
    )
    assert refused.exit_code == 0 and bsn(5) not in refused.output
    loaded = runner.invoke(
        app,
        [
            "intake",
            "load",
            str(export(tmp_path / "day.csv")),
            "--source",
            "epd",
            "--config",
            str(hospital),
        ],
    )
    assert loaded.exit_code == 0, loaded.output
    assert "14 added" in loaded.stdout and "1 objections imported" in loaded.stdout
    seen = {
        **plan(hospital, "card"),
        **plan(hospital, "int"),
        **plan(hospital, "nom"),
        **plan(hospital, "exp"),
    }
    for aid, row in ROWS.items():
        if row[-1] is not None:
            assert seen[aid] == row[-1], aid
    assert seen["A11"] == ("eligible", None)
    text = runner.invoke(app, ["plan", "card", "--date", D, "--config", str(hospital)])
    assert "duplicate (queried by int)" in text.stdout
    assert all(bsn(n) not in text.stdout for n in range(15))
    # allow again: P05 becomes eligible
    allowed = runner.invoke(app, ["consent", "allow", bsn(5), "--config", str(hospital)])
    assert allowed.exit_code == 0
    assert plan(hospital, "card")["A05"] == ("eligible", None)


def test_plan_from_a_file_and_reload_is_idempotent(hospital: Path, tmp_path: Path) -> None:
    path = export(tmp_path / "day.csv")
    seen = json.loads(
        runner.invoke(
            app,
            [
                "plan",
                "card",
                "--date",
                D,
                "--appointments",
                str(path),
                "--json",
                "--config",
                str(hospital),
            ],
        ).stdout
    )
    assert {line["appointment_id"] for line in seen} >= {"A01", "A14"}
    args = ["intake", "load", str(path), "--source", "epd", "--config", str(hospital)]
    runner.invoke(app, args)
    again = runner.invoke(app, args)
    assert "0 added, 0 updated, 0 cancelled, 14 unchanged or ignored" in again.stdout


def test_consent_refuses_an_invalid_bsn_without_echoing_it(hospital: Path) -> None:
    result = runner.invoke(
        app, ["consent", "refuse", "123456789", "--reason", "x", "--config", str(hospital)]
    )
    assert result.exit_code == 2
    assert "123456789" not in result.output
