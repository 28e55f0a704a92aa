"""Planning and running big days (issue 13 target 4): 1,000, 10,000 and 100,000
appointments against `ideal` (no latency, the rate limit lifted), on SQLite and on
PostgreSQL, each size in a fresh process: seconds and peak memory (VmHWM).

    python bench/scale.py [--sizes 1000,10000,100000] [--run-up-to 10000] [--no-postgres]

Sizes above --run-up-to are planned only (a run of 100,000 queries takes about half an hour
on two shared cores). Writes bench/results/scale.json: plan_s_/run_s_/peak_rss_mb_<size>_
<backend>, peak_rss_mb_100k, seconds_per_1k_at_100k (planning, and running when run).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from bench_store import DEFAULT_PG, postgres_schema
from simbench import (
    make_profile,
    peak_rss_mb,
    run_day,
    settings_for,
    setup,
    simulator,
    write_result,
)


def one(size: int, url: str, run: bool) -> dict[str, Any]:
    bench = setup(size)
    profile = make_profile("ideal", time_scale=1.0, rate=None, concurrency=None)
    with simulator(bench, profile) as sim:
        settings = settings_for(bench, sim.url, rate=1000.0, in_flight=8, database_url=url)
        if run:
            result = run_day(bench, settings, size)
        else:
            from simbench import clinic_day

            from prefetch.composition import make_prefetcher, open_stores
            from prefetch.demo.setup import demo_schedule, ensure_mandate

            stores = open_stores(settings)
            schedule = demo_schedule(bench.pki)
            import datetime as dt

            mandate = ensure_mandate(
                stores, bench.pki, bench.passphrase, schedule, dt.datetime.now(dt.UTC)
            )
            prefetcher = make_prefetcher(settings, stores, sim_gateway_unused())
            day, appointments = clinic_day(bench, size)
            start = time.perf_counter()
            prefetcher.prepare(schedule, day, appointments, mandate=mandate)
            result = {"plan_s": time.perf_counter() - start, "wall_s": None}
    return {"plan_s": result["plan_s"], "run_s": result["wall_s"], "peak_rss_mb": peak_rss_mb()}


def sim_gateway_unused() -> Any:
    """Planning sends nothing: a gateway that refuses to be used."""

    class Unused:
        def query(self, *_args: Any, **_kwargs: Any) -> Any:
            raise AssertionError("planning must not query")

    return Unused()


def _in_process(size: int, url: str, run: str) -> dict[str, Any]:
    """One size in a fresh process, so that its peak memory is its own."""
    out = subprocess.run(
        [sys.executable, __file__, "--one", str(size), url or "-", run],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--run-up-to", type=int, default=10000)
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--one", nargs=3, metavar=("SIZE", "URL", "RUN"))
    args = parser.parse_args()
    if args.one:
        size, url, run = args.one
        print(json.dumps(one(int(size), "" if url == "-" else url, run == "run")))
        return 0
    figures: dict[str, Any] = {}
    backends = ["sqlite"] + ([] if args.no_postgres else ["postgresql"])
    for name in backends:
        for size in (int(s) for s in args.sizes.split(",")):
            run = "run" if size <= args.run_up_to else "plan"
            if name == "sqlite":
                got = _in_process(size, "", run)
            else:
                with postgres_schema(args.postgres_url) as url:
                    if url is None:
                        break
                    got = _in_process(size, url, run)
            print(name, size, run, got)
            for key, value in got.items():
                if value is not None:
                    figures[f"{key}_{size}_{name}"] = round(value, 2)
            if size == 100_000:
                figures["peak_rss_mb_100k"] = max(
                    figures.get("peak_rss_mb_100k", 0.0), round(got["peak_rss_mb"], 1)
                )
                spent = got["plan_s"] + (got["run_s"] or 0.0)
                figures[f"seconds_per_1k_at_100k_{name}"] = round(spent / 100, 2)
                figures[f"run_at_100k_{name}"] = run == "run"
    write_result("scale", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
