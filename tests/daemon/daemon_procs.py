"""Daemon processes for the tests: start, read the log, ask /health, stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from daemon_world import DaemonWorld

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

    def events(self) -> list[dict[str, object]]:
        """The JSON log lines."""
        found = []
        for line in self.text().splitlines():
            if line.startswith("{"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    continue
        return found

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
