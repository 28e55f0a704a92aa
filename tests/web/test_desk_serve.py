"""`prefetch desk` as an operator starts it: a process serving the configured database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from typer.testing import CliRunner

from prefetch.cli import app


def test_prefetch_desk_serves_the_configured_database(tmp_path: Path) -> None:
    config = tmp_path / "prefetch.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n')
    assert CliRunner().invoke(app, ["db", "upgrade", "-c", str(config)]).exit_code == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFETCH_")}
    log = tmp_path / "desk.log"
    with (
        log.open("wb") as out,
        subprocess.Popen(
            [sys.executable, "-m", "prefetch", "desk", "-c", str(config), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        ) as process,
    ):
        _check_served(process, port, log, tmp_path)


def _check_served(process: subprocess.Popen[bytes], port: int, log: Path, data: Path) -> None:
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = requests.get(
                    f"http://127.0.0.1:{port}/werklijst", timeout=2, allow_redirects=False
                )
                break
            except requests.ConnectionError:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the desk did not start"
                time.sleep(0.2)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/aanmelden")
        assert requests.get(f"http://127.0.0.1:{port}/aanmelden", timeout=5).status_code == 200
        assert (data / "desk.secret").stat().st_mode & 0o777 == 0o600
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_desk_demo_without_demo_data_says_what_to_do(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["desk", "--demo", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert "run `prefetch demo --data-dir" in result.output


def test_desk_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    config = tmp_path / "prefetch.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n')
    result = CliRunner().invoke(app, ["desk", "-c", str(config)])
    assert result.exit_code == 2
    assert "prefetch db upgrade" in result.output
