"""Throughput against the `realistic` simulator (issue 13 target 1, issue 10 acceptance 5).

2,000 patients, `realistic` at time scale 1, the LSP allowing 20 queries/s and 50 in
flight, our throttle at the same 20/s and 50: how close the run comes to the bound set by
the rate, and whether the LSP ever saw more than the rate in a second.

    python bench/throughput.py [--patients 2000] [--rate 20] [--in-flight 50]

Writes bench/results/throughput.json: wall_s, bound_s (patients / rate), queries_sent,
efficiency (queries_sent / (rate x wall_s)), first_pass_s, peak_in_flight, violations,
peak_rate_per_s; and what else bounds the run: mean_latency_s, in_flight_bound_s
(queries x mean latency / in-flight cap: below this no run can finish), tail_s (from the
last first query to the end), first_pass_efficiency; and perfect_pacer_wall_s, the
shortest run a perfect client could have made with the same answers (`pacer_bound.py`),
perfect_efficiency (the efficiency of that run: what the LSP's latencies allowed) and
efficiency_vs_perfect (perfect_pacer_wall_s / wall_s: how much of that we reached);
transit_ms_* (from our gate to the simulator's arrival stamp, and the largest in each
window over the rate) and write_ms_* (how long writing a request took after the gate):
the jitter `[throttle] jitter_margin_seconds` must cover.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from pacer_bound import SendLog, perfect_pacer_wall, transit_seconds
from simbench import (
    first_pass_seconds,
    make_profile,
    over_rate_windows,
    run_day,
    settings_for,
    setup,
    simulator,
    windows_over,
    write_result,
)


def ms_at(ordered: list[float], quantile: float) -> float:
    """The `quantile` of sorted seconds, in milliseconds."""
    return round(1000 * ordered[min(int(quantile * len(ordered)), len(ordered) - 1)], 1)


def transit_figures(pairs: list[tuple[float, float]], rate: float) -> dict[str, Any]:
    """How long queries took from our gate to the simulator's arrival stamp: the jitter
    our pacing margin has to absorb; and, for each second at the simulator that held more
    than `rate` arrivals, the largest of them (a late arrival squeezes the next second)."""
    if not pairs:
        return {}
    transits = sorted(t for _at, t in pairs)
    arrivals = sorted(pairs)
    times = [at for at, _t in arrivals]
    late_windows = [
        round(1000 * max(t for _a, t in arrivals[first : last + 1]), 1)
        for first, last in windows_over(times, rate)
    ]
    return {
        "transit_ms_p50": ms_at(transits, 0.5),
        "transit_ms_p99": ms_at(transits, 0.99),
        "transit_ms_max": round(1000 * transits[-1], 1),
        "transit_ms_max_in_violation_windows": late_windows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--name", default="throughput")
    parser.add_argument(
        "--jitter-margin", type=float, default=None, help="[throttle] jitter_margin_seconds"
    )
    args = parser.parse_args()

    sends = SendLog().install()
    bench = setup(args.patients)
    profile = make_profile(
        "realistic", time_scale=args.time_scale, rate=args.rate, concurrency=args.in_flight
    )
    rate = profile.effective_rate
    with simulator(bench, profile) as sim:
        settings = settings_for(
            bench, sim.url, rate=rate, in_flight=args.in_flight, jitter_margin=args.jitter_margin
        )
        run = run_day(bench, settings, args.patients)
        stats, log = sim.stats(), sim.log()
    sent = int(stats["queries_received"])
    figures = {
        "patients": args.patients,
        "rate_per_s": rate,
        "in_flight_cap": args.in_flight,
        "time_scale": args.time_scale,
        "jitter_margin_s": settings.throttle.jitter_margin_seconds,
        "wall_s": round(run["wall_s"], 2),
        "bound_s": round(args.patients / rate, 2),
        "queries_sent": sent,
        "efficiency": round(sent / (rate * run["wall_s"]), 3),
        "first_pass_s": round(first_pass_seconds(log), 2),
        "peak_in_flight": stats["peak_concurrency"],
        "violations": stats["violations"]["total"],
        "peak_rate_per_s": stats["peak_rate_per_s"],
        "violation_windows_at_s": over_rate_windows(log, rate),
        "refused": sum(stats["refused"].values()),
        "items_done": run["by_state"].get("done", 0),
        "items_failed": run["by_state"].get("failed", 0),
        "stopped": run["stopped"],
        "client_cpu_ms_per_query": round(1000 * run["cpu_s"] / max(sent, 1), 2),
        "late_slots_exchanged": run["late_slots_exchanged"],
    }
    # What else bounds the run: the LSP's cap on queries in flight (Little's law: at most
    # in_flight / mean latency queries per second) and the answers still out when the
    # last query has left.
    mean_latency = sends.mean_latency()
    figures["mean_latency_s"] = round(mean_latency, 2)
    figures["in_flight_bound_s"] = round(sent * mean_latency / args.in_flight, 1)
    figures["tail_s"] = round(run["wall_s"] - figures["first_pass_s"], 1)
    figures["first_pass_efficiency"] = round(sent / (rate * max(figures["first_pass_s"], 1e-9)), 3)
    perfect = perfect_pacer_wall(sends.sends, rate, args.in_flight)
    figures["perfect_pacer_wall_s"] = round(perfect, 1)
    figures["perfect_efficiency"] = round(sent / (rate * max(perfect, 1e-9)), 3)
    figures["efficiency_vs_perfect"] = round(perfect / run["wall_s"], 3)
    figures.update(transit_figures(transit_seconds(sends.sends, log), rate))
    writes = sorted(sends.writes) or [0.0]
    figures["write_ms_p99"] = ms_at(writes, 0.99)
    figures["write_ms_max"] = round(1000 * writes[-1], 1)
    write_result(args.name, figures)
    return 0 if figures["violations"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
