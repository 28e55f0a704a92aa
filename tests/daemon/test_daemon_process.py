"""`prefetch daemon` as real processes against the simulator over mutual TLS: on SQLite the
first daemon leads and runs the schedule's clinic day (caught up at start: its firing was
two minutes ago), a second one stands by and says who leads; /health answers; SIGTERM
stops both with exit 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from daemon_procs import DaemonProcess, free_port, wait_run_finished
from daemon_world import make_world


@pytest.mark.slow
def test_sqlite_one_daemon_runs_a_second_stands_by(tmp_path: Path, dev_pki_dir: Path) -> None:
    world = make_world(
        tmp_path,
        f"sqlite:///{tmp_path / 'prefetch.sqlite'}",
        patients=20,
        rate=50,
        in_flight=4,
        pki_from=dev_pki_dir,
    )
    first = DaemonProcess(world, "first", http_port=free_port())
    second: DaemonProcess | None = None
    try:
        first.wait_for("daemon started")
        run_id = wait_run_finished(world)
        second = DaemonProcess(world, "second")
        second.wait_for("standing by")
        assert f":{first.proc.pid}" in second.text()
        health = first.health()
        assert health["role"] == "leader" and health["status"] == "ok", health
        assert run_id in json.dumps(health["checks"])
        audit = health["checks"]["audit_chain"]  # type: ignore[index]
        assert audit["ok"] and "checkpoint" in audit["detail"], audit  # the daily one, signed
        assert first.terminate() == 0
        assert second.terminate() == 0
    finally:
        first.terminate()
        if second is not None:
            second.terminate()
        world.sim.stop()
    stats = world.sim.stats()
    assert stats["queries_received"] == 20
    assert "daemon_run" in first.text() and "lsp_query" in first.text()
    assert "daemon_stopped" in first.text()
