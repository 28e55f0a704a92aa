"""Seeded fault and latency plans per profile."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from prefetch.lspsim.faults import plan_query, retry_after_header
from prefetch.lspsim.profiles import BUILTIN, FailureForm, Latency

PHARMACIES = ["00011111", "00022222", "00033333"]


def _plans(profile_name: str, n: int = 2000):  # type: ignore[no-untyped-def]
    profile = BUILTIN[profile_name]
    return [
        plan_query(profile, bsn=f"9999{i:05d}", attempt=0, pharmacies=PHARMACIES) for i in range(n)
    ]


def test_ideal_never_fails_or_waits() -> None:
    plans = _plans("ideal")
    assert all(p.failure is None and p.delay_s == 0 and not p.timed_out for p in plans)


def test_flaky_fails_about_thirty_percent_with_every_form() -> None:
    counts = Counter(p.failure for p in _plans("flaky", 4000))
    failed = sum(v for k, v in counts.items() if k is not None) / 4000
    assert 0.26 <= failed <= 0.34
    assert set(FailureForm) <= set(counts)


def test_realistic_latency_shape() -> None:
    plans = _plans("realistic", 3000)
    delays = sorted(p.delay_s for p in plans if p.failure is None)
    median = delays[len(delays) // 2]
    assert 1.0 < median < 6.0  # the slowest of up to three pharmacies
    assert max(delays) <= BUILTIN["realistic"].latency.pharmacy_timeout_s
    partial = sum(1 for p in plans if p.timed_out)
    assert 0 < partial < 0.1 * len(plans)
    failed = sum(1 for p in plans if p.failure is not None)
    assert 0 < failed < 0.05 * len(plans)


def test_same_seed_bsn_and_attempt_give_the_same_plan_and_retries_differ() -> None:
    profile = BUILTIN["flaky"]
    a = plan_query(profile, bsn="999900444", attempt=0, pharmacies=PHARMACIES)
    b = plan_query(profile, bsn="999900444", attempt=0, pharmacies=PHARMACIES)
    assert a == b
    retries = {
        plan_query(profile, bsn="999900444", attempt=k, pharmacies=PHARMACIES).failure
        for k in range(30)
    }
    assert None in retries and len(retries) > 1
    other_seed = dataclasses.replace(profile, seed=1)
    assert [
        plan_query(other_seed, bsn="999900444", attempt=k, pharmacies=PHARMACIES) for k in range(20)
    ] != [plan_query(profile, bsn="999900444", attempt=k, pharmacies=PHARMACIES) for k in range(20)]


def test_time_scale_shrinks_the_wait() -> None:
    slow = dataclasses.replace(BUILTIN["realistic"], faults=BUILTIN["ideal"].faults)
    fast = slow.with_time_scale(0.01)
    for i in range(50):
        a = plan_query(slow, bsn=f"99990{i:04d}", attempt=0, pharmacies=PHARMACIES)
        b = plan_query(fast, bsn=f"99990{i:04d}", attempt=0, pharmacies=PHARMACIES)
        assert b.delay_s == pytest.approx(a.delay_s * 0.01)
        assert a.timed_out == b.timed_out


def test_every_pharmacy_slower_than_the_timeout_times_out() -> None:
    profile = dataclasses.replace(
        BUILTIN["ideal"],
        latency=Latency(median_s=10.0, sigma=0.01, pharmacy_spread=0.0, pharmacy_timeout_s=5.0),
    )
    plan = plan_query(profile, bsn="999900444", attempt=0, pharmacies=PHARMACIES)
    assert plan.timed_out == frozenset(PHARMACIES)
    assert plan.delay_s == pytest.approx(5.0)


def test_outage_overrides_the_plan() -> None:
    plan = plan_query(
        BUILTIN["outage"], bsn="999900444", attempt=0, pharmacies=PHARMACIES, in_outage=True
    )
    assert plan.failure is FailureForm.HTTP_503


def test_retry_after_is_whole_seconds() -> None:
    assert retry_after_header(BUILTIN["ideal"], 2.0) == "2"
    assert retry_after_header(BUILTIN["ideal"].with_time_scale(0.01), 2.0) == "1"
    assert retry_after_header(BUILTIN["ideal"].with_time_scale(0), 2.0) == "0"
