"""Client CPU of the message part of one query (issue 13 target 2): build, sign, send,
parse, against the real simulator (`ideal`, secure mode: mutual TLS, RSA-4096, every
token verified) in its own process.

    python bench/message_cpu.py [--queries 1000] [--profile]

One thread, one query after another through `LspClient.query`, so the process CPU
(`time.process_time()`) of each stage is the client's own. Stages:
  build   the HL7 query and the SOAP envelope around it, without the signature
  sign    the transactietoken: canonicalise, digest, RSA-4096 signature, placement
  send    the HTTP exchange over mutual TLS (keep-alive) and reading the answer
  parse   the answer into domain values and its classification
build + sign is timed as one (`LspClient.envelope`); the split comes from timing
`build` on its own over the same queries (sign = build_sign - build).
`--profile` prints the top of a cProfile of the timed loop instead of the stage table.

Writes bench/results/message_cpu.json: cpu_ms_build, cpu_ms_sign, cpu_ms_build_sign,
cpu_ms_send, cpu_ms_parse, cpu_ms_message (the sum), cpu_ms_per_query (whole loop).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import functools
import pstats
import random
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from simbench import make_profile, settings_for, setup, simulator, write_result

_cpu: dict[str, float] = defaultdict(float)


def _timed(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            _cpu[stage] += time.process_time() - start

    return wrapper


def _instrument() -> None:
    from prefetch.lsp import client as client_module

    cls = client_module.LspClient
    cls.envelope = _timed("build_sign", cls.envelope)  # type: ignore[method-assign]
    if hasattr(cls, "_exchange"):
        cls._exchange = _timed("send", cls._exchange)
    else:  # before the lean send path: requests' post and the bounded read
        import requests

        requests.Session.post = _timed("send", requests.Session.post)  # type: ignore[method-assign]
        cls._read_bounded = _timed("send", cls._read_bounded)  # type: ignore[attr-defined]
    client_module.parse_answer = _timed("parse", client_module.parse_answer)
    client_module.classify = _timed("parse", client_module.classify)


def _build_seconds(client: Any, all_params: list[Any], mandate_token: bytes | None) -> float:
    """CPU of building the messages without signing them, over `all_params`."""
    templates = getattr(client, "templates", None)
    if templates is not None:  # the template path: everything but digest and signature

        def build(p: Any, *, mandate_token: bytes | None) -> object:
            return templates.prepare(p, mandate_token=mandate_token, now=client.clock.now())

    else:  # before the template path: the HL7 body only
        from prefetch.hl7v3.query import build_query

        def build(p: Any, *, mandate_token: bytes | None) -> object:
            return build_query(p, client.aorta)

    start = time.process_time()
    for p in all_params:
        build(p, mandate_token=mandate_token)
    return time.process_time() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--profile", action="store_true", help="cProfile instead of stages")
    args = parser.parse_args()

    from prefetch.composition import make_lsp_client
    from prefetch.domain.coded import Identifier
    from prefetch.domain.people import Clinician
    from prefetch.hl7v3.params import QueryParams, requester_roots
    from prefetch.security.mandates import register_mandate

    bench = setup(args.patients)
    pki = bench.pki
    profile = make_profile("ideal", time_scale=1.0, rate=None, concurrency=None)
    hospital = pki.hospital.load(bench.passphrase)
    spec = pki.specialist
    overseer = Clinician(
        spec.uzi_number or "", spec.role or "", spec.display_name, pki.hospital_ura
    )
    now = dt.datetime.now(dt.UTC)
    mandate = register_mandate(
        spec.load(bench.passphrase),
        name=overseer.name,
        mandated_id=pki.hospital.uzi_number or "",
        schedules=["demo"],
        valid_from=now - dt.timedelta(hours=1),
        valid_until=now + dt.timedelta(days=1),
        now=now,
    )
    message_root, query_root = requester_roots(pki.hospital_ura)
    rng = random.Random(1)
    since = bench.world.reference_date - dt.timedelta(days=365)

    def params() -> QueryParams:
        return QueryParams(
            bsn=rng.choice(bench.world.patients).bsn,
            message_id=Identifier(message_root, uuid.uuid4().hex),
            query_id=Identifier(query_root, uuid.uuid4().hex),
            created_at=dt.datetime.now(dt.UTC),
            overseer=overseer,
            hospital_ura=pki.hospital_ura,
            hospital_name=pki.hospital_name,
            sender_application_id="10008890",
            author_system_uzi=pki.hospital.uzi_number,
            look_back_from=since,
        )

    all_params = [params() for _ in range(args.queries)]
    with simulator(bench, profile) as sim:
        settings = settings_for(bench, sim.url, rate=1000.0, in_flight=1)
        client = make_lsp_client(settings, hospital)
        for _ in range(20):  # connection up, caches warm
            client.query(params(), mandate_token=mandate.token_xml)
        kinds: dict[str, int] = defaultdict(int)

        def loop() -> float:
            start = time.process_time()
            for p in all_params:
                reply = client.query(p, mandate_token=mandate.token_xml)
                kinds[reply.outcome.kind.value] += 1
            return time.process_time() - start

        if args.profile:
            prof = cProfile.Profile(time.process_time)
            prof.runcall(loop)
            stats = pstats.Stats(prof)
            stats.sort_stats("cumulative").print_stats(45)
            stats.sort_stats("tottime").print_stats(30)
            return 0
        _instrument()
        total = loop()
        stats = sim.stats()
    build = _build_seconds(client, all_params, mandate.token_xml)

    n = args.queries
    received = int(stats["queries_received"])
    figures: dict[str, Any] = {
        "queries": n,
        "outcomes": ",".join(f"{k}={v}" for k, v in sorted(kinds.items())),
        "simulator_received": received,
        "simulator_signature_failures": int(stats["signature_failures"]),
        "cpu_ms_build": round(1000 * build / n, 3),
        "cpu_ms_sign": round(1000 * (_cpu["build_sign"] - build) / n, 3),
        "cpu_ms_build_sign": round(1000 * _cpu["build_sign"] / n, 3),
        "cpu_ms_send": round(1000 * _cpu["send"] / n, 3),
        "cpu_ms_parse": round(1000 * _cpu["parse"] / n, 3),
        "cpu_ms_message": round(1000 * (_cpu["build_sign"] + _cpu["send"] + _cpu["parse"]) / n, 3),
        "cpu_ms_per_query": round(1000 * total / n, 3),
        "loadavg": Path("/proc/loadavg").read_text().split(" ")[0],
    }
    write_result("message_cpu", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
