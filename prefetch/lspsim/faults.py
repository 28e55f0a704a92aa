"""Seeded decisions for one query: which failure (if any), how long, who times out.

Pure: the decision depends only on the profile, the pharmacies registered for the
patient and `(profile.seed, BSN, attempt)`, where `attempt` counts the queries for that
BSN since start or reset. The same client behaviour therefore meets the same faults,
even when queries for different patients run concurrently in another order.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from prefetch.lspsim.profiles import FailureForm, Profile


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """What the simulator will do with one admitted query."""

    failure: FailureForm | None
    delay_s: float  # real seconds before the answer goes out
    timed_out: frozenset[str] = frozenset()  # URAs that missed the pharmacy time-out
    cut_fraction: float = 0.5  # where a truncated answer is cut


def pharmacy_factor(profile: Profile, ura: str) -> float:
    """The per-pharmacy median multiplier: some pharmacy systems are slower than others."""
    spread = profile.latency.pharmacy_spread
    if spread <= 0:
        return 1.0
    rng = random.Random(f"{profile.seed}:pharmacy:{ura}")  # noqa: S311 - seeded simulation
    return rng.lognormvariate(0.0, spread)


def _draw_failure(rng: random.Random, profile: Profile) -> FailureForm | None:
    roll = rng.random()
    edge = 0.0
    for form, probability in profile.faults.table():
        edge += probability
        if roll < edge:
            return form
    return None


def plan_query(
    profile: Profile, *, bsn: str, attempt: int, pharmacies: Sequence[str], in_outage: bool = False
) -> QueryPlan:
    """Decide the fate of the `attempt`-th query for `bsn` (registered at `pharmacies`)."""
    rng = random.Random(f"{profile.seed}:{bsn}:{attempt}")  # noqa: S311 - seeded simulation
    failure = _draw_failure(rng, profile)
    cut = 0.2 + 0.6 * rng.random()
    lat = profile.latency
    times: dict[str, float] = {}
    if lat.median_s > 0:
        for ura in pharmacies:
            median = lat.median_s * pharmacy_factor(profile, ura)
            times[ura] = min(lat.cap_s, rng.lognormvariate(math.log(median), lat.sigma))
    if in_outage:
        return QueryPlan(failure=profile.outage.form, delay_s=0.0, cut_fraction=cut)
    timed_out = frozenset(u for u, t in times.items() if t > lat.pharmacy_timeout_s)
    wait = min(max(times.values(), default=0.0), lat.pharmacy_timeout_s)
    if failure is FailureForm.HTTP_503:
        wait = 0.0  # the front door refuses at once
    elif failure is FailureForm.QABRTITI:
        wait = lat.pharmacy_timeout_s if lat.median_s > 0 else 0.0
    return QueryPlan(
        failure=failure, delay_s=profile.scaled(wait), timed_out=timed_out, cut_fraction=cut
    )


def retry_after_header(profile: Profile, seconds: float) -> str:
    """Retry-After in whole seconds (HTTP delay-seconds), scaled, at least 1 if any wait."""
    scaled = profile.scaled(seconds)
    return str(max(1, math.ceil(scaled)) if scaled > 0 else 0)
