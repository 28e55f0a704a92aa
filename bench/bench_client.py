"""Our own LSP client at full speed against the simulator (issue 5, measured "with our
client"): build + sign + send + parse + classify per query, from N threads, no throttle.

The simulator runs in its own process (`ideal` profile, secure mode), so both sides' CPU
is read from /proc: the client's CPU per query is what a production run costs us, the
simulator's share shows it is not the bottleneck.

    python bench/bench_client.py [--queries 1000] [--threads 4] [--key-size 4096]
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing as mp
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_simulator import PASSPHRASE, _cpu_seconds, _serve


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--key-size", type=int, default=4096)
    args = parser.parse_args()

    from prefetch.domain.coded import Identifier
    from prefetch.domain.outcome import OutcomeKind
    from prefetch.domain.people import Clinician
    from prefetch.hl7v3.params import QueryParams, requester_roots
    from prefetch.lsp.client import LspClient, LspEndpoint
    from prefetch.lspsim.world import World
    from prefetch.security.mandates import register_mandate
    from prefetch.security.pki import create_dev_pki
    from prefetch.security.tls import mtls_session

    tmp = Path(tempfile.mkdtemp(prefix="bench-client-"))
    pki = create_dev_pki(tmp / "pki", passphrase=PASSPHRASE, key_size=args.key_size)
    world = World.generate(20261120, args.patients)
    world.save(tmp / "world.json")
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(str(tmp / "pki"), str(tmp / "world.json"), child))
    proc.start()
    url = parent.recv()

    hospital = pki.hospital.load(PASSPHRASE)
    spec = pki.specialist
    overseer = Clinician(
        spec.uzi_number or "", spec.role or "", spec.display_name, pki.hospital_ura
    )
    now = dt.datetime.now(dt.UTC)
    mandate = register_mandate(
        pki.specialist.load(PASSPHRASE),
        name=overseer.name,
        mandated_id=pki.hospital.uzi_number or "",
        schedules=["bench"],
        valid_from=now - dt.timedelta(hours=1),
        valid_until=now + dt.timedelta(days=1),
        now=now,
    )
    session = mtls_session(hospital, pki.ca_bundle, pool_maxsize=args.threads)
    client = LspClient(endpoint=LspEndpoint(url), session=session, credential=hospital)
    message_root, query_root = requester_roots(pki.hospital_ura)
    rng = random.Random(1)
    bsns = [rng.choice(world.patients).bsn for _ in range(args.queries)]
    since = world.reference_date - dt.timedelta(days=365)

    def params(bsn: object) -> QueryParams:
        return QueryParams(
            bsn=bsn,
            message_id=Identifier(message_root, uuid.uuid4().hex),  # type: ignore[arg-type]
            query_id=Identifier(query_root, uuid.uuid4().hex),
            created_at=dt.datetime.now(dt.UTC),
            overseer=overseer,
            hospital_ura=pki.hospital_ura,
            hospital_name=pki.hospital_name,
            sender_application_id="10008890",
            author_system_uzi=pki.hospital.uzi_number,
            look_back_from=since,
        )

    client.query(params(bsns[0]), mandate_token=mandate.token_xml)  # connections warm
    latencies: list[float] = []
    kinds: dict[str, int] = {}
    lock = threading.Lock()

    def worker(index: int) -> None:
        for bsn in bsns[index :: args.threads]:
            start = time.perf_counter()
            reply = client.query(params(bsn), mandate_token=mandate.token_xml)
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                kinds[reply.outcome.kind.value] = kinds.get(reply.outcome.kind.value, 0) + 1

    sim_before, me_before = _cpu_seconds(proc.pid), time.process_time()
    wall_start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - wall_start
    sim_cpu = _cpu_seconds(proc.pid) - sim_before
    my_cpu = time.process_time() - me_before
    parent.send("stop")
    proc.join(timeout=10)
    n = len(latencies)
    lat = sorted(latencies)
    print(
        f"{n} queries with LspClient from {args.threads} threads in {wall:.2f} s "
        f"(RSA {args.key_size})"
    )
    print(f"  rate:       {n / wall:.0f} queries/s")
    print(
        f"  latency:    median {statistics.median(lat) * 1000:.1f} ms, "
        f"p95 {lat[int(0.95 * n)] * 1000:.1f} ms"
    )
    print(f"  client CPU: {1000 * my_cpu / n:.2f} ms per query ({my_cpu / wall:.2f} cores)")
    print(f"  simulator:  {1000 * sim_cpu / n:.2f} ms per query ({sim_cpu / wall:.2f} cores)")
    print(f"  outcomes:   {kinds}")
    failed = kinds.get(OutcomeKind.FAILED.value, 0) + kinds.get(OutcomeKind.TRANSIENT.value, 0)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
