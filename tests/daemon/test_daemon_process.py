"""`prefetch daemon` as real processes against the simulator over mutual TLS, on SQLite:
the first daemon leads and works the schedule's clinic day (caught up at start: its
firing was two minutes ago); a second stands by and names the leader; SIGTERM mid-run
lets the queries in flight finish and exits 0; the second takes over and completes the
run, nobody queried twice; /health answers with the audit chain's daily checkpoint."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from pathlib import Path

import pytest
from daemon_procs import DaemonProcess, free_port, wait_run_finished
from daemon_world import DaemonWorld, make_world

from prefetch.lspsim.profiles import Latency, get_profile
from prefetch.store.db import make_engine
from prefetch.store.runs import RunRepository


def _by_state(world: DaemonWorld, run_id: str) -> dict[str, int]:
    engine = make_engine(world.database_url)
    try:
        return dict(RunRepository(engine).summary(run_id).by_state)
    finally:
        engine.dispose()


@pytest.mark.slow
def test_sqlite_one_daemon_works_a_second_stands_by_sigterm_hands_over(
    tmp_path: Path, dev_pki_dir: Path
) -> None:
    slow = dataclasses.replace(
        get_profile("ideal"), latency=Latency(median_s=0.5, sigma=0.1, pharmacy_spread=0.0)
    )
    world = make_world(
        tmp_path,
        f"sqlite:///{tmp_path / 'prefetch.sqlite'}",
        patients=40,  # about 10 s of run: the SIGTERM comes mid-run even on a loaded machine
        rate=50,
        in_flight=2,
        profile=slow,
        pki_from=dev_pki_dir,
    )
    run_id = f"demo:{world.clinic_day.isoformat()}"
    first = DaemonProcess(world, "first", http_port=free_port())
    second: DaemonProcess | None = None
    try:
        first.wait_for("daemon started")
        second = DaemonProcess(world, "second", http_port=free_port())
        second.wait_for("standing by")
        assert f":{first.proc.pid}" in second.text()  # it names the leader
        assert first.health()["role"] == "leader"
        standing = second.health()
        assert standing["role"] == "follower", standing
        assert f":{first.proc.pid}" in json.dumps(standing["checks"]["leadership"])  # type: ignore[index]
        deadline = time.monotonic() + 60
        while (done := _by_state(world, run_id).get("done", 0)) < 4:
            assert time.monotonic() < deadline, "the run did not start"
            time.sleep(0.05)
        assert "lsp_query" not in second.text()  # on SQLite the one standing by does not work
        assert first.terminate() == 0  # SIGTERM mid-run
        # the run as the first left it (the second may already be working it now)
        left = [e for e in first.events() if e.get("event") == "run_finished"][-1]
        assert "items_in_flight" not in left, left  # queries in flight finished
        assert done <= left["items_done"] < 40, left  # and the run is not over
        second.wait_for("leadership_taken")
        wait_run_finished(world)
        health = second.health()
        assert health["role"] == "leader" and health["status"] == "ok", health
        assert run_id in json.dumps(health["checks"])
        audit = health["checks"]["audit_chain"]  # type: ignore[index]
        assert audit["ok"] and "checkpoint" in audit["detail"], audit  # the daily one, signed
        assert second.terminate() == 0
    finally:
        for daemon in (first, second):  # each one, even when the other did not stop in time
            if daemon is not None:
                with contextlib.suppress(Exception):
                    daemon.terminate()
        world.sim.stop()
    assert world.sim.stats()["queries_received"] == 40  # nobody twice
    for daemon in (first, second):
        assert "lsp_query" in daemon.text() and "daemon_stopped" in daemon.text()
