"""A clinic day ready for `prefetch run` processes: dev PKI, a seeded world, the simulator
(mutual TLS, token checks, rate enforcement), settings, schedule, appointments, a migrated
SQLite database and a registered mandate."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from prefetch.cli import app
from prefetch.demo.clinic_day import DayMix, clinic_day_csv
from prefetch.demo.setup import ensure_pki, start_simulator
from prefetch.domain.run import ItemRecord
from prefetch.lspsim.profiles import get_profile
from prefetch.lspsim.server import SimulatorServer
from prefetch.lspsim.world import World
from prefetch.store.db import make_engine
from prefetch.store.runs import RunRepository
from prefetch.store.tables import AuditRow, DispenseRow

DAY = dt.date(2030, 6, 4)
TIME_SCALE = 0.05


@dataclass
class RunDay:
    sim: SimulatorServer
    engine: Engine
    run_args: list[str]
    env: dict[str, str]

    def items(self) -> list[ItemRecord]:
        return RunRepository(self.engine).items(f"card:{DAY.isoformat()}")

    def duplicate_dispenses(self) -> int:
        with self.engine.connect() as connection:
            rows = connection.execute(select(func.count()).select_from(DispenseRow)).scalar_one()
            distinct = connection.execute(
                select(func.count()).select_from(
                    select(DispenseRow.id_root, DispenseRow.id_extension).distinct().subquery()
                )
            ).scalar_one()
        return int(rows - distinct)


def audited_queries(engine: Engine) -> dict[str, int]:
    """`lsp_query` (sent) audit rows per SHA-256 of the BSN, as `/_sim/log` names them."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(AuditRow.patient_bsn, func.count())
            .where(AuditRow.event_type == "lsp_query")
            .group_by(AuditRow.patient_bsn)
        ).all()
    return {hashlib.sha256(str(bsn).encode()).hexdigest(): int(n) for bsn, n in rows}


@contextmanager
def run_day(
    tmp_path: Path,
    *,
    patients: int,
    rate: float,
    profile: str = "realistic",
    database_url: str | None = None,
    in_flight: int = 4,
    time_scale: float = TIME_SCALE,
) -> Iterator[RunDay]:
    """`database_url`: None for SQLite in `tmp_path`; `in_flight`: `[throttle]
    max_in_flight` (at most the profile's concurrency)."""
    runner = CliRunner()
    pki, passphrase = ensure_pki(tmp_path, key_size=2048)
    world = World.generate(3, patients + 10, reference_date=DAY)
    spec = pki.specialist
    (tmp_path / "card.toml").write_text(
        f'id = "card"\nclinics = ["CARD", "INT"]\nrun_at = "19:00"\nmandate = "m-card"\n'
        f'[overseer]\nuzi = "{spec.uzi_number}"\nrole = "{spec.role}"\nname = "Dr. Spec"\n'
    )
    csv = tmp_path / "day.csv"
    mix = DayMix(
        known=patients,
        unknown=2,
        no_bsn=1,
        invalid_bsn=1,
        unverified=1,
        refused=1,
        cancelled=1,
        telephone=1,
        two_clinics=3,
    )
    csv.write_text(clinic_day_csv([p.bsn for p in world.patients], DAY, seed=2, mix=mix))
    env = {**os.environ, "PREFETCH_PKI_PASSPHRASE": passphrase.decode()}
    env.pop("PREFETCH_DATABASE_URL", None)
    chosen = get_profile(profile).with_time_scale(time_scale)
    limit = chosen.effective_rate
    in_flight = min(in_flight, chosen.rate.max_concurrency or in_flight)
    url = database_url or f"sqlite:///{tmp_path / 'prefetch.sqlite'}"
    with start_simulator(world, chosen, pki, passphrase) as sim:
        cfg = tmp_path / "prefetch.toml"
        cfg.write_text(
            f'data_dir = "{tmp_path}"\n'
            f'[hospital]\nura = "{pki.hospital_ura}"\nname = "{pki.hospital_name}"\n'
            f'application_id = "10008890"\nsystem_uzi = "{pki.hospital.uzi_number}"\n'
            f'[lsp]\nurl = "{sim.url}"\nclient_p12 = "{pki.hospital.p12}"\n'
            f'ca_file = "{pki.ca_bundle}"\nconnect_timeout = 2.0\nread_timeout = 3.0\n'
            f"[throttle]\nrate_per_second = {min(rate, limit * 0.9) if limit else rate}\n"
            f"max_in_flight = {in_flight}\n"
            f"[database]\nurl = {json.dumps(url)}\n"
            f"[run]\nbackoff_base_seconds = 0.2\nbackoff_max_seconds = 1.0\n"
            f'[security]\ntrust_anchors = ["{pki.root_ca}"]\n'
            f'intermediates = ["{pki.issuing_ca}"]\n'
            f"crls = [{', '.join(f'{chr(34)}{c}{chr(34)}' for c in pki.crls)}]\n"
        )
        upgraded = runner.invoke(app, ["db", "upgrade", "-c", str(cfg)])
        assert upgraded.exit_code == 0, upgraded.output
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
        engine = make_engine(url)
        try:
            yield RunDay(
                sim=sim,
                engine=engine,
                run_args=[
                    "run",
                    "--schedule",
                    str(tmp_path / "card.toml"),
                    "--appointments",
                    str(csv),
                    "--day",
                    DAY.isoformat(),
                    "-c",
                    str(cfg),
                ],
                env=env,
            )
        finally:
            engine.dispose()
