"""Client CPU of the message part of one query (issue 13 target 2): build, sign, send,
parse, against the real simulator (`ideal`, secure mode: mutual TLS, RSA-4096, every
token verified) in its own process.

    python bench/message_cpu.py [--queries 1000] [--profile]

One thread, one query after another through `LspClient.query`, so the process CPU
(`time.process_time()`) of each stage is the client's own. Two clients take turns in
blocks of 50 queries, so both see the same machine load:
  template  what `LspClient` does: envelope from the per-run template (`EnvelopeTemplates`),
            POST through the session's adapter, answers up to 64 KB parsed in one call
  tree      the path before: HL7 and SAML trees built and signed by signxml per query
            (`secure_query`), `Session.post`, the chunked pull parser for every answer
Stages:
  build   template: everything but digest and signature (`EnvelopeTemplates.prepare`);
          tree: the HL7 body (`build_query`), timed on its own over the same queries
  sign    build_sign - build: digest, RSA-4096 signature, envelope
  send    the HTTP exchange over mutual TLS (keep-alive) and reading the answer
  parse   the answer into domain values and its classification
`--profile` prints a cProfile (CPU time) of the template client instead.

Writes bench/results/message_cpu.json: cpu_ms_<stage> (template) and tree_cpu_ms_<stage>,
cpu_ms_message (build + sign + send + parse) for both, and the load average.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
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

BLOCK = 50
_cpu: dict[str, float] = defaultdict(float)
_mode = ["template"]


def _timed(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            _cpu[f"{_mode[0]}:{stage}"] += time.process_time() - start

    return wrapper


def _tree_client_class() -> type:
    from prefetch.lsp.client import LspClient
    from prefetch.security.wssec import secure_query

    class TreeClient(LspClient):
        """The message path before the template: trees and signxml per query, Session.post."""

        def envelope(self, params: Any, *, mandate_token: bytes | None) -> bytes:
            return secure_query(
                params,
                self.credential,
                mandate_token=mandate_token,
                now=self.clock.now(),
                settings=self.aorta,
            )

        def _exchange(self, data: bytes, wire: list[float]) -> Any:
            response = self.session.post(
                self.endpoint.url,
                data=data,
                headers=self._headers,
                timeout=(self.endpoint.connect_timeout, self.endpoint.read_timeout),
                stream=True,
            )
            return response, self._read_bounded(response, wire)

    return TreeClient


def _instrument(tree_cls: type) -> None:
    from prefetch.hl7v3.parse import parse_answer, parse_answer_stream
    from prefetch.lsp import client as client_module

    def parse(data: bytes, **kwargs: Any) -> Any:
        if _mode[0] == "tree":  # every answer through the chunked pull parser, as before
            return parse_answer_stream(io.BytesIO(data), **kwargs)
        return parse_answer(data, **kwargs)

    for cls in (client_module.LspClient, tree_cls):
        cls.envelope = _timed("build_sign", cls.envelope)  # type: ignore[attr-defined]
        cls._exchange = _timed("send", cls._exchange)  # type: ignore[attr-defined]
    client_module.parse_answer = _timed("parse", parse)
    client_module.classify = _timed("parse", client_module.classify)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000, help="per client")
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--profile", action="store_true", help="cProfile instead of stages")
    args = parser.parse_args()

    from prefetch.composition import make_lsp_client
    from prefetch.domain.coded import Identifier
    from prefetch.domain.people import Clinician
    from prefetch.hl7v3.params import QueryParams, requester_roots
    from prefetch.hl7v3.query import build_query
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
    token = mandate.token_xml
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

    n = args.queries
    tree_cls = _tree_client_class()
    with simulator(bench, profile) as sim:
        settings = settings_for(bench, sim.url, rate=1000.0, in_flight=1)
        template = make_lsp_client(settings, hospital)
        base = make_lsp_client(settings, hospital)
        tree = tree_cls(
            endpoint=base.endpoint, session=base.session, credential=hospital, aorta=base.aorta
        )
        clients = {"template": template, "tree": tree}
        for client in clients.values():  # connections up, caches warm
            for _ in range(10):
                client.query(params(), mandate_token=token)
        if args.profile:
            prof = cProfile.Profile(time.process_time)
            batch = [params() for _ in range(n)]
            prof.runcall(lambda: [template.query(p, mandate_token=token) for p in batch])
            stats = pstats.Stats(prof)
            stats.sort_stats("cumulative").print_stats(45)
            stats.sort_stats("tottime").print_stats(30)
            return 0
        _instrument(tree_cls)
        kinds: dict[str, int] = defaultdict(int)
        total: dict[str, float] = defaultdict(float)
        build: dict[str, float] = defaultdict(float)
        for _ in range(0, n, BLOCK):
            for mode, client in clients.items():
                _mode[0] = mode
                batch = [params() for _ in range(BLOCK)]
                start = time.process_time()
                for p in batch:
                    reply = client.query(p, mandate_token=token)
                    kinds[f"{mode}:{reply.outcome.kind.value}"] += 1
                total[mode] += time.process_time() - start
                start = time.process_time()
                for p in batch:
                    if mode == "template":
                        template.templates.prepare(p, mandate_token=token, now=now)
                    else:
                        build_query(p, tree.aorta)
                build[mode] += time.process_time() - start
        stats = sim.stats()

    sent = (n + BLOCK - 1) // BLOCK * BLOCK
    figures: dict[str, Any] = {
        "queries_per_client": sent,
        "outcomes": ",".join(f"{k}={v}" for k, v in sorted(kinds.items())),
        "simulator_received": int(stats["queries_received"]),
        "simulator_signature_failures": int(stats["signature_failures"]),
    }
    for mode in clients:
        prefix = "cpu_ms" if mode == "template" else "tree_cpu_ms"

        def ms(seconds: float) -> float:
            return round(1000 * seconds / sent, 3)

        build_sign = _cpu[f"{mode}:build_sign"]
        send, parse = _cpu[f"{mode}:send"], _cpu[f"{mode}:parse"]
        figures[f"{prefix}_build"] = ms(build[mode])
        figures[f"{prefix}_sign"] = ms(build_sign - build[mode])
        figures[f"{prefix}_send"] = ms(send)
        figures[f"{prefix}_parse"] = ms(parse)
        figures[f"{prefix}_message"] = ms(build_sign + send + parse)
        figures[f"{prefix}_per_query"] = ms(total[mode])
    figures["loadavg"] = Path("/proc/loadavg").read_text().split(" ")[0]
    write_result("message_cpu", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
