"""Named locks across processes and machines (`prefetch.ports.LeaderLock`): one run per
schedule and clinic day.

- PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) on a connection of
  its own, held while the lock is. PostgreSQL releases it the moment that session ends, so
  a killed process never blocks the next start. The `locks` row only names the holder.
- SQLite (one machine): the `locks` row is the lock, written in an IMMEDIATE transaction.
  Its holder renews `heartbeat_at`; a row whose process is gone (same host: the pid no
  longer exists) or whose heartbeat is older than `stale_after` is taken over.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import threading
import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, delete, func, select, text, update

from prefetch.clock import SYSTEM_CLOCK
from prefetch.logging import get_logger
from prefetch.ports import Clock, LockHolder
from prefetch.store._support import Sessions, translate_errors
from prefetch.store.db import is_sqlite
from prefetch.store.tables import LockRow

log = get_logger("prefetch.locks")


def advisory_key(name: str, schema: str = "") -> int:
    """The bigint advisory lock key of a named lock in one schema: advisory locks are
    database-wide, so two installations (schemas) in one database must not meet."""
    scope = f"{schema}/" if schema else ""
    digest = hashlib.sha256(f"prefetch.lock:{scope}{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's process: alive
        return False
    return False


@dataclass
class _Held:
    token: str
    connection: Connection | None  # PostgreSQL: the session holding the advisory lock


class SqlLeaderLock:
    """`LeaderLock` on the prefetch database (SQLite or PostgreSQL)."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock = SYSTEM_CLOCK,
        stale_after: dt.timedelta = dt.timedelta(seconds=30),
        beat_seconds: float = 5.0,
    ) -> None:
        self._engine = engine
        self._sessions = Sessions(engine)
        self._clock = clock
        self._stale_after = stale_after
        self._beat = beat_seconds
        self._sqlite = is_sqlite(engine)
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._schema: str | None = None  # PostgreSQL: current_schema(), read once
        self.pid = os.getpid()
        self.host = socket.gethostname()

    # ------------------------------------------------------------------ port
    def try_acquire(self, name: str) -> bool:
        with self._lock:
            if name in self._held:
                return True
        token = uuid.uuid4().hex
        connection = None
        if not self._sqlite:
            connection = self._advisory(name)
            if connection is None:
                return False
        if not self._claim_row(name, token, force=connection is not None):
            return False
        with self._lock:
            self._held[name] = _Held(token, connection)
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(
                    target=self._heartbeat, name="prefetch-lock-heartbeat", daemon=True
                )
                self._thread.start()
        log.info("lock_acquired", lock=name)
        return True

    def holder(self, name: str) -> LockHolder | None:
        with self._sessions.read() as session:
            row = session.get(LockRow, name)
            if row is None:
                return None
            found = LockHolder(name, row.pid, row.host, row.since, row.heartbeat_at)
        if self._sqlite:
            return None if self._dead(found) else found
        with translate_errors(), self._engine.connect() as connection:
            granted = connection.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND classid = :hi AND objid = :lo AND objsubid = 1"
                ),
                dict(zip(("hi", "lo"), _split(self._key(name)), strict=True)),
            )
        return found if granted else None

    def release(self, name: str) -> None:
        with self._lock:
            held = self._held.pop(name, None)
            if not self._held:
                self._stop.set()
                self._thread = None
        if held is None:
            return
        try:
            with self._sessions.write() as session:
                session.execute(
                    delete(LockRow).where(LockRow.name == name, LockRow.token == held.token)
                )
        finally:
            if held.connection is not None:
                # Close the session itself (not back to the pool): the advisory lock goes.
                held.connection.invalidate()
                held.connection.close()
        log.info("lock_released", lock=name)

    # ------------------------------------------------------------------ inside
    def _key(self, name: str) -> int:
        if self._schema is None:
            with translate_errors(), self._engine.connect() as connection:
                self._schema = str(connection.scalar(text("SELECT current_schema()")))
        return advisory_key(name, self._schema)

    def _advisory(self, name: str) -> Connection | None:
        with translate_errors():
            connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                got = connection.scalar(select(func.pg_try_advisory_lock(self._key(name))))
            except BaseException:
                connection.close()
                raise
        if not got:
            connection.close()
            return None
        return connection

    def _dead(self, holder: LockHolder) -> bool:
        if holder.heartbeat_at < self._clock.now() - self._stale_after:
            return True
        return holder.host == self.host and _process_gone(holder.pid)

    def _claim_row(self, name: str, token: str, *, force: bool) -> bool:
        now = self._clock.now()
        with self._sessions.write() as session:
            row = session.get(LockRow, name, with_for_update=True)
            if row is not None:
                current = LockHolder(name, row.pid, row.host, row.since, row.heartbeat_at)
                if not force and not self._dead(current):
                    return False
                session.delete(row)
                session.flush()
                log.warning("lock_taken_over", lock=name, previous_pid=row.pid)
            session.add(
                LockRow(
                    name=name,
                    token=token,
                    pid=self.pid,
                    host=self.host[:255],
                    since=now,
                    heartbeat_at=now,
                )
            )
        return True

    def _heartbeat(self) -> None:
        while not self._stop.wait(self._beat):
            with self._lock:
                held = {name: h.token for name, h in self._held.items()}
            for name, token in held.items():
                try:
                    with self._sessions.write() as session:
                        session.execute(
                            update(LockRow)
                            .where(LockRow.name == name, LockRow.token == token)
                            .values(heartbeat_at=self._clock.now())
                        )
                except Exception as exc:  # the next beat tries again
                    log.warning("lock_heartbeat_failed", lock=name, error=type(exc).__name__)


def _split(key: int) -> tuple[int, int]:
    """pg_locks shows a bigint advisory key as classid (high 32 bits) and objid (low)."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF
