"""Dispense upserts per second on SQLite and PostgreSQL (issue 13 target 5).

Each patient's answer is one transaction of `upsert_dispenses` (as `record_outcome` does
it, without the item and audit rows): first every dispense is new (insert), then the same
dispenses again from a later fetch (re-insert: every row refreshed). With --batch N the
same is measured again with N patients' answers per transaction (what a worker recording
its answers in batches would see).

    python bench/store.py [--patients 2000] [--dispenses 10] [--batch 20] [--no-postgres]

Writes bench/results/store.json: upserts_per_s_<backend>_first and _again (one transaction
per patient), and _first_batched / _again_batched.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from bench_store import DEFAULT_PG, T0, dispenses_for, postgres_schema, synthetic_bsns
from simbench import write_result


def measure(url: str, patients: int, per_patient: int, batch: int = 1) -> tuple[float, float]:
    from prefetch.store._support import Sessions
    from prefetch.store.db import make_engine, upgrade
    from prefetch.store.dispenses import upsert_dispenses

    upgrade(url)
    engine = make_engine(url)
    sessions = Sessions(engine)
    bsns = synthetic_bsns(patients)
    rates = []
    try:
        for n, at in enumerate((T0, T0 + dt.timedelta(days=1))):
            answers = [dispenses_for(i, per_patient, at, f"q{n}-{i}") for i in range(len(bsns))]
            began = time.perf_counter()
            written = 0
            for first in range(0, len(bsns), batch):
                with sessions.write() as session:
                    for k in range(first, min(first + batch, len(bsns))):
                        result = upsert_dispenses(session, bsns[k], answers[k])
                        written += result.inserted + result.updated
            assert written == patients * per_patient
            rates.append(written / (time.perf_counter() - began))
    finally:
        engine.dispose()
    return rates[0], rates[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--dispenses", type=int, default=10)
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    figures: dict[str, Any] = {
        "patients": args.patients,
        "dispenses_per_patient": args.dispenses,
        "batch": args.batch,
    }
    for batch, suffix in ((1, ""), (args.batch, "_batched")):
        with tempfile.TemporaryDirectory() as tmp:
            first, again = measure(f"sqlite:///{tmp}/s.db", args.patients, args.dispenses, batch)
        figures[f"upserts_per_s_sqlite_first{suffix}"] = round(first)
        figures[f"upserts_per_s_sqlite_again{suffix}"] = round(again)
        if not args.no_postgres:
            with postgres_schema(args.postgres_url) as url:
                if url is not None:
                    first, again = measure(url, args.patients, args.dispenses, batch)
                    figures[f"upserts_per_s_postgresql_first{suffix}"] = round(first)
                    figures[f"upserts_per_s_postgresql_again{suffix}"] = round(again)
    with open("/proc/loadavg") as load:
        figures["loadavg"] = load.read().split()[0]
    write_result("store", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
