"""Against the naive client a hospital team would write (issue 13 target 3).

The naive client: one patient at a time, one request each, no throttle, no retry; the
same signing (`LspClient`, RSA-4096) and plain inserts of the dispenses into SQLite. Then
our run (engine, shared limiter, store) on the same patients, against the same simulated
LSP (20 queries/s and 50 in flight allowed), in the same invocation, on the same machine:
at time scale 1 on `realistic` and on `ideal` (no latency, the rate limit lifted).

    python bench/baseline.py [--patients 200] [--skip-realistic]

Writes bench/results/baseline.json: naive_realistic_s, ours_realistic_s,
speedup_realistic, naive_lost_realistic, naive_ideal_s, ours_ideal_s, speedup_ideal;
and perfect_pacer_realistic_s, the shortest run a perfect client could have made with
the answers our run got (`pacer_bound.py`), with speedup_ceiling_realistic, the naive
client's time over it: the most any client could have reached against these latencies.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from pacer_bound import SendLog, perfect_pacer_wall
from simbench import Bench, make_profile, run_day, settings_for, setup, simulator, write_result


def naive(bench: Bench, url: str, patients: int) -> tuple[float, int]:
    """Seconds for the naive sequential client, and how many patients it lost."""
    from prefetch.composition import make_lsp_client
    from prefetch.demo.setup import demo_schedule
    from prefetch.domain.coded import Identifier
    from prefetch.domain.outcome import OutcomeKind
    from prefetch.hl7v3.params import QueryParams, requester_roots
    from prefetch.security.mandates import register_mandate

    settings = settings_for(bench, url, rate=1000.0, in_flight=1)
    client = make_lsp_client(settings, bench.pki.hospital.load(bench.passphrase))
    now = dt.datetime.now(dt.UTC)
    schedule = demo_schedule(bench.pki)
    mandate = register_mandate(
        bench.pki.specialist.load(bench.passphrase),
        name=schedule.overseer.name,
        mandated_id=bench.pki.hospital.uzi_number or "",
        schedules=[schedule.id],
        valid_from=now - dt.timedelta(hours=1),
        valid_until=now + dt.timedelta(days=1),
        now=now,
    )
    db = sqlite3.connect(bench.data_dir / f"naive-{uuid.uuid4().hex[:6]}.db")
    db.execute("CREATE TABLE dispenses (bsn TEXT, id TEXT, body TEXT)")
    message_root, query_root = requester_roots(bench.pki.hospital_ura)
    since = bench.world.reference_date - dt.timedelta(days=365)
    lost = 0
    start = time.perf_counter()
    for patient in bench.world.patients[:patients]:
        params = QueryParams(
            bsn=patient.bsn,
            message_id=Identifier(message_root, uuid.uuid4().hex),
            query_id=Identifier(query_root, uuid.uuid4().hex),
            created_at=dt.datetime.now(dt.UTC),
            overseer=schedule.overseer,
            hospital_ura=bench.pki.hospital_ura,
            hospital_name=bench.pki.hospital_name,
            sender_application_id="10008890",
            author_system_uzi=bench.pki.hospital.uzi_number,
            look_back_from=since,
        )
        reply = client.query(params, mandate_token=mandate.token_xml)
        if reply.outcome.kind in (OutcomeKind.TRANSIENT, OutcomeKind.FAILED):
            lost += 1
        for d in reply.outcome.dispenses:
            db.execute(
                "INSERT INTO dispenses VALUES (?, ?, ?)", (patient.bsn.value, str(d.id), repr(d))
            )
        db.commit()
    return time.perf_counter() - start, lost


def compare(bench: Bench, profile: Any, patients: int, rate: float, in_flight: int) -> Any:
    sends = SendLog().install()
    with simulator(bench, profile) as sim:
        naive_s, lost = naive(bench, sim.url, patients)
        sim.reset()
        sends.clear()
        settings = settings_for(
            bench,
            sim.url,
            rate=rate,
            in_flight=in_flight,
            database_url=f"sqlite:///{bench.data_dir / f'ours-{uuid.uuid4().hex[:6]}.db'}",
        )
        ours = run_day(bench, settings, patients)
        stats = sim.stats()
    perfect = perfect_pacer_wall(sends.sends, rate, in_flight)
    return naive_s, lost, ours["wall_s"], stats["violations"]["total"], perfect


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--skip-realistic", action="store_true")
    args = parser.parse_args()

    bench = setup(args.patients)
    figures: dict[str, Any] = {"patients": args.patients}
    ideal = make_profile("ideal", time_scale=1.0, rate=None, concurrency=None)
    n_s, lost, o_s, violations, _ = compare(bench, ideal, args.patients, 1000.0, 8)
    figures.update(
        naive_ideal_s=round(n_s, 2),
        ours_ideal_s=round(o_s, 2),
        speedup_ideal=round(n_s / o_s, 2),
        naive_lost_ideal=lost,
    )
    print(figures)
    if not args.skip_realistic:
        realistic = make_profile("realistic", time_scale=1.0, rate=20.0, concurrency=50)
        n_s, lost, o_s, violations, perfect = compare(bench, realistic, args.patients, 20.0, 50)
        figures.update(
            naive_realistic_s=round(n_s, 2),
            ours_realistic_s=round(o_s, 2),
            speedup_realistic=round(n_s / o_s, 2),
            naive_lost_realistic=lost,
            violations_realistic=violations,
            perfect_pacer_realistic_s=round(perfect, 2),
            speedup_ceiling_realistic=round(n_s / perfect, 2),
        )
    write_result("baseline", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
