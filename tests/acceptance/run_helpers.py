"""A clinic day ready for `prefetch run` processes: dev PKI, a seeded world, the simulator
(mutual TLS, token checks, rate enforcement), settings, schedule, appointments, a migrated
SQLite database and a registered mandate."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from unittest.mock import patch

from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from prefetch.cli import app
from prefetch.composition import (
    Stores,
    load_credential,
    make_lsp_client,
    make_run_locks,
    make_run_services,
    open_stores,
)
from prefetch.demo.clinic_day import DayMix, clinic_day_csv
from prefetch.demo.setup import ensure_pki, start_simulator
from prefetch.domain.localtime import AMSTERDAM
from prefetch.domain.people import Appointment
from prefetch.domain.run import ItemRecord
from prefetch.domain.schedule import Schedule
from prefetch.hl7v3.schema import QUERY_XSD, load_schema
from prefetch.lspsim.profiles import get_profile
from prefetch.lspsim.server import SimulatorServer
from prefetch.lspsim.world import World
from prefetch.run_day import RunServices
from prefetch.schedule_files import load_schedule
from prefetch.security.keys import PASSPHRASE_ENV
from prefetch.settings import load_settings
from prefetch.store.db import make_engine
from prefetch.store.runs import RunRepository
from prefetch.store.tables import AuditRow, DispenseRow
from prefetch.worklist import day_appointments

DAY = dt.date(2030, 6, 4)
TIME_SCALE = 0.05


@dataclass
class RunDay:
    sim: SimulatorServer
    engine: Engine
    run_args: list[str]
    env: dict[str, str]
    config: Path
    day: dt.date = DAY

    def services(self) -> tuple[RunServices, Stores]:
        """The run's services in this process, wired as `prefetch run` wires them."""
        settings = load_settings(self.config)
        stores = open_stores(settings, migrate=False)
        # The passphrase as `prefetch run` gets it, for this call only: left in os.environ
        # it would reach every later test of this process (of this xdist worker).
        with patch.dict(os.environ, {PASSPHRASE_ENV: self.env[PASSPHRASE_ENV]}):
            credential = load_credential(settings)
        client = make_lsp_client(settings, credential)
        return make_run_services(settings, stores, client, locks=make_run_locks(stores)), stores

    def appointments(self, stores: Stores) -> Sequence[Appointment]:
        """The clinic day's appointments as `prefetch run` reads them."""
        path = Path(self.run_args[self.run_args.index("--appointments") + 1])
        return day_appointments(self.schedule(), self.day, book_day=stores.book.day, file=path)

    def schedule(self) -> Schedule:
        return load_schedule(Path(self.run_args[self.run_args.index("--schedule") + 1]))

    def items(self) -> list[ItemRecord]:
        return RunRepository(self.engine).items(f"card:{self.day.isoformat()}")

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
    throttle: str = "",
    schedule: str = "",
    run_at: str = "19:00",
    clinic_day: dt.date = DAY,
    clinics: Sequence[str] = ("CARD", "INT"),
) -> Iterator[RunDay]:
    """`database_url`: None for SQLite in `tmp_path`; `in_flight`: `[throttle]
    max_in_flight` (at most the profile's concurrency); `throttle` and `schedule`: more
    TOML lines for `[throttle]` and the schedule file; `clinics`: the schedule's (the
    export spreads the patients over `prefetch.demo.clinic_day.CLINICS`)."""
    runner = CliRunner()
    pki, passphrase = ensure_pki(tmp_path, key_size=2048)
    world = World.generate(3, patients + 10, reference_date=clinic_day)
    spec = pki.specialist
    (tmp_path / "card.toml").write_text(
        f'id = "card"\nclinics = {json.dumps(list(clinics))}\n'
        f'run_at = "{run_at}"\nmandate = "m-card"\n'
        f"{schedule}\n"
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
    earliest = None
    if clinic_day == dt.datetime.now(AMSTERDAM).date():  # today: appointments still to come
        earliest = (dt.datetime.now(AMSTERDAM) + dt.timedelta(minutes=5)).time()
    bsns = [p.bsn for p in world.patients]
    csv.write_text(clinic_day_csv(bsns, clinic_day, seed=2, mix=mix, earliest=earliest))
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
            f"max_in_flight = {in_flight}\n{throttle}\n"
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
        # The CLI calls above configured the schema set in this process, which forgets
        # the simulator's compiled query schema; compile it again here, before any
        # request, not in the first requests' threads (there libxml2 now and then misses
        # an include and the request fails).
        if sim.service.validates_queries:
            load_schema(QUERY_XSD)
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
                    clinic_day.isoformat(),
                    "-c",
                    str(cfg),
                ],
                env=env,
                config=cfg,
                day=clinic_day,
            )
        finally:
            engine.dispose()


def start_run(day: RunDay) -> subprocess.Popen[str]:
    """`prefetch run` for the day, in a process of its own."""
    return subprocess.Popen(
        [sys.executable, "-m", "prefetch", *day.run_args],
        env=day.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass
class CrashFigures:
    """What SIGKILLs during a run cost. `extras[k]`: queries the LSP saw from the k-th
    killed process whose answer was never recorded (in flight at the kill): each is asked
    again after the restart. `busy_s`: the processes' lifetimes added up (start to exit);
    `wall_s`: first start to last exit (each restart starts right after the kill)."""

    extras: list[int] = field(default_factory=list)
    busy_s: float = 0.0
    wall_s: float = 0.0
    final_code: int | None = None
    final_err: str = ""
    kills: int = 0


#: A process just started sends nothing this soon (the interpreter and its imports take
#: longer): queries arriving until then are the killed process's.
QUIET_START_S = 0.3


def _received(day: RunDay) -> int:
    """Queries the simulator has received (its small stats, not the whole log)."""
    return int(day.sim.stats()["queries_received"])


def _wait_for_queries(day: RunDay, proc: subprocess.Popen[str], count: int) -> bool:
    """Until the simulator has seen `count` queries (True) or the process ended (False)."""
    while proc.poll() is None:
        if _received(day) >= count:
            return True
        time.sleep(0.02)
    return False


def kill_moments(rng: random.Random, kills: int, patients: int) -> list[int]:
    """`kills` random moments of a run, as the number of queries the LSP has seen then."""
    return sorted(rng.sample(range(1, patients), kills))


def _answered_at(engine: Engine) -> list[float]:
    """When each query's answer (or failure) was recorded: `lsp_query_answer` rows."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(AuditRow.occurred_at).where(AuditRow.event_type == "lsp_query_answer")
        ).scalars()
        return [at.timestamp() for at in rows]


def _extras(day: RunDay, kills: Sequence[float]) -> list[int]:
    """Per killed process: queries that reached the LSP during its life (arrival before
    its kill, plus `QUIET_START_S`) minus the answers it recorded (before its kill)."""
    arrived = [dt.datetime.fromisoformat(q["at"]).timestamp() for q in day.sim.query_log()]
    answered = _answered_at(day.engine)
    extras, since = [], float("-inf")
    for killed in kills:
        sent = sum(since + QUIET_START_S <= a < killed + QUIET_START_S for a in arrived)
        extras.append(sent - sum(since <= a < killed for a in answered))
        since = killed
    return extras


def kill_and_restart(day: RunDay, kill_at: Sequence[int], timeout: float = 900.0) -> CrashFigures:
    """Start `prefetch run` and SIGKILL it when the simulator has seen `kill_at[k]`
    queries (or, when that moment has passed, once it sends its first query); restart at
    once; after the last kill run it to the end. The extras are counted afterwards, from
    the simulator's arrival times and the answers' audit times, so nothing is measured
    between a kill and its restart."""
    figures = CrashFigures()
    kills: list[float] = []
    begun = started = time.monotonic()
    proc, seen = start_run(day), _received(day)
    for moment in kill_at:
        if not _wait_for_queries(day, proc, max(moment, seen + 1)):
            break  # the run finished before this kill
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        kills.append(time.time())
        figures.busy_s += time.monotonic() - started
        figures.kills += 1
        started = time.monotonic()
        proc = start_run(day)
        time.sleep(QUIET_START_S)  # the killed process's last queries reach the log
        seen = _received(day)
    _out, figures.final_err = proc.communicate(timeout=timeout)
    figures.final_code = proc.returncode
    figures.busy_s += time.monotonic() - started
    figures.wall_s = time.monotonic() - begun
    time.sleep(QUIET_START_S)
    figures.extras = _extras(day, kills)
    return figures


def uninterrupted_seconds(day: RunDay, timeout: float = 600.0) -> float:
    """One `prefetch run` of the whole day, start to exit."""
    started = time.monotonic()
    proc = start_run(day)
    _out, err = proc.communicate(timeout=timeout)
    assert proc.returncode in (0, 1), err[-2000:]
    return time.monotonic() - started


def unaudited_queries(day: RunDay) -> int:
    """Queries the simulator saw beyond the `lsp_query` audit rows of their patient."""
    seen: dict[str, int] = {}
    for query in day.sim.query_log():
        seen[query["bsn_sha256"]] = seen.get(query["bsn_sha256"], 0) + 1
    audited = audited_queries(day.engine)
    return sum(max(0, n - audited.get(sha, 0)) for sha, n in seen.items())
