"""Acceptance 4 of the nightly run against the real simulator: an LSP in trouble.

- `flaky` (about 30% transient failures of every kind): the simulator never sees more
  than 3 queries for one patient, and every patient ends definitive (`done`) or `failed`
  with a reason.
- `outage` (every query fails with HTTP 503 for a while, then the LSP recovers): the
  circuit breaker opens, and the run completes after the recovery; when the schedule's
  window closes during the outage, the run ends `incomplete` with counts that add up.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from run_helpers import RunDay, run_day

from prefetch.demo.clinic_day import CLINICS
from prefetch.domain.localtime import AMSTERDAM
from prefetch.domain.run import ItemRecord, RunState
from prefetch.run_day import RunRequest, RunResult, run_schedule_day

pytestmark = pytest.mark.slow
FINAL = {"done", "failed"}


def _per_patient(day: RunDay) -> collections.Counter[str]:
    return collections.Counter(q["bsn_sha256"] for q in day.sim.query_log())


def _queried(items: list[ItemRecord]) -> list[ItemRecord]:
    return [i for i in items if i.state.value != "skipped"]


@pytest.mark.timeout(400)
def test_flaky_never_more_than_3_attempts_and_every_patient_ends_with_a_reason(
    tmp_path: Path, database_url: str
) -> None:
    with run_day(
        tmp_path,
        patients=80,
        rate=25.0,
        profile="flaky",
        database_url=database_url,
        clinics=CLINICS,
    ) as day:
        proc = subprocess.run(
            [sys.executable, "-m", "prefetch", *day.run_args],
            env=day.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert proc.returncode in (0, 1), proc.stderr[-2000:]
        items = _queried(day.items())
        assert len(items) >= 80
        assert {i.state.value for i in items} <= FINAL, proc.stdout
        assert all(1 <= i.attempts <= 3 for i in items if i.bsn)
        failed = [i for i in items if i.state.value == "failed"]
        assert all(i.outcome_detail for i in failed)
        seen = _per_patient(day)
        assert max(seen.values()) <= 3, seen.most_common(3)
        by_bsn = {hashlib.sha256(i.bsn.encode()).hexdigest(): i for i in items if i.bsn}
        assert set(seen) <= set(by_bsn)
        # the flaky LSP made some patients need a second or third query
        assert any(n > 1 for n in seen.values())
        # the query the simulator saw last decides: a patient it failed three times failed
        assert day.sim.stats()["violations"]["total"] == 0
        print(
            f"flaky: {len(items)} patients, queries {sum(seen.values())}, "
            f"per patient {sorted(collections.Counter(seen.values()).items())}, "
            f"failed {len(failed)}: {collections.Counter(i.outcome_detail for i in failed)}"
        )


class BreakerWatch:
    """Reads the breaker's state every few milliseconds while the run works."""

    def __init__(self, breaker: object) -> None:
        self.breaker = breaker
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            state = self.breaker.state  # type: ignore[attr-defined]
            if not self.seen or self.seen[-1] != state:
                self.seen.append(state)

    def __enter__(self) -> BreakerWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _run_watching(day: RunDay) -> tuple[RunResult, list[str], RunState | None]:
    services, stores = day.services()
    try:
        with BreakerWatch(services.limiter.breaker) as watch:
            result = run_schedule_day(
                services, RunRequest(day.schedule(), day.day, day.appointments(stores))
            )
        record = services.runs.get_run(result.run_id)
        return result, watch.seen, record.state if record else None
    finally:
        stores.engine.dispose()


BREAKER = "breaker_failures = 3\nbreaker_reset_seconds = 1.0\n"


@pytest.mark.timeout(400)
def test_outage_opens_the_breaker_then_the_run_completes_after_recovery(
    tmp_path: Path, database_url: str
) -> None:
    # outage: 60 s at time scale 0.05, 3 s of HTTP 503 from the first query on
    with run_day(
        tmp_path,
        patients=40,
        rate=25.0,
        profile="outage",
        database_url=database_url,
        throttle=BREAKER,
    ) as day:
        result, seen, state = _run_watching(day)
        assert "open" in seen, seen
        assert seen.index("open") < len(seen) - 1  # and it closed again (probe succeeded)
        assert seen[-1] == "closed", seen
        assert result.status in ("complete", "failures"), result.summary
        assert state is RunState.FINISHED
        items = _queried(day.items())
        assert {i.state.value for i in items} <= FINAL
        assert all(i.outcome_detail for i in items if i.state.value == "failed")
        seen_per_patient = _per_patient(day)
        assert max(seen_per_patient.values()) <= 3
        # most patients were answered after the recovery, not failed by the outage
        done = sum(i.state.value == "done" for i in items)
        assert done >= len(items) * 0.8, result.summary
        outcomes = collections.Counter(q["outcome"] for q in day.sim.query_log())
        print(f"outage: breaker {seen}, queries {dict(outcomes)}, done {done}/{len(items)}")


@pytest.mark.timeout(400)
def test_outage_past_the_window_ends_incomplete_with_honest_counts(
    tmp_path: Path, database_url: str
) -> None:
    # today's clinic day (days_ahead 0) with a window that closes at the next full minute,
    # while the outage (60 s at time scale 1) is still on
    now = dt.datetime.now(AMSTERDAM)
    closes = (now + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)
    if (closes - now).total_seconds() < 8:  # the run needs a few seconds to start
        closes += dt.timedelta(minutes=1)
    opens = now - dt.timedelta(minutes=1)
    if closes.date() != opens.date():
        pytest.skip("the window would cross midnight")
    with run_day(
        tmp_path,
        patients=40,
        rate=25.0,
        profile="outage",
        database_url=database_url,
        # a probe every 5 s: the window closes before the probes fail every patient
        throttle="breaker_failures = 3\nbreaker_reset_seconds = 5.0\n",
        clinics=CLINICS,
        time_scale=1.0,
        run_at=f"{opens:%H:%M}",
        schedule=f'run_window = "{opens:%H:%M}-{closes:%H:%M}"\ndays_ahead = 0',
        clinic_day=now.date(),
    ) as day:
        result, seen, state = _run_watching(day)
        assert dt.datetime.now(AMSTERDAM) >= closes
        assert "open" in seen, seen
        assert result.status == "incomplete", result.summary
        assert state is RunState.INCOMPLETE
        summary = result.summary
        items = _queried(day.items())
        by_state = collections.Counter(i.state.value for i in items)
        assert summary.open == by_state["pending"] + by_state["retry_wait"] > 0
        assert by_state["in_flight"] == 0  # nothing left claimed
        assert summary.to_query == len(items)
        assert summary.definitive == by_state["done"] + by_state["failed"]
        assert all(i.attempts <= 3 for i in items)
        assert max(_per_patient(day).values()) <= 3
        print(f"outage past the window: breaker {seen}, items {dict(by_state)}")


def test_an_outage_alone_fails_no_patient(tmp_path: Path) -> None:
    """The breaker's half-open trial is a real patient's query: it must not exhaust one
    patient's attempts probe after probe (the trial goes to the most attempts left)."""
    # 60 s of outage at time scale 0.25: 15 s, about 15 breaker resets of 1 s
    with run_day(
        tmp_path, patients=30, rate=25.0, profile="outage", throttle=BREAKER, time_scale=0.25
    ) as day:
        result, seen, _state = _run_watching(day)
        assert "open" in seen
        failed = [i for i in _queried(day.items()) if i.state.value == "failed"]
        print(f"outage of 15 s: {len(failed)} patients failed, {result.summary.by_state}")
        assert failed == []
