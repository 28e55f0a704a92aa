"""Client overhead against the `ideal` simulator with the rate limit lifted (issue 13
target 2): queries per second and CPU milliseconds per query over the whole run, with a
per-stage breakdown (thread CPU time of each stage, summed over the worker threads).

    python bench/overhead.py [--patients 2000] [--in-flight 8]

Stages: build + sign (`LspClient.envelope`), send (the HTTP exchange, `Session.post`
and reading the answer), parse + classify (`parse_answer`, `classify`), claim
(`RunStore.claim_batch`), store (`record_many` with dispenses and audit), limiter
(`reserve_many` and the slots' wait, release and cancel, sleeping excluded). What is
left is the engine itself, logging and threads.

Writes bench/results/overhead.json: queries_per_s, cpu_ms_per_query, cpu_ms_<stage>, and
how busy and how fast the shared machine was: the 1-minute load average and the CPU ms of
one RSA-4096 signature (1.5 ms when quiet), before and after the run.
"""

from __future__ import annotations

import argparse
import functools
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from simbench import (
    load_average,
    make_profile,
    rsa_sign_ms,
    run_day,
    settings_for,
    setup,
    simulator,
    write_result,
)

_cpu: dict[str, float] = defaultdict(float)
_lock = threading.Lock()
_local = threading.local()


def _timed(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` with its thread CPU time added to `stage` (nested stages are not counted twice)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if getattr(_local, "inside", False):
            return fn(*args, **kwargs)
        _local.inside = True
        start = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent = time.thread_time() - start
            _local.inside = False
            with _lock:
                _cpu[stage] += spent

    return wrapper


def _instrument() -> None:

    from prefetch import limiter as limiter_module
    from prefetch.lsp import client as client_module
    from prefetch.store.runs import RunRepository

    client_module.LspClient.envelope = _timed("build_sign", client_module.LspClient.envelope)  # type: ignore[method-assign]
    client_module.LspClient._read_bounded = _timed("send", client_module.LspClient._read_bounded)  # type: ignore[method-assign]
    client_module.LspClient._exchange = _timed("send", client_module.LspClient._exchange)  # type: ignore[method-assign]
    client_module.parse_answer = _timed("parse", client_module.parse_answer)
    client_module.classify = _timed("parse", client_module.classify)
    RunRepository.claim_batch = _timed("claim", RunRepository.claim_batch)  # type: ignore[method-assign]
    RunRepository.record_many = _timed("store", RunRepository.record_many)  # type: ignore[method-assign]
    shared = limiter_module.SharedLimiter
    shared.reserve_many = _timed("limiter", shared.reserve_many)  # type: ignore[method-assign]
    slot = limiter_module._SharedSlot
    for name in ("wait", "release", "cancel"):
        setattr(slot, name, _timed("limiter", getattr(slot, name)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--rate", type=float, default=1000.0, help="our limiter's rate")
    parser.add_argument("--no-stages", action="store_true", help="no per-stage timers")
    parser.add_argument("--database-url", default="", help="default: SQLite in the bench dir")
    args = parser.parse_args()

    bench = setup(args.patients)
    if not args.no_stages:
        _instrument()
    profile = make_profile("ideal", time_scale=1.0, rate=None, concurrency=None)
    load_before, sign_before = load_average(), rsa_sign_ms(bench)
    with simulator(bench, profile) as sim:
        settings = settings_for(
            bench, sim.url, rate=args.rate, in_flight=args.in_flight, database_url=args.database_url
        )
        run = run_day(bench, settings, args.patients)
        stats = sim.stats()
        sim_cpu = sim.cpu()
    sent = int(stats["queries_received"])
    figures: dict[str, Any] = {
        "patients": args.patients,
        "in_flight_cap": args.in_flight,
        "backend": "postgresql" if args.database_url.startswith("postgresql") else "sqlite",
        "queries_sent": sent,
        "wall_s": round(run["wall_s"], 2),
        "queries_per_s": round(sent / run["wall_s"], 1),
        "cpu_ms_per_query": round(1000 * run["cpu_s"] / sent, 2),
        "plan_s": round(run["plan_s"], 2),
        "simulator_cpu_s": round(sim_cpu, 1),
        "late_slots_exchanged": run["late_slots_exchanged"],
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "rsa4096_sign_ms_before": sign_before,
        "rsa4096_sign_ms_after": rsa_sign_ms(bench),
    }
    if not args.no_stages:
        staged = 0.0
        for stage in ("build_sign", "send", "parse", "claim", "store", "limiter"):
            figures[f"cpu_ms_{stage}"] = round(1000 * _cpu[stage] / sent, 2)
            staged += _cpu[stage]
        figures["cpu_ms_rest"] = round(1000 * (run["cpu_s"] - staged) / sent, 2)
    write_result("overhead", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
