"""The demo's world: what `prefetch demo` (`prefetch.cli.demo`) creates on first use in its
data directory and then reuses: an encrypted dev PKI, a seeded world of pharmacies and
patients, the clinic day CSV, the schedule, the mandate, the settings and the simulator.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path

from prefetch.composition import Stores
from prefetch.demo.clinic_day import clinic_day_csv
from prefetch.domain.people import Clinician, Mandate
from prefetch.domain.schedule import Schedule
from prefetch.lspsim.profiles import Profile
from prefetch.lspsim.secure import load_or_create_dev_pki, secure_from_dev_pki
from prefetch.lspsim.server import SimulatorServer
from prefetch.lspsim.world import World
from prefetch.security.keys import write_private
from prefetch.security.mandates import register_mandate
from prefetch.security.pki import DevPki
from prefetch.settings import (
    DatabaseSettings,
    HospitalSettings,
    LspSettings,
    RunSettings,
    Settings,
    ThrottleSettings,
)
from prefetch.store.appointment_book import BookReport

WORLD_SEED = 20261124
WORLD_PATIENTS = 400
APPLICATION_ID = "10008890"
DEMO_CLINICS = frozenset({"CARD", "INT", "LONG", "NEUR", "REUM"})
DEMO_TIME_SCALE = 0.05  # simulated seconds -> real seconds (1.5 s median -> 75 ms)


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


def ensure_clinic_day(data_dir: Path, world: World, clinic_day: dt.date) -> Path:
    """The appointment export (CSV) of `clinic_day` for the world's patients."""
    path = data_dir / f"appointments-{clinic_day.isoformat()}.csv"
    if not path.exists():
        path.write_text(
            clinic_day_csv([p.bsn for p in world.patients], clinic_day), encoding="utf-8"
        )
    return path


DEMO_SOURCE = "demo-csv"  # the demo's export as a source of the appointment book
CLINIC_DAY_GLOB = "appointments-*.csv"


def load_clinic_day(stores: Stores, path: Path, now: dt.datetime) -> BookReport:
    """The clinic day CSV into the appointment book, as `prefetch intake load PATH
    --source demo-csv` applies it (idempotent; its objections into the register)."""
    from prefetch.cli.intake import import_refusals
    from prefetch.sources.formats import read_path

    result = read_path(path, "csv")
    report = stores.book.apply(DEMO_SOURCE, result.received, now=now)
    import_refusals(stores.consent, list(result.appointments), DEMO_SOURCE)
    return report


def load_clinic_days(stores: Stores, data_dir: Path, now: dt.datetime) -> BookReport:
    """Every clinic day CSV of the demo's data directory into the book (the desk's start:
    a data directory from before the demo loaded its day into the book)."""
    report = BookReport()
    for path in sorted(data_dir.glob(CLINIC_DAY_GLOB)):
        report += load_clinic_day(stores, path, now)
    return report
