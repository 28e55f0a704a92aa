"""`prefetch lsp-sim world` and `prefetch lsp-sim serve` (a real process, stopped with Ctrl-C)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from prefetch.cli import app
from prefetch.lspsim.world import World
from prefetch.security.pki import DevPki
from prefetch.security.tls import mtls_session

PASSPHRASE = "lspsim cli test passphrase"


def test_world_command_is_deterministic(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["lsp-sim", "world", "--seed", "5", "--patients", "30", "--reference-date", "2026-11-20"]
    first = runner.invoke(app, [*args, "--out", str(tmp_path / "a.json")])
    second = runner.invoke(app, [*args, "--out", str(tmp_path / "b.json")])
    assert first.exit_code == second.exit_code == 0, first.output
    assert "30 patients" in first.output
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    loaded = World.load(tmp_path / "a.json")
    assert len(loaded.patients) == 30 and loaded.seed == 5
    to_stdout = runner.invoke(app, args)
    assert json.loads(to_stdout.output) == loaded.to_json()


def test_world_command_refuses_a_bad_date() -> None:
    result = CliRunner().invoke(
        app,
        ["lsp-sim", "world", "--seed", "1", "--patients", "1", "--reference-date", "20-11-2026"],
    )
    assert result.exit_code == 2


def test_serve_prints_the_url_answers_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    data = tmp_path / "sim"
    # faulthandler: a process that does not stop dumps its threads on SIGABRT (below)
    env = {**os.environ, "PREFETCH_PKI_PASSPHRASE": PASSPHRASE, "PYTHONFAULTHANDLER": "1"}
    # Ctrl-C as in a terminal: a child inherits an ignored SIGINT (this test run started in
    # the background by a shell without job control, `cmd &`), and Python then installs no
    # KeyboardInterrupt handler, so the simulator would ignore the Ctrl-C. Python's own
    # handler here is reset to the default in the child at exec.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = _start_serve(data, env)
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "LSP simulator (ideal, 10 patients) at https://127.0.0.1:" in first, first + (
            proc.stderr.read() if proc.poll() is not None and proc.stderr else ""
        )
        url = first.rsplit(" at ", 1)[1].strip()
        pki = DevPki.load(data / "pki")
        with mtls_session(pki.hospital.load(PASSPHRASE.encode()), pki.ca_bundle) as http:
            stats = http.get(url.replace("/lsp", "/_sim/stats"), timeout=10).json()
        assert stats["queries_received"] == 0
        assert (data / "world.json").is_file()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=60)  # two busy cores: shutdown can lag
        except subprocess.TimeoutExpired:
            masks = _signal_masks(proc.pid) + " (test process: " + _signal_masks(os.getpid()) + ")"
            proc.send_signal(signal.SIGABRT)  # where it hangs, then gone: no process left over
            _out, err = proc.communicate(timeout=30)
            pytest.fail(f"lsp-sim serve did not stop within 60 s of SIGINT; {masks}\n{err[-6000:]}")
    assert proc.returncode == 0, err
    assert "stopped" in out


def _start_serve(data: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "prefetch",
            "lsp-sim",
            "serve",
            "--data",
            str(data),
            "--key-size",
            "2048",
            "--profile",
            "ideal",
            "--patients",
            "10",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )


def _signal_masks(pid: int) -> str:
    """Blocked, ignored and pending signals of a process (Linux), for a failure message."""
    status = Path(f"/proc/{pid}/status")
    if not status.is_file():
        return "no /proc"
    keys = ("SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")
    return " ".join(
        line.replace("\t", "") for line in status.read_text().splitlines() if line.startswith(keys)
    )


def _one_error_line(result: Result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for word in words:
        assert word in lines[0], lines[0]


def _world(*extra: str) -> Result:
    return CliRunner().invoke(app, ["lsp-sim", "world", "--seed", "1", "--patients", "2", *extra])


def _serve(*extra: str) -> Result:
    return CliRunner().invoke(
        app,
        ["lsp-sim", "serve", "--key-size", "2048", "--patients", "2", *extra],
        env={"PREFETCH_PKI_PASSPHRASE": PASSPHRASE},
    )


def test_world_into_a_directory_is_one_error_line(tmp_path: Path) -> None:
    _one_error_line(_world("--out", str(tmp_path)), "cannot write world file")


def test_world_into_a_missing_directory_is_one_error_line(tmp_path: Path) -> None:
    _one_error_line(_world("--out", str(tmp_path / "nonexist" / "w.json")), "cannot write")


def test_serve_with_a_file_as_data_directory_is_one_error_line(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    _one_error_line(_serve("--data", str(afile)), "cannot use data directory")


def test_serve_on_a_port_in_use_is_one_error_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = _serve("--data", str(tmp_path / "sim"), "--port", str(port))
    _one_error_line(result, "cannot listen", f"port={port}")


def test_serve_with_a_mistyped_profile_names_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[rate]\nmax_rate = "x"\n')
    _one_error_line(
        _serve("--data", str(tmp_path / "sim"), "--profile", str(bad)), "key=rate.max_rate"
    )
