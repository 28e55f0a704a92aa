"""How many queries per second the LSP simulator serves with mutual TLS + token checks.

The simulator runs in its own process (`ideal` profile, secure mode: TLS with client
certificates and `EnvelopeVerifier` on every query), so its CPU time can be read from
/proc. The driver signs every query with the dev PKI (a fresh transactietoken each, plus
the mandaattoken) *before* the clock starts, then sends them at full speed over
keep-alive mutual-TLS connections (stdlib `http.client` with the security module's client
context: the lightest client, so that the client's CPU on this 2-core machine does not
hide the server's capacity) from several threads.

    python bench/bench_simulator.py [--queries 2000] [--connections 4] [--key-size 4096]

Prints queries/s, latency percentiles, the simulator's CPU seconds and its CPU share
(of one core and of the machine), and the simulator's own stats. Exit 1 when the rate is
below --target (default 200 queries/s) or any query failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from urllib.parse import urlsplit

PASSPHRASE = b"bench passphrase, throwaway PKI"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def _serve(pki_dir: str, world_path: str, conn: Connection) -> None:
    from prefetch.lspsim.profiles import get_profile
    from prefetch.lspsim.secure import secure_from_dev_pki
    from prefetch.lspsim.server import SimulatorServer
    from prefetch.lspsim.world import World
    from prefetch.security.pki import DevPki

    world = World.load(world_path)
    tls, verifier = secure_from_dev_pki(DevPki.load(Path(pki_dir)), PASSPHRASE)
    with SimulatorServer(world, get_profile("ideal"), tls=tls, verifier=verifier) as sim:
        conn.send(sim.url)
        conn.recv()  # until the parent says stop


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--key-size", type=int, default=4096)
    parser.add_argument("--target", type=float, default=200.0)
    args = parser.parse_args()

    from prefetch.lspsim.driver import SOAP_HEADERS, SignedQueries
    from prefetch.lspsim.world import World
    from prefetch.security.pki import create_dev_pki
    from prefetch.security.tls import client_ssl_context

    tmp = Path(tempfile.mkdtemp(prefix="bench-lspsim-"))
    t0 = time.perf_counter()
    pki = create_dev_pki(tmp / "pki", passphrase=PASSPHRASE, key_size=args.key_size)
    world = World.generate(20261120, args.patients)
    world.save(tmp / "world.json")
    print(
        f"setup: dev PKI RSA {args.key_size} + world of {args.patients} patients "
        f"in {time.perf_counter() - t0:.1f} s"
    )

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(str(tmp / "pki"), str(tmp / "world.json"), child))
    proc.start()
    url = parent.recv()

    queries = SignedQueries(pki, PASSPHRASE)
    rng = random.Random(1)
    since = world.reference_date - dt.timedelta(days=365)
    t0 = time.perf_counter()
    bodies = [
        queries.envelope(queries.params(rng.choice(world.patients).bsn, since=since))
        for _ in range(args.queries)
    ]
    print(f"signed {len(bodies)} queries in {time.perf_counter() - t0:.1f} s (not timed)")

    split = urlsplit(url)
    context = client_ssl_context(queries.hospital, pki.ca_bundle)
    sessions = []
    for _ in range(args.connections):  # TLS handshakes before the clock starts
        conn = http.client.HTTPSConnection(
            split.hostname or "", split.port, context=context, timeout=60
        )
        conn.request("GET", "/_sim/stats")
        conn.getresponse().read()
        sessions.append(conn)
    sessions[0].request("POST", "/_sim/reset", body=b"")
    sessions[0].getresponse().read()

    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    chunks = [bodies[i :: args.connections] for i in range(args.connections)]

    def worker(index: int) -> None:
        conn = sessions[index]
        mine: list[float] = []
        for body in chunks[index]:
            start = time.perf_counter()
            conn.request("POST", split.path, body=body, headers=SOAP_HEADERS)
            response = conn.getresponse()
            content = response.read()
            mine.append(time.perf_counter() - start)
            if response.status != 200:
                with lock:
                    failures.append(f"HTTP {response.status}: {content[:120]!r}")
        with lock:
            latencies.extend(mine)

    cpu_before = _cpu_seconds(proc.pid)
    wall_start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(args.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - wall_start
    cpu = _cpu_seconds(proc.pid) - cpu_before
    sessions[0].request("GET", "/_sim/stats")
    stats = json.loads(sessions[0].getresponse().read())
    parent.send("stop")
    proc.join(timeout=10)
    for s in sessions:
        s.close()

    rate = len(latencies) / wall
    cores = os.cpu_count() or 1
    lat = sorted(latencies)
    print(
        f"\n{len(latencies)} signed queries over {args.connections} keep-alive mTLS "
        f"connections in {wall:.2f} s"
    )
    print(f"  rate:        {rate:.0f} queries/s (target {args.target:.0f})")
    print(
        f"  latency:     median {statistics.median(lat) * 1000:.1f} ms, "
        f"p95 {lat[int(0.95 * len(lat))] * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms"
    )
    print(
        f"  simulator:   {cpu:.2f} CPU s = {cpu / wall:.2f} cores "
        f"({100 * cpu / wall / cores:.0f}% of {cores} cores), "
        f"{1000 * cpu / len(latencies):.2f} CPU ms per query"
    )
    print(
        f"  sim stats:   {stats['queries_received']} received, "
        f"outcomes {stats['by_outcome']}, signature failures {stats['signature_failures']}, "
        f"peak {stats['peak_rate_per_s']}/s, peak concurrency {stats['peak_concurrency']}"
    )
    if failures:
        print(f"  FAILURES: {len(failures)}, first: {failures[0]}")
    return 0 if rate >= args.target and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
