"""SIGKILL during a run, restart, again (issue 10, acceptance 1).

A 500-patient clinic day against the `realistic` simulator (time scale 0.05), run by real
`prefetch run` processes: first once without interruption (the reference time), then on a
fresh database with 20 SIGKILLs at random moments of the run (drawn as the number of
queries the LSP has seen by then), restarting each time, and a last run to the end.
Checked from outside the processes:

- every eligible patient ends definitive (`done` or `failed` with a reason) exactly once,
  at most 3 attempts; no dispense stored twice;
- unaudited: queries in the simulator's log (`/_sim/log`, per BSN hash) beyond the
  patient's `lsp_query` audit rows (target 0);
- extras per kill: queries the killed process sent whose answer was never recorded (they
  were on the wire at the kill; the restart asks again) (target <= 1);
- violations: the simulator's `violations.total` (target 0);
- wall: the killed and restarted run, first start to last exit, against the reference.

    python bench/crash_restarts.py [--patients 500] [--kills 20] [--in-flight 1]
        [--backend sqlite|postgresql|both]

PostgreSQL: `PREFETCH_TEST_POSTGRES_URL` (default postgresql+psycopg://postgres@127.0.0.1/test),
a schema of its own, dropped afterwards. Writes bench/results/crash_restarts.json.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import os
import random
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import make_url

BENCH = Path(__file__).parent
sys.path.insert(0, str(BENCH))
# The acceptance test's own clinic day and kill loop (a project file, loaded by its path so
# that the bench and the test measure the same way).
_spec = importlib.util.spec_from_file_location(
    "run_helpers", BENCH.parent / "tests" / "acceptance" / "run_helpers.py"
)
assert _spec is not None
assert _spec.loader is not None
run_helpers = importlib.util.module_from_spec(_spec)
sys.modules["run_helpers"] = run_helpers
_spec.loader.exec_module(run_helpers)
RunDay = run_helpers.RunDay
kill_and_restart = run_helpers.kill_and_restart
kill_moments = run_helpers.kill_moments
run_day = run_helpers.run_day
unaudited_queries = run_helpers.unaudited_queries
uninterrupted_seconds = run_helpers.uninterrupted_seconds
from simbench import write_result  # noqa: E402

from prefetch.demo.clinic_day import CLINICS  # noqa: E402

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def database(backend: str, directory: Path) -> Iterator[str | None]:
    """None (SQLite in `directory`) or a PostgreSQL URL on a schema of its own."""
    if backend == "sqlite":
        yield None
        return
    base = os.environ.get("PREFETCH_TEST_POSTGRES_URL", POSTGRES)
    dsn = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
    schema = f"prefetch_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def check(day: RunDay) -> dict[str, Any]:
    items = day.items()
    queried = [i for i in items if i.state.value != "skipped"]
    states = collections.Counter(i.state.value for i in queried)
    return {
        "patients_to_query": len(queried),
        "definitive": states["done"] + states["failed"],
        "failed": states["failed"],
        "failed_without_reason": sum(
            1 for i in queried if i.state.value == "failed" and not i.outcome_detail
        ),
        "patients_twice": len(items) - len({i.patient_local_id for i in items}),
        "max_attempts": max((i.attempts for i in queried), default=0),
        "duplicate_dispenses": day.duplicate_dispenses(),
        "unaudited": unaudited_queries(day),
        "queries": len(day.sim.query_log()),
        "violations": int(day.sim.stats()["violations"]["total"]),
    }


def bench(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    knobs = {
        "patients": args.patients,
        "rate": args.rate,
        "in_flight": args.in_flight,
        "clinics": CLINICS,  # every patient of the export is the schedule's
    }
    with tempfile.TemporaryDirectory() as tmp:
        ref_dir, crash_dir = Path(tmp, "reference"), Path(tmp, "crash")
        ref_dir.mkdir()
        crash_dir.mkdir()
        with (
            database(backend, ref_dir) as url,
            run_day(ref_dir, database_url=url, **knobs) as day,
        ):
            reference_s = uninterrupted_seconds(day)
            reference = check(day)
        with (
            database(backend, crash_dir) as url,
            run_day(crash_dir, database_url=url, **knobs) as day,
        ):
            moments = kill_moments(random.Random(args.seed), args.kills, reference["queries"])
            figures = kill_and_restart(day, moments)
            crashed = check(day)
    extras = figures.extras
    histogram = collections.Counter(extras)
    return {
        "uninterrupted_s": round(reference_s, 1),
        "uninterrupted_queries": reference["queries"],
        "kills": figures.kills,
        "final_exit": figures.final_code,
        "wall_s": round(figures.wall_s, 1),
        "busy_s": round(figures.busy_s, 1),
        "wall_ratio": round(figures.wall_s / reference_s, 2),
        "extras_total": sum(extras),
        "extras_max": max(extras, default=0),
        "extras_per_kill": ",".join(str(n) for n in extras),
        "extras_histogram": " ".join(f"{k}:{histogram[k]}" for k in sorted(histogram)),
        **crashed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--in-flight", type=int, default=1)
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--name", default="crash_restarts")
    args = parser.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    results = {b: bench(b, args) for b in backends}
    keys = [k for k in next(iter(results.values())) if k != "extras_per_kill"]
    print(f"\n{'figure':<24}" + "".join(f"{b:>16}" for b in backends))
    for key in keys:
        print(f"{key:<24}" + "".join(f"{results[b][key]!s:>16}" for b in backends))
    for b in backends:
        print(f"extras per kill, {b}: {results[b]['extras_per_kill']}")
    flat = {
        "patients": args.patients,
        "kills_asked": args.kills,
        "rate_per_s": args.rate,
        "in_flight_cap": args.in_flight,
        "load_average": Path("/proc/loadavg").read_text().split()[0],
        **{f"{b}_{k}": v for b, r in results.items() for k, v in r.items()},
    }
    write_result(args.name, flat)
    ok = all(
        r["unaudited"] == 0
        and r["violations"] == 0
        and r["duplicate_dispenses"] == 0
        and r["definitive"] == r["patients_to_query"]
        and r["extras_max"] <= 1
        and r["wall_ratio"] <= 2.0
        for r in results.values()
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
