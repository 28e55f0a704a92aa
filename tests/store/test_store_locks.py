"""Named locks (one run per schedule and clinic day): one holder at a time, the holder is
named, a dead holder never blocks, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
import socket

from sqlalchemy import Engine, insert

from prefetch.store.db import make_engine
from prefetch.store.locks import SqlLeaderLock
from prefetch.store.tables import LockRow


def test_one_holder_at_a_time_and_named(migrated_engine: Engine, database_url: str) -> None:
    first = SqlLeaderLock(migrated_engine)
    other_engine = make_engine(database_url)
    second = SqlLeaderLock(other_engine)
    try:
        assert first.try_acquire("run:card:2026-11-24")
        assert first.try_acquire("run:card:2026-11-24")  # already ours
        assert not second.try_acquire("run:card:2026-11-24")
        assert second.try_acquire("run:card:2026-11-25")  # another day: free
        holder = second.holder("run:card:2026-11-24")
        assert holder is not None
        assert (holder.pid, holder.host) == (os.getpid(), socket.gethostname())
        assert f"pid {os.getpid()}" in str(holder)
        first.release("run:card:2026-11-24")
        assert second.holder("run:card:2026-11-24") is None
        assert second.try_acquire("run:card:2026-11-24")
    finally:
        for name in ("run:card:2026-11-24", "run:card:2026-11-25"):
            second.release(name)
            first.release(name)
        other_engine.dispose()


def test_a_dead_holder_is_taken_over(migrated_engine: Engine) -> None:
    now = dt.datetime.now(dt.UTC)
    gone = 2**22 + 12345  # above the default pid_max: no such process
    with migrated_engine.begin() as connection:
        connection.execute(
            insert(LockRow).values(
                name="run:card:2026-11-24",
                token="dead",
                pid=gone,
                host=socket.gethostname(),
                since=now,
                heartbeat_at=now,
            )
        )
    lock = SqlLeaderLock(migrated_engine)
    assert lock.holder("run:card:2026-11-24") is None
    assert lock.try_acquire("run:card:2026-11-24")
    holder = lock.holder("run:card:2026-11-24")
    assert holder is not None
    assert holder.pid == os.getpid()
    lock.release("run:card:2026-11-24")
