"""The demo, wired like production: dev PKI -> simulator (mTLS, tokens) -> engine -> store.

Everything lives in one data directory and is created on first use: an encrypted dev PKI,
a seeded world, the clinic day CSV, the database and the mandate. A second demo re-queries
every patient of the same day (a manual run) and must add no dispense row.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prefetch.composition import Stores, make_lsp_client, make_prefetcher, open_stores
from prefetch.demo.clinic_day import clinic_day_csv
from prefetch.domain.localtime import AMSTERDAM
from prefetch.domain.people import Clinician, Mandate
from prefetch.domain.schedule import Schedule
from prefetch.engine import Progress, RunReport
from prefetch.lspsim.profiles import Profile, get_profile
from prefetch.lspsim.secure import load_or_create_dev_pki, secure_from_dev_pki
from prefetch.lspsim.server import SimulatorServer
from prefetch.lspsim.world import World
from prefetch.security.filemodes import private_dir, private_umask
from prefetch.security.keys import write_private
from prefetch.security.mandates import check_mandate, register_mandate
from prefetch.security.pki import DevPki
from prefetch.settings import (
    DatabaseSettings,
    HospitalSettings,
    LspSettings,
    RunSettings,
    Settings,
    ThrottleSettings,
)
from prefetch.sources.csv_source import read_appointments_csv

WORLD_SEED = 20261124
WORLD_PATIENTS = 400
APPLICATION_ID = "10008890"
DEMO_CLINICS = frozenset({"CARD", "INT", "LONG", "NEUR", "REUM"})
DEMO_TIME_SCALE = 0.05  # simulated seconds -> real seconds (1.5 s median -> 75 ms)


@dataclass(frozen=True, slots=True)
class DemoResult:
    report: RunReport
    run_id: str
    clinic_day: dt.date
    appointments: int
    dispense_rows_before: int
    dispense_rows_after: int
    database: str
    data_dir: Path
    simulator_stats: dict[str, object]


def _passphrase_file(data_dir: Path) -> Path:
    """The demo's PKCS#12 passphrase: random, in a 0600 file next to the PKI."""
    path = data_dir / "pki.passphrase"
    if not path.exists():
        write_private(path, secrets.token_urlsafe(32).encode())
    return path


def ensure_pki(data_dir: Path, key_size: int = 4096) -> tuple[DevPki, bytes]:
    passphrase = _passphrase_file(data_dir).read_bytes().strip()
    return load_or_create_dev_pki(data_dir / "pki", passphrase, key_size=key_size), passphrase


def ensure_world(data_dir: Path) -> World:
    path = data_dir / "world.json"
    if path.exists():
        return World.load(path)
    world = World.generate(WORLD_SEED, WORLD_PATIENTS)
    world.save(path)
    return world


def demo_schedule(pki: DevPki) -> Schedule:
    spec = pki.specialist
    overseer = Clinician(
        uzi_number=spec.uzi_number or "",
        role_code=spec.role or "",
        name=spec.display_name,
        ura=pki.hospital_ura,
    )
    return Schedule(
        id="demo",
        clinics=DEMO_CLINICS,
        appointment_types=frozenset(),
        excluded_appointment_types=frozenset({"TEL"}),
        overseer=overseer,
        mandate_id="demo-mandate",
        run_at=dt.time(19, 0),
    )


def ensure_mandate(
    stores: Stores, pki: DevPki, passphrase: bytes, schedule: Schedule, now: dt.datetime
) -> Mandate:
    mandate_id = schedule.mandate_id or "demo-mandate"
    existing = stores.mandates.get(mandate_id)
    if existing is not None and existing.valid_until > now + dt.timedelta(days=1):
        return existing
    # The same registration `prefetch mandate register` does: the specialist's own pass,
    # checked against the UZI trust, signs once.
    mandate = register_mandate(
        pki.specialist.load(passphrase),
        name=schedule.overseer.name,
        mandated_id=pki.hospital.uzi_number or "",
        schedules=[schedule.id],
        valid_from=now - dt.timedelta(hours=1),
        valid_until=now + dt.timedelta(days=365),
        now=now,
        mandate_id=mandate_id,
        trust=pki.trust_store(),
    )
    stores.mandates.save(mandate)  # replaces an expiring demo mandate
    return mandate


def demo_settings(data_dir: Path, pki: DevPki, sim: SimulatorServer, profile: Profile) -> Settings:
    hospital = pki.hospital
    rate = profile.effective_rate
    limits = profile.rate
    return Settings(
        data_dir=str(data_dir),
        hospital=HospitalSettings(
            ura=pki.hospital_ura,
            name=pki.hospital_name,
            application_id=APPLICATION_ID,
            system_uzi=hospital.uzi_number or "",
        ),
        database=DatabaseSettings(url=os.environ.get("PREFETCH_DATABASE_URL", "")),
        lsp=LspSettings(
            url=sim.url,
            client_p12=str(hospital.p12),
            ca_file=str(pki.ca_bundle),
            passphrase_file=str(_passphrase_file(data_dir)),
            read_timeout=30.0,
        ),
        # Stay just under what the (simulated) LSP allows: it counts every violation.
        throttle=ThrottleSettings(
            rate_per_second=round(rate * 0.9, 2) if rate else 50.0,
            max_in_flight=limits.max_concurrency or 4,
        ),
        # Retries on the simulator's time scale: seconds instead of minutes.
        run=RunSettings(
            backoff_base_seconds=max(30 * profile.time_scale, 0.2),
            backoff_max_seconds=max(900 * profile.time_scale, 1.0),
        ),
    )


def start_simulator(
    world: World, profile: Profile, pki: DevPki, passphrase: bytes
) -> SimulatorServer:
    tls, verifier = secure_from_dev_pki(pki, passphrase)
    return SimulatorServer(world, profile, tls=tls, verifier=verifier)


def run_demo(
    data_dir: Path,
    *,
    profile_name: str = "realistic",
    progress: Callable[[Progress], None] | None = None,
    on_stage: Callable[[str], None] | None = None,
    key_size: int = 4096,
) -> DemoResult:
    with private_umask():  # the data directory holds BSNs: nothing in it for others
        return _run_demo(data_dir, profile_name, progress, on_stage, key_size)


def _run_demo(
    data_dir: Path,
    profile_name: str,
    progress: Callable[[Progress], None] | None,
    on_stage: Callable[[str], None] | None,
    key_size: int,
) -> DemoResult:
    stage = on_stage or (lambda _msg: None)
    private_dir(data_dir)
    stage("development PKI (UZI-shaped, encrypted keys)")
    pki, passphrase = ensure_pki(data_dir, key_size=key_size)
    stage("synthetic world of pharmacies and patients")
    world = ensure_world(data_dir)
    now = dt.datetime.now(dt.UTC)
    clinic_day = now.astimezone(AMSTERDAM).date() + dt.timedelta(days=1)
    csv_path = data_dir / f"appointments-{clinic_day.isoformat()}.csv"
    if not csv_path.exists():
        csv_path.write_text(
            clinic_day_csv([p.bsn for p in world.patients], clinic_day), encoding="utf-8"
        )
    appointments = read_appointments_csv(csv_path)
    profile = get_profile(profile_name).with_time_scale(DEMO_TIME_SCALE)
    schedule = demo_schedule(pki)
    stage(f"LSP simulator ({profile.name}) with mutual TLS and token checks")
    with start_simulator(world, profile, pki, passphrase) as sim:
        settings = demo_settings(data_dir, pki, sim, profile)
        stores = open_stores(settings)
        mandate = ensure_mandate(stores, pki, passphrase, schedule, now)
        # Refuse to start under a missing, expired, foreign or tampered mandate.
        check_mandate(
            mandate,
            schedule_id=schedule.id,
            mandatee=settings.hospital.system_uzi,
            ura=pki.hospital_ura,
            trust=pki.trust_store(),
            now=now,
        )
        client = make_lsp_client(settings, pki.hospital.load(passphrase))
        prefetcher = make_prefetcher(settings, stores, client)
        before = stores.dispenses.count()
        first = stores.runs.find_run(schedule.id, clinic_day, "scheduled")
        kind = "scheduled" if first is None else "manual"
        prepared = prefetcher.prepare(
            schedule,
            clinic_day,
            appointments,
            mandate=mandate,
            kind=kind,
            fresh_for=None if kind == "scheduled" else dt.timedelta(0),
        )
        stage(f"prefetching {prepared.to_query} of {prepared.planned} patients ({kind} run)")
        report = prefetcher.execute(
            prepared.run_id, schedule, mandate, clinic_day=clinic_day, progress=progress
        )
        stats = sim.stats()
        after = stores.dispenses.count()
        stores.engine.dispose()
    return DemoResult(
        report=report,
        run_id=prepared.run_id,
        clinic_day=clinic_day,
        appointments=len(appointments),
        dispense_rows_before=before,
        dispense_rows_after=after,
        database=settings.database_url,
        data_dir=data_dir,
        simulator_stats=stats,
    )
