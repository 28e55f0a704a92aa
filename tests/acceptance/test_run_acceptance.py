"""Acceptance of the nightly run as a hostile operator tries it, against the real
simulator and real `prefetch run` processes (SQLite):

- SIGKILL at random moments, restarting each time: every eligible patient ends definitive
  exactly once, no dispense twice, every query the simulator saw has its audit row, at
  most 3 attempts per patient, no rate violation;
- many `prefetch run` at once for one schedule and day: one runs, the others exit 3
  naming the holder; nobody is queried twice.

The 20-kill, 500-patient version is `bench/crash_restarts.py`.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from run_helpers import DAY, RunDay, audited_queries, run_day

from prefetch.store.locks import SqlLeaderLock

pytestmark = pytest.mark.slow


def _start(day: RunDay) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "prefetch", *day.run_args],
        env=day.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigkill_at_random_moments_loses_and_doubles_nothing(tmp_path: Path) -> None:
    rng = random.Random(20261202)
    kills = 5
    with run_day(tmp_path, patients=150, rate=25.0, profile="realistic") as day:
        for _ in range(kills):
            proc = _start(day)
            time.sleep(rng.uniform(1.5, 3.5))  # start-up is about a second
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
        final = _start(day)
        out, err = final.communicate(timeout=240)
        assert final.returncode in (0, 1), err[-2000:]
        items = day.items()
        to_query = [i for i in items if i.state.value != "skipped"]
        assert {i.state.value for i in to_query} <= {"done", "failed"}, out
        assert all(i.attempts <= 3 for i in to_query)
        assert all(i.outcome_detail for i in to_query if i.state.value == "failed")
        assert len({i.patient_local_id for i in items}) == len(items)  # once per patient
        assert day.duplicate_dispenses() == 0
        sim_counts: dict[str, int] = {}
        for query in day.sim.query_log():
            sim_counts[query["bsn_sha256"]] = sim_counts.get(query["bsn_sha256"], 0) + 1
        audited = audited_queries(day.engine)
        unaudited = sum(max(0, n - audited.get(sha, 0)) for sha, n in sim_counts.items())
        assert unaudited == 0
        eligible = {hashlib.sha256(i.bsn.encode()).hexdigest() for i in to_query if i.bsn}
        assert set(sim_counts) <= eligible
        stats = day.sim.stats()
        extra = sum(sim_counts.values()) - sum(i.attempts for i in to_query)
        print(f"kills={kills} queries={sum(sim_counts.values())} extra_vs_attempts={extra}")
        assert stats["violations"]["total"] == 0


def test_simultaneous_starts_one_runs_the_others_exit_3_naming_it(tmp_path: Path) -> None:
    with run_day(tmp_path, patients=40, rate=25.0, profile="ideal") as day:
        # Held by this test: every start must refuse, naming this process.
        lock = SqlLeaderLock(day.engine)
        assert lock.try_acquire(f"run:card:{DAY.isoformat()}")
        refused = [_start(day) for _ in range(3)]
        for proc in refused:
            _out, err = proc.communicate(timeout=120)
            assert proc.returncode == 3, err[-2000:]
            assert f"already running: pid {os.getpid()}" in err
            assert "Traceback" not in err
        lock.release(f"run:card:{DAY.isoformat()}")
        assert day.sim.stats()["queries_received"] == 0
        # Twenty at once: whoever gets the lock runs; nobody is queried twice.
        procs = [_start(day) for _ in range(20)]
        codes = []
        for proc in procs:
            _out, err = proc.communicate(timeout=240)
            codes.append(proc.returncode)
            if proc.returncode == 3:
                assert "already running: pid " in err
        assert set(codes) <= {0, 1, 3}, codes
        assert codes.count(3) >= 1, codes
        log = day.sim.query_log()
        assert len(log) == len({q["bsn_sha256"] for q in log})  # ideal: one query each
        assert day.sim.stats()["violations"]["total"] == 0
