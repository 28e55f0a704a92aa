"""`prefetch run` from settings, a schedule file and a CSV export, against the simulator
over mutual TLS: the operator's path without the demo's conveniences."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prefetch.cli import app
from prefetch.demo.clinic_day import DayMix, clinic_day_csv
from prefetch.demo.setup import ensure_pki, start_simulator
from prefetch.lspsim.profiles import get_profile
from prefetch.lspsim.world import World
from prefetch.store.db import make_engine
from prefetch.store.dispenses import DispenseRepository

runner = CliRunner()
DAY = dt.date(2030, 6, 4)


@pytest.mark.slow
def test_run_a_schedule_day_then_start_it_again(tmp_path: Path) -> None:
    pki, passphrase = ensure_pki(tmp_path, key_size=2048)
    world = World.generate(3, 40, reference_date=DAY)
    spec = pki.specialist
    (tmp_path / "card.toml").write_text(
        f'id = "card"\nclinics = ["CARD", "INT"]\nrun_at = "19:00"\nmandate = "m-card"\n'
        f'[overseer]\nuzi = "{spec.uzi_number}"\nrole = "{spec.role}"\nname = "Dr. Spec"\n'
    )
    csv = tmp_path / "day.csv"
    csv.write_text(
        clinic_day_csv(
            [p.bsn for p in world.patients],
            DAY,
            seed=2,
            mix=DayMix(
                known=30,
                unknown=2,
                no_bsn=1,
                invalid_bsn=1,
                unverified=1,
                refused=1,
                cancelled=1,
                telephone=1,
                two_clinics=3,
            ),
        )
    )
    env = {"PREFETCH_PKI_PASSPHRASE": passphrase.decode()}
    with start_simulator(world, get_profile("ideal"), pki, passphrase) as sim:
        cfg = tmp_path / "prefetch.toml"
        cfg.write_text(
            f'data_dir = "{tmp_path}"\n'
            f'[hospital]\nura = "{pki.hospital_ura}"\nname = "{pki.hospital_name}"\n'
            f'application_id = "10008890"\nsystem_uzi = "{pki.hospital.uzi_number}"\n'
            f'[lsp]\nurl = "{sim.url}"\nclient_p12 = "{pki.hospital.p12}"\n'
            f'ca_file = "{pki.ca_bundle}"\n'
            f"[throttle]\nrate_per_second = 50\n"
            f'[security]\ntrust_anchors = ["{pki.root_ca}"]\n'
            f'intermediates = ["{pki.issuing_ca}"]\n'
            f"crls = [{', '.join(f'{chr(34)}{c}{chr(34)}' for c in pki.crls)}]\n"
        )
        args = [
            "run",
            "--schedule",
            str(tmp_path / "card.toml"),
            "--appointments",
            str(csv),
            "--day",
            DAY.isoformat(),
            "-c",
            str(cfg),
        ]
        # Not migrated yet: a clear refusal, nothing sent.
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 2
        assert "prefetch db upgrade" in result.output
        assert runner.invoke(app, ["db", "upgrade", "-c", str(cfg)]).exit_code == 0
        # No mandate registered yet: refused before anything is sent.
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 2
        assert "no mandate covers this schedule" in result.output
        assert sim.stats()["queries_received"] == 0
        registered = runner.invoke(
            app,
            [
                "mandate",
                "register",
                "--clinician-p12",
                str(spec.p12),
                "--schedule",
                "card",
                "--name",
                "Dr. Spec",
                "--id",
                "m-card",
                "-c",
                str(cfg),
            ],
            env=env,
        )
        assert registered.exit_code == 0, registered.output
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 0, result.output
        assert "fetched, with dispenses" in result.output
        queried = sim.stats()["queries_received"]
        assert queried >= 10, result.output
        # The same schedule and day again: it already ran; nothing is sent, exit 3 naming
        # the run. --again runs the day once more: everyone was fetched just now (fresh).
        again = runner.invoke(app, args, env=env)
        assert again.exit_code == 3, again.output
        assert f"already ran: run card:{DAY.isoformat()} finished at" in again.output
        assert sim.stats()["queries_received"] == queried
        forced = runner.invoke(app, [*args, "--again"], env=env)
        assert forced.exit_code == 0, forced.output
        assert sim.stats()["queries_received"] == queried
    engine = make_engine(f"sqlite:///{tmp_path / 'prefetch.sqlite'}")
    assert DispenseRepository(engine).count() > 0
    engine.dispose()


def test_run_refuses_bad_input_before_anything(tmp_path: Path) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text('[hospital]\nura = "00000000"\n')
    args = ["run", "--schedule", "s.toml", "--appointments", "a.csv", "-c", str(cfg)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "hospital.ura: still the placeholder" in result.output
    assert "lsp.client_p12: not set" in result.output
    ready = tmp_path / "ready.toml"
    (tmp_path / "x.pem").write_bytes(b"x")
    ready.write_text(
        '[hospital]\nura = "12345678"\napplication_id = "1"\nsystem_uzi = "900000012"\n'
        f'[lsp]\nclient_p12 = "{tmp_path / "x.pem"}"\nca_file = "{tmp_path / "x.pem"}"\n'
        f'[security]\ntrust_anchors = ["{tmp_path / "x.pem"}"]\n'
    )
    result = runner.invoke(app, [*args[:-1], str(ready), "--day", "2026-13-01"])
    assert result.exit_code == 2
    assert "is not a date" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("revision", [None, "0008"])
def test_run_refuses_a_database_not_at_the_schema_head_in_one_line(
    tmp_path: Path, revision: str | None
) -> None:
    from prefetch.store.db import SCHEMA_HEAD, upgrade

    if revision is not None:
        upgrade(f"sqlite:///{tmp_path / 'prefetch.sqlite'}", revision)
    (tmp_path / "x.pem").write_bytes(b"x")
    cfg = tmp_path / "ready.toml"
    cfg.write_text(
        f'data_dir = "{tmp_path}"\n'
        '[hospital]\nura = "12345678"\napplication_id = "1"\nsystem_uzi = "900000012"\n'
        f'[lsp]\nclient_p12 = "{tmp_path / "x.pem"}"\nca_file = "{tmp_path / "x.pem"}"\n'
        f'[security]\ntrust_anchors = ["{tmp_path / "x.pem"}"]\n'
    )
    (tmp_path / "card.toml").write_text(
        'id = "card"\nclinics = ["CARD"]\nrun_at = "19:00"\nmandate = "m-card"\n'
        '[overseer]\nuzi = "900000012"\nrole = "01.015"\nname = "Dr. Spec"\n'
    )
    (tmp_path / "a.csv").write_text("")
    args = ["run", "--schedule", str(tmp_path / "card.toml"), "--day", "2030-06-04"]
    result = runner.invoke(app, [*args, "--appointments", str(tmp_path / "a.csv"), "-c", str(cfg)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "database schema is not current" in lines[0]
    assert f"at {revision or 'nothing'}, this version needs {SCHEMA_HEAD}" in lines[0]
    assert "prefetch db upgrade" in lines[0]
