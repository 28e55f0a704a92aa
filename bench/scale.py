"""Planning and running big days (issue 13 target 4): 1,000, 10,000 and 100,000
appointments against `ideal` (no latency, the rate limit lifted), on SQLite and on
PostgreSQL, each size in a fresh process: seconds and peak memory (VmHWM) of the client.

    python bench/scale.py [--sizes 1000,10000,100000] [--run-up-to 100000] [--no-postgres]
                          [--in-flight 8]

The clinic day is a CSV export written to a file (one appointment per patient), read
with `stream_csv` and planned with `Prefetcher.prepare`; then the run is worked through
the real client (mutual TLS, RSA-4096 signatures) against the simulator in its own
process, whose world derives its patients on demand. Sizes above --run-up-to are planned
only; sizes above --run-fully-up-to are run for --run-for seconds (the run's deadline):
their run time per 1,000 is over the queries done by then, against the full-size queue.
Writes bench/results/scale.json: plan_s_/run_s_/peak_rss_mb_/plan_rss_mb_<size>_
<backend>, peak_rss_mb_100k (the larger of the two backends), seconds_per_1k_at_100k_
<backend> (plan + run when run, else plan), and a `note`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from bench_store import DEFAULT_PG, postgres_schema
from simbench import (
    WORLD_SEED,
    Bench,
    cpu_seconds,
    make_profile,
    peak_rss_mb,
    settings_for,
    simulator,
    write_result,
)

HEADER = "appointment_id;patient_id;bsn;bsn_verified;consent;clinic;start;appointment_type;status"
CLINICS = ("CARD", "INT", "LONG", "NEUR", "REUM")  # the demo schedule's clinics


def write_day(path: Path, world: Any, day: dt.date, size: int) -> None:
    """One booked appointment per patient of the world, written a row at a time."""
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER + "\n")
        for n, bsn in enumerate(world.bsns()):
            if n == size:
                break
            minute = 8 * 60 + n % (8 * 60)
            start = f"{day.isoformat()}T{minute // 60:02d}:{minute % 60:02d}"
            clinic = CLINICS[n % len(CLINICS)]
            out.write(f"A{n:07d};P{n:07d};{bsn.value};ja;;{clinic};{start};NP;\n")


def rss_mb() -> float:
    """VmRSS of this process in MB (what it holds now)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def one(
    size: int, url: str, data_dir: Path, run: bool, in_flight: int, run_for: float
) -> dict[str, Any]:
    """Plan (and run) `size` appointments in this process; its figures. `run_for` > 0:
    the run stops at that many seconds (its deadline); the rate is over what it did."""
    from prefetch.composition import make_lsp_client, make_prefetcher, open_stores
    from prefetch.demo.setup import demo_schedule, ensure_mandate, ensure_pki
    from prefetch.domain.localtime import AMSTERDAM
    from prefetch.logging import configure_logging
    from prefetch.lspsim.world import World
    from prefetch.sources.csv_source import stream_csv

    configure_logging("INFO", "json", stream=(data_dir / f"run-{size}.log").open("a"))
    pki, passphrase = ensure_pki(data_dir)
    world = World.derive(WORLD_SEED, size)  # patients computed when asked for, here and
    # in the simulator's process: the bench does not hold the world's data
    world_path = data_dir / f"world-{size}.json"
    world.save(world_path)
    bench = Bench(data_dir, pki, passphrase, world, world_path)
    day = dt.datetime.now(dt.UTC).astimezone(AMSTERDAM).date() + dt.timedelta(days=1)
    csv_path = data_dir / f"day-{size}.csv"
    write_day(csv_path, world, day, size)
    database_url = url or f"sqlite:///{data_dir}/scale-{size}.db"
    profile = make_profile("ideal", time_scale=1.0, rate=None, concurrency=None)
    with simulator(bench, profile) as sim:
        settings = settings_for(
            bench, sim.url, rate=1000.0, in_flight=in_flight, database_url=database_url
        )
        stores = open_stores(settings)
        now = dt.datetime.now(dt.UTC)
        schedule = demo_schedule(pki)
        mandate = ensure_mandate(stores, pki, passphrase, schedule, now)
        client = make_lsp_client(settings, pki.hospital.load(passphrase))
        prefetcher = make_prefetcher(settings, stores, client)
        base = rss_mb()
        t0, c0 = time.perf_counter(), cpu_seconds()
        prepared = prefetcher.prepare(schedule, day, stream_csv(csv_path), mandate=mandate)
        t1, c1 = time.perf_counter(), cpu_seconds()
        plan_rss = peak_rss_mb()
        out: dict[str, Any] = {
            "plan_s": t1 - t0,
            "plan_cpu_s": c1 - c0,
            "plan_rss_mb": plan_rss,
            "base_rss_mb": base,
            "planned": prepared.planned,
        }
        if run:
            deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=run_for) if run_for else None
            report = prefetcher.execute(
                prepared.run_id, schedule, mandate, clinic_day=day, deadline=deadline
            )
            t2, c2 = time.perf_counter(), cpu_seconds()
            done = report.summary.by_state.get("done", 0)
            out.update(
                run_s=t2 - t1,
                run_cpu_s=c2 - c1,
                queried=report.queried,
                done=done,
                run_s_per_1k=(t2 - t1) / max(done, 1) * 1000,
            )
        stores.engine.dispose()
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def _in_process(size: int, url: str, data_dir: Path, run: bool, options: Any) -> dict[str, Any]:
    """One size in a fresh process, so that its peak memory is its own."""
    run_for = options.run_for if size > options.run_fully_up_to else 0.0
    what = "run" if run else "plan"
    args = [str(size), url or "-", str(data_dir), what, str(options.in_flight), str(run_for)]
    out = subprocess.run(
        [sys.executable, __file__, "--one", *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"size {size} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--run-up-to", type=int, default=100_000)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--note", default="")
    parser.add_argument("--run-fully-up-to", type=int, default=10_000)
    parser.add_argument("--run-for", type=float, default=300.0)
    parser.add_argument("--one", nargs=6, metavar=("SIZE", "URL", "DIR", "RUN", "FLIGHT", "FOR"))
    args = parser.parse_args()
    if args.one:
        size, url, data_dir, run, in_flight, run_for = args.one
        got = one(
            int(size),
            "" if url == "-" else url,
            Path(data_dir),
            run == "run",
            int(in_flight),
            float(run_for),
        )
        print(json.dumps(got))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    figures: dict[str, Any] = {"sizes": args.sizes, "run_up_to": args.run_up_to}
    backends = ["sqlite"] + ([] if args.no_postgres else ["postgresql"])
    with tempfile.TemporaryDirectory(prefix="prefetch-scale-") as tmp:
        for name in backends:
            for size in sizes:
                run = size <= args.run_up_to
                started = time.perf_counter()
                if name == "sqlite":
                    got = _in_process(size, "", Path(tmp), run, args)
                else:
                    with postgres_schema(args.postgres_url) as url:
                        if url is None:
                            break
                        got = _in_process(size, url, Path(tmp), run, args)
                print(name, size, "run" if run else "plan", round(time.perf_counter() - started))
                print(
                    "   ", {k: round(v, 2) if isinstance(v, float) else v for k, v in got.items()}
                )
                for key, value in got.items():
                    figures[f"{key}_{size}_{name}"] = round(value, 2)
                if size == 100_000:
                    peak = max(figures.get("peak_rss_mb_100k", 0.0), round(got["peak_rss_mb"], 1))
                    figures["peak_rss_mb_100k"] = peak
                    run_per_1k = got.get("run_s_per_1k", 0.0)
                    figures[f"seconds_per_1k_at_100k_{name}"] = round(
                        got["plan_s"] / 100 + run_per_1k, 2
                    )
                    figures[f"run_at_100k_{name}"] = (
                        "no" if not run else f"{got['done']} of {got['planned']} done"
                    )
    with open("/proc/loadavg") as load:
        figures["loadavg"] = load.read().split()[0]
    cut = [n for n in sizes if args.run_fully_up_to < n <= args.run_up_to]
    notes = [args.note] if args.note else []
    if cut:
        notes.append(
            f"Runs of {', '.join(f'{n:,}' for n in cut)} were stopped at {args.run_for:.0f} s "
            "(the run's deadline, as a schedule's window ends it): their run_s_per_1k and "
            "seconds_per_1k_at_100k are over the queries done by then, against the whole "
            "queue; planning is always of the whole day. Full runs: sizes up to "
            f"{args.run_fully_up_to:,}. Real client (mutual TLS, RSA-4096 signatures) "
            f"against the simulator, ideal profile, rate unlimited, {args.in_flight} in flight."
        )
    if notes:
        figures["note"] = " ".join(notes)
    write_result("scale", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
