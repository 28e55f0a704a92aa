"""Leadership: one holder at a time, named; a dead holder (process killed) is replaced at
once; environments (schemas) do not share a lock. Real PostgreSQL, real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from prefetch.leader import FileLeaderLock, PostgresLeaderLock, libpq_url

HOLD = """
import sys, time
from pathlib import Path
from prefetch.leader import {cls}
lock = {cls}({arg})
assert lock.try_acquire()
print("held", flush=True)
time.sleep(60)
"""


def _holder_process(cls: str, arg: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD.format(cls=cls, arg=arg)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def _reap(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _kill_holder_then_take_over(lock: PostgresLeaderLock | FileLeaderLock, arg: str) -> float:
    """Another process takes the lock; SIGKILL it; seconds until `lock` is ours."""
    proc = _holder_process(type(lock).__name__, arg)
    try:
        assert not lock.try_acquire()
        assert f":{proc.pid}" in (lock.holder() or "")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        started = time.monotonic()
        while not lock.try_acquire():
            assert time.monotonic() - started < 30, "leadership not taken over"
            time.sleep(0.1)
        return time.monotonic() - started
    finally:
        _reap(proc)
        lock.release()


def test_file_lock_one_holder_then_the_next(tmp_path: Path) -> None:
    path = tmp_path / "prefetch.sqlite.daemon-lock"
    first, second = FileLeaderLock(path), FileLeaderLock(path)
    assert first.try_acquire() and first.still_held()
    assert not second.try_acquire()
    assert f":{os.getpid()}" in (second.holder() or "")
    first.release()
    assert second.try_acquire()
    second.release()
    assert _kill_holder_then_take_over(FileLeaderLock(path), f"Path({str(path)!r})") < 2


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgres_lock_one_holder_named_and_lost_with_its_session(database_url: str) -> None:
    first, second = PostgresLeaderLock(database_url), PostgresLeaderLock(database_url)
    try:
        assert first.try_acquire() and first.try_acquire()  # idempotent
        assert not second.try_acquire()
        assert f":{os.getpid()}" in (second.holder() or "")
        # the leader's session dies (database restart, network): it must notice
        assert first._conn is not None
        backend = first._conn.info.backend_pid
        with psycopg.connect(libpq_url(database_url), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        assert not first.still_held()
        assert second.try_acquire() and second.still_held()
    finally:
        first.release()
        second.release()


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgres_lock_taken_over_when_the_holder_process_is_killed(database_url: str) -> None:
    assert _kill_holder_then_take_over(PostgresLeaderLock(database_url), repr(database_url)) < 5


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgres_locks_of_other_schemas_do_not_meet(database_url: str) -> None:
    other = database_url.replace("search_path%3Dprefetch_test_", "search_path%3Dprefetch_test_x")
    assert other != database_url
    mine, theirs = PostgresLeaderLock(database_url), PostgresLeaderLock(other)
    try:
        assert mine.try_acquire()
        assert theirs.try_acquire()
    finally:
        mine.release()
        theirs.release()
