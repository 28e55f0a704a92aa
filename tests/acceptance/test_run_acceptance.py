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
from sqlalchemy import func, select

from prefetch.store.locks import SqlLeaderLock
from prefetch.store.tables import RunRow

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


def test_twenty_simultaneous_starts_one_runs_the_others_exit_3_naming_it(
    tmp_path: Path, database_url: str
) -> None:
    with run_day(
        tmp_path, patients=40, rate=25.0, profile="ideal", database_url=database_url
    ) as day:
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
        # Twenty at once: exactly one runs; a start that finds it running names its
        # process, one that finds it finished names the run and runs nothing.
        procs = [_start(day) for _ in range(20)]
        done = [(proc, *proc.communicate(timeout=300)) for proc in procs]
        ran = [proc for proc, _out, _err in done if proc.returncode != 3]
        assert len(ran) == 1, [(p.returncode, err[-300:]) for p, _o, err in done]
        assert ran[0].returncode == 0, done[procs.index(ran[0])][2][-2000:]
        refusals = [err for proc, _out, err in done if proc.returncode == 3]
        running = f"already running: pid {ran[0].pid} "
        finished = f"already ran: run card:{DAY.isoformat()} finished at "
        assert all(running in err or finished in err for err in refusals), refusals
        assert not any("Traceback" in err for _p, _o, err in done)
        print(
            f"20 starts: 1 ran, {sum(running in e for e in refusals)} found it running, "
            f"{sum(finished in e for e in refusals)} found it finished"
        )
        log = day.sim.query_log()
        assert log and len(log) == len({q["bsn_sha256"] for q in log})  # ideal: one each
        assert sum(audited_queries(day.engine).values()) == len(log)
        assert day.sim.stats()["violations"]["total"] == 0
        # A start after it finished: refused, naming the run; nothing sent.
        late = _start(day)
        _out, err = late.communicate(timeout=120)
        assert late.returncode == 3 and finished in err, err[-2000:]
        assert len(day.sim.query_log()) == len(log)
        # the late ones left no trace: one run, no manual re-run
        with day.engine.connect() as connection:
            assert connection.scalar(select(func.count()).select_from(RunRow)) == 1
