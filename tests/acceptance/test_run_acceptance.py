"""Acceptance of the nightly run as a hostile operator tries it, against the real
simulator and real `prefetch run` processes (SQLite and PostgreSQL):

- SIGKILL at random moments, restarting each time: every eligible patient ends definitive
  exactly once, no dispense twice, every query the simulator saw has its audit row, at
  most 3 attempts per patient, at most one extra query per kill, no rate violation;
- twenty `prefetch run` at once for one schedule and day: one runs, the others exit 3
  naming the process that holds it, or (started after it finished) the run that ran.

The 20-kill, 500-patient version is `bench/crash_restarts.py`.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
from pathlib import Path

import pytest
from run_helpers import (
    DAY,
    audited_queries,
    kill_and_restart,
    kill_moments,
    run_day,
    start_run,
    unaudited_queries,
)
from sqlalchemy import func, select
from typer.testing import CliRunner

from prefetch.cli import app
from prefetch.demo.clinic_day import CLINICS
from prefetch.store.locks import SqlLeaderLock
from prefetch.store.tables import RunRow

pytestmark = pytest.mark.slow


@pytest.mark.timeout(400)
def test_sigkill_at_random_moments_loses_and_doubles_nothing(
    tmp_path: Path, database_url: str
) -> None:
    """One query in flight at a time (`max_in_flight = 1`): a kill loses at most the
    answer of the one query on the wire, so a restart asks at most one query again."""
    kills = 5
    with run_day(
        tmp_path,
        patients=150,
        rate=10.0,
        in_flight=1,
        database_url=database_url,
        clinics=CLINICS,
    ) as day:
        moments = kill_moments(random.Random(20261202), kills, 140)
        figures = kill_and_restart(day, moments)
        assert figures.final_code in (0, 1), figures.final_err[-2000:]
        assert figures.kills == kills
        items = day.items()
        to_query = [i for i in items if i.state.value != "skipped"]
        assert {i.state.value for i in to_query} <= {"done", "failed"}
        assert all(i.attempts <= 3 for i in to_query)
        assert all(i.outcome_detail for i in to_query if i.state.value == "failed")
        assert len({i.patient_local_id for i in items}) == len(items)  # once per patient
        assert day.duplicate_dispenses() == 0
        assert unaudited_queries(day) == 0
        eligible = {hashlib.sha256(i.bsn.encode()).hexdigest() for i in to_query if i.bsn}
        assert {q["bsn_sha256"] for q in day.sim.query_log()} <= eligible
        print(f"kills={kills} extras per kill={figures.extras} busy={figures.busy_s:.1f}s")
        assert all(0 <= n <= 1 for n in figures.extras), figures.extras
        assert day.sim.stats()["violations"]["total"] == 0
        # The operator's view: queries lost with a killed process and asked again (every
        # extra the LSP saw, plus claims killed before they left), one at most per kill.
        status = CliRunner().invoke(
            app, ["status", f"card:{DAY.isoformat()}", "-c", str(day.config)]
        )
        assert status.exit_code == 0, status.output
        found = re.search(r"queries re-sent after a crash: (\d+)", status.output)
        assert found is not None, status.output
        assert sum(figures.extras) <= int(found.group(1)) <= kills


@pytest.mark.timeout(400)
def test_twenty_simultaneous_starts_one_runs_the_others_exit_3_naming_it(
    tmp_path: Path, database_url: str
) -> None:
    with run_day(
        tmp_path, patients=40, rate=25.0, profile="ideal", database_url=database_url
    ) as day:
        # Held by this test: every start must refuse, naming this process.
        lock = SqlLeaderLock(day.engine)
        assert lock.try_acquire(f"run:card:{DAY.isoformat()}")
        refused = [start_run(day) for _ in range(3)]
        for proc in refused:
            _out, err = proc.communicate(timeout=120)
            assert proc.returncode == 3, err[-2000:]
            assert f"already running: pid {os.getpid()}" in err
            assert "Traceback" not in err
        lock.release(f"run:card:{DAY.isoformat()}")
        assert day.sim.stats()["queries_received"] == 0
        # Twenty at once: exactly one runs; a start that finds it running names its
        # process, one that finds it finished names the run and runs nothing.
        procs = [start_run(day) for _ in range(20)]
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
        late = start_run(day)
        _out, err = late.communicate(timeout=120)
        assert late.returncode == 3 and finished in err, err[-2000:]
        assert len(day.sim.query_log()) == len(log)
        # the late ones left no trace: one run, no manual re-run
        with day.engine.connect() as connection:
            assert connection.scalar(select(func.count()).select_from(RunRow)) == 1
