"""`prefetch run` before the schedule's window opens, with `--no-wait-window`: one line
naming when it opens, exit 2, nothing planned and nothing sent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from run_helpers import run_day

pytestmark = pytest.mark.slow


def test_no_wait_window_before_the_window_exits_2_and_sends_nothing(tmp_path: Path) -> None:
    # clinic day 2030-06-04, days_ahead 1: the window opens 2030-06-03 18:00 local
    with run_day(
        tmp_path, patients=5, rate=25.0, profile="ideal", schedule='run_window = "18:00-23:00"'
    ) as day:
        proc = subprocess.run(
            [sys.executable, "-m", "prefetch", *day.run_args, "--no-wait-window"],
            env=day.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert "opens at 2030-06-03 18:00 (Europe/Amsterdam)" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert day.items() == []
        assert day.sim.stats()["queries_received"] == 0
