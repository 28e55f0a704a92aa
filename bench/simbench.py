"""Shared setup of the issue-13 benchmarks: a dev PKI, a world, the simulator in its own
process (so that the client's CPU is the client's), settings, a clinic day, the engine.

Not a benchmark itself; `throughput.py`, `overhead.py`, `baseline.py` and `scale.py` use it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import resource
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).parent
RESULTS = BENCH_DIR / "results"
WORLD_SEED = 20261202


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (this one by default)."""
    fields = Path(f"/proc/{pid or os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb() -> float:
    """VmHWM of this process in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    python = platform.python_version()
    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {python}"


def load_average() -> float:
    """The 1-minute load average (the machine is shared: say how busy it was)."""
    return round(os.getloadavg()[0], 1)


def rsa_sign_ms(bench: Bench, count: int = 50) -> float:
    """CPU ms of one RSA-4096 PKCS#1 v1.5 SHA-256 signature with the bench's hospital key:
    a yardstick of how fast this shared machine runs right now (1.5 ms when it is quiet)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    key = bench.pki.hospital.load(bench.passphrase).private_key
    start = time.process_time()
    for _ in range(count):
        key.sign(b"yardstick", padding.PKCS1v15(), hashes.SHA256())
    return round(1000 * (time.process_time() - start) / count, 2)


def write_result(name: str, figures: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    out = {
        **figures,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    width = max(len(k) for k in out)
    for key, value in out.items():
        print(f"  {key:<{width}}  {value}")
    print(f"written: {path}")
    return path


def make_profile(
    name: str, *, time_scale: float, rate: float | None, concurrency: int | None
) -> Any:
    from prefetch.lspsim.profiles import RateLimit, get_profile

    profile = get_profile(name).with_time_scale(time_scale)
    limits = RateLimit(max_rate=rate * time_scale if rate else None, max_concurrency=concurrency)
    return dataclasses.replace(profile, rate=limits)


def _serve(data_dir: str, world_path: str, profile: Any, conn: Connection) -> None:
    from prefetch.demo.setup import ensure_pki, start_simulator
    from prefetch.lspsim.world import World

    pki, passphrase = ensure_pki(Path(data_dir))
    world = World.load(world_path)
    with start_simulator(world, profile, pki, passphrase) as sim:
        conn.send(sim.url)
        while True:
            what = conn.recv()
            if what == "stats":
                conn.send(sim.stats())
            elif what == "log":
                conn.send(sim.query_log())
            elif what == "reset":
                sim.reset()
                conn.send(True)
            else:
                return


class Sim:
    """The simulator in a child process: `url`, `stats()`, `log()`, `cpu()`."""

    def __init__(self, data_dir: Path, world_path: Path, profile: Any) -> None:
        ctx = mp.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve, args=(str(data_dir), str(world_path), profile, child), daemon=True
        )
        self._proc.start()
        self.url: str = self._conn.recv()

    def _ask(self, what: str) -> Any:
        self._conn.send(what)
        return self._conn.recv()

    def stats(self) -> dict[str, Any]:
        return dict(self._ask("stats"))

    def log(self) -> list[dict[str, Any]]:
        return list(self._ask("log"))

    def reset(self) -> None:
        self._ask("reset")

    def cpu(self) -> float:
        assert self._proc.pid is not None
        return cpu_seconds(self._proc.pid)

    def stop(self) -> None:
        self._conn.send("stop")
        self._proc.join(timeout=10)


@dataclasses.dataclass
class Bench:
    data_dir: Path
    pki: Any
    passphrase: bytes
    world: Any
    world_path: Path


def setup(patients: int, *, key_size: int = 4096) -> Bench:
    from prefetch.demo.setup import ensure_pki
    from prefetch.logging import configure_logging
    from prefetch.lspsim.world import World

    data_dir = Path(tempfile.mkdtemp(prefix="prefetch-bench-"))
    # One JSON line per query and per run, as in production, into a file.
    configure_logging("INFO", "json", stream=(data_dir / "run.log").open("a"))
    pki, passphrase = ensure_pki(data_dir, key_size=key_size)
    world = World.generate(WORLD_SEED, patients)
    world_path = data_dir / "world.json"
    world.save(world_path)
    return Bench(data_dir, pki, passphrase, world, world_path)


@contextmanager
def simulator(bench: Bench, profile: Any) -> Iterator[Sim]:
    sim = Sim(bench.data_dir, bench.world_path, profile)
    try:
        yield sim
    finally:
        sim.stop()


def settings_for(
    bench: Bench,
    url: str,
    *,
    rate: float,
    in_flight: int,
    database_url: str = "",
    jitter_margin: float | None = None,
) -> Any:
    from prefetch.demo.setup import APPLICATION_ID, _passphrase_file
    from prefetch.settings import (
        DatabaseSettings,
        HospitalSettings,
        LspSettings,
        RunSettings,
        Settings,
        ThrottleSettings,
    )

    pki = bench.pki
    return Settings(
        data_dir=str(bench.data_dir),
        hospital=HospitalSettings(
            ura=pki.hospital_ura,
            name=pki.hospital_name,
            application_id=APPLICATION_ID,
            system_uzi=pki.hospital.uzi_number or "",
        ),
        database=DatabaseSettings(url=database_url),
        lsp=LspSettings(
            url=url,
            client_p12=str(pki.hospital.p12),
            ca_file=str(pki.ca_bundle),
            passphrase_file=str(_passphrase_file(bench.data_dir)),
            read_timeout=30.0,
        ),
        throttle=ThrottleSettings(
            rate_per_second=rate,
            max_in_flight=in_flight,
            **({} if jitter_margin is None else {"jitter_margin_seconds": jitter_margin}),
        ),
        run=RunSettings(),
    )


def clinic_day(bench: Bench, patients: int) -> tuple[dt.date, list[Any]]:
    from prefetch.demo.clinic_day import DayMix, clinic_day_csv
    from prefetch.domain.localtime import AMSTERDAM
    from prefetch.sources.csv_source import parse_appointments_csv

    day = dt.datetime.now(dt.UTC).astimezone(AMSTERDAM).date() + dt.timedelta(days=1)
    mix = DayMix(0, 0, 0, 0, 0, 0, 0, 0, 0)
    mix = dataclasses.replace(mix, known=patients)
    bsns = [p.bsn for p in bench.world.patients[:patients]]
    return day, parse_appointments_csv(clinic_day_csv(bsns, day, seed=3, mix=mix))


def first_pass_seconds(log: list[dict[str, Any]]) -> float:
    """From the first query to the first query of the last patient, by the simulator's log."""
    first: dict[str, dt.datetime] = {}
    for q in log:
        at = dt.datetime.fromisoformat(q["at"])
        first.setdefault(q["bsn_sha256"], at)
    if not first:
        return 0.0
    start = min(first.values())
    return (max(first.values()) - start).total_seconds()


def over_rate_windows(log: list[dict[str, Any]], rate: float) -> str:
    """Where the simulator saw more than `rate` queries within one second: the seconds
    (from the first arrival) at which such a window starts, "" when none."""
    arrivals = sorted(dt.datetime.fromisoformat(q["at"]).timestamp() for q in log)
    starts = [f"{arrivals[first] - arrivals[0]:.2f}" for first, _ in windows_over(arrivals, rate)]
    return ",".join(dict.fromkeys(starts))


def windows_over(arrivals: list[float], rate: float) -> Iterator[tuple[int, int]]:
    """(first, last) indices of each window of one second, ending at an arrival, that
    holds more than `rate` of the sorted `arrivals`."""
    first = 0
    for last, at in enumerate(arrivals):
        while at - arrivals[first] >= 1.0:
            first += 1
        if last - first + 1 > rate:
            yield first, last


def run_day(bench: Bench, settings: Any, patients: int) -> dict[str, Any]:
    """Plan and run a day of `patients` through the real engine; wall time and CPU."""
    from prefetch.composition import make_lsp_client, make_prefetcher, open_stores
    from prefetch.demo.setup import demo_schedule, ensure_mandate

    stores = open_stores(settings)
    now = dt.datetime.now(dt.UTC)
    schedule = demo_schedule(bench.pki)
    mandate = ensure_mandate(stores, bench.pki, bench.passphrase, schedule, now)
    client = make_lsp_client(settings, bench.pki.hospital.load(bench.passphrase))
    prefetcher = make_prefetcher(settings, stores, client)
    day, appointments = clinic_day(bench, patients)
    t0, c0 = time.perf_counter(), cpu_seconds()
    prepared = prefetcher.prepare(schedule, day, appointments, mandate=mandate)
    t1, c1 = time.perf_counter(), cpu_seconds()
    report = prefetcher.execute(prepared.run_id, schedule, mandate, clinic_day=day)
    t2, c2 = time.perf_counter(), cpu_seconds()
    stores.engine.dispose()
    return {
        "plan_s": t1 - t0,
        "plan_cpu_s": c1 - c0,
        "wall_s": t2 - t1,
        "cpu_s": c2 - c1,
        "queried": report.queried,
        "by_state": dict(report.summary.by_state),
        "stopped": report.stopped,
        "late_slots_exchanged": getattr(prefetcher.limiter, "exchanged", None),
    }
