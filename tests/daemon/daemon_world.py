"""A real environment for daemon processes: dev PKI, simulator, settings file, schedule,
registered mandate, and the clinic day's export loaded into the appointment book with
`prefetch intake load` (where the daemon reads its runs' appointments), all in one
directory."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from prefetch.cli import app
from prefetch.composition import open_stores
from prefetch.demo.clinic_day import DayMix, clinic_day_csv
from prefetch.demo.setup import (
    APPLICATION_ID,
    demo_schedule,
    ensure_mandate,
    ensure_pki,
    start_simulator,
)
from prefetch.domain.localtime import AMSTERDAM
from prefetch.lspsim.profiles import Profile, get_profile
from prefetch.lspsim.server import SimulatorServer
from prefetch.lspsim.world import World
from prefetch.settings import load_settings

ONLY_KNOWN = DayMix(0, 0, 0, 0, 0, 0, 0, 0, 0)


def _toml(value: object) -> str:
    return json.dumps(value)  # strings, numbers and lists of strings: TOML-compatible


@dataclasses.dataclass
class DaemonWorld:
    directory: Path
    config: Path
    sim: SimulatorServer
    clinic_day: dt.date
    database_url: str
    export: Path  # the clinic day's appointments as the EPD exported them (in the book)

    def load(self, file: Path) -> str:
        """`prefetch intake load FILE --source epd-csv`: the file into the book."""
        result = CliRunner().invoke(
            app, ["intake", "load", str(file), "--source", "epd-csv", "-c", str(self.config)]
        )
        assert result.exit_code == 0, result.output
        return result.stdout


def make_world(
    directory: Path,
    database_url: str,
    *,
    patients: int,
    rate: float,
    in_flight: int,
    profile: Profile | None = None,
    pki_from: Path | None = None,
    load: bool = True,
) -> DaemonWorld:
    if pki_from is not None:  # a PKI made once for the session (keys are slow to make)
        shutil.copytree(pki_from / "pki", directory / "pki")
        shutil.copy2(pki_from / "pki.passphrase", directory / "pki.passphrase")
    pki, passphrase = ensure_pki(directory, key_size=2048)
    world = World.generate(5, patients)
    sim = start_simulator(world, profile or get_profile("ideal"), pki, passphrase).start()
    schedule = demo_schedule(pki)
    now_local = dt.datetime.now(AMSTERDAM) - dt.timedelta(minutes=2)
    clinic_day = now_local.date() + dt.timedelta(days=1)
    sched_dir = directory / "schedules"
    sched_dir.mkdir()
    spec = schedule.overseer
    (sched_dir / "demo.toml").write_text(
        f'id = "demo"\nclinics = {_toml(sorted(schedule.clinics))}\n'
        f'exclude_appointment_types = ["TEL"]\nrun_at = "{now_local:%H:%M}"\ndays_ahead = 1\n'
        f'mandate = "demo-mandate"\n\n[overseer]\nuzi = "{spec.uzi_number}"\n'
        f'role = "{spec.role_code}"\nname = "{spec.name}"\nura = "{spec.ura}"\n',
        encoding="utf-8",
    )
    export = directory / f"export-{clinic_day.isoformat()}.csv"
    mix = dataclasses.replace(ONLY_KNOWN, known=patients)
    export.write_text(
        clinic_day_csv([p.bsn for p in world.patients], clinic_day, seed=3, mix=mix),
        encoding="utf-8",
    )
    hospital = pki.hospital
    config = directory / "prefetch.toml"
    config.write_text(
        f"""data_dir = {_toml(str(directory))}
schedules_dir = {_toml(str(sched_dir))}
[hospital]
ura = {_toml(pki.hospital_ura)}
name = {_toml(pki.hospital_name)}
application_id = {_toml(APPLICATION_ID)}
system_uzi = {_toml(hospital.uzi_number)}
[database]
url = {_toml(database_url)}
[lsp]
url = {_toml(sim.url)}
client_p12 = {_toml(str(hospital.p12))}
ca_file = {_toml(str(pki.ca_bundle))}
passphrase_file = {_toml(str(directory / "pki.passphrase"))}
read_timeout = 30.0
[throttle]
rate_per_second = {rate}
max_in_flight = {in_flight}
[security]
trust_anchors = {_toml([str(pki.root_ca)])}
intermediates = {_toml([str(pki.issuing_ca)])}
crls = {_toml([str(c) for c in pki.crls])}
[logging]
format = "json"
[daemon]
http_port = 0
leader_poll_seconds = 0.5
sweep_seconds = 2.0
work_poll_seconds = 0.5
""",
        encoding="utf-8",
    )
    settings = load_settings(config)
    stores = open_stores(settings)  # migrates
    ensure_mandate(stores, pki, passphrase, schedule, dt.datetime.now(dt.UTC))
    stores.engine.dispose()
    made = DaemonWorld(directory, config, sim, clinic_day, database_url, export)
    if load:
        made.load(export)
    return made
