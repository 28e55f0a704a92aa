"""`prefetch daemon` as real processes against the simulator over mutual TLS: on SQLite the
first daemon leads and runs the schedule's clinic day (caught up at start: its firing was
two minutes ago), a second one stands by and says who leads; /health answers; SIGTERM
stops both with exit 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from daemon_world import DaemonWorld, make_world

from prefetch.domain.run import RunState
from prefetch.store.db import make_engine
from prefetch.store.runs import RunRepository


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DaemonProcess:
    def __init__(self, world: DaemonWorld, name: str, *, http_port: int = 0) -> None:
        self.log = world.directory / f"{name}.log"
        self.http_port = http_port
        env = dict(os.environ, PREFETCH_DAEMON_HTTP_PORT=str(http_port))
        env.pop("PREFETCH_DATABASE_URL", None)
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "prefetch", "daemon", "-c", str(world.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=world.directory,
            )

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, needle: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            assert self.proc.poll() is None, f"daemon exited: {self.text()[-2000:]}"
            assert time.monotonic() < deadline, f"no {needle!r}: {self.text()[-2000:]}"
            time.sleep(0.1)

    def health(self) -> dict[str, object]:
        url = f"http://127.0.0.1:{self.http_port}/health"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]

    def terminate(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def wait_run_finished(world: DaemonWorld, timeout: float = 90) -> str:
    engine = make_engine(world.database_url)
    try:
        runs = RunRepository(engine)
        deadline = time.monotonic() + timeout
        while True:
            run = runs.find_run("demo", world.clinic_day, "scheduled")
            if run is not None and run.state is RunState.FINISHED:
                return run.id
            assert time.monotonic() < deadline, "run did not finish"
            time.sleep(0.2)
    finally:
        engine.dispose()


@pytest.mark.slow
def test_sqlite_one_daemon_runs_a_second_stands_by(tmp_path: Path) -> None:
    world = make_world(
        tmp_path, f"sqlite:///{tmp_path / 'prefetch.sqlite'}", patients=20, rate=50, in_flight=4
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
