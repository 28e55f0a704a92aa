"""Leadership: of several daemons on one database, exactly one schedules runs.

`Leadership` is the port the daemon needs (its contract below). Two adapters:

- `PostgresLeaderLock`: a session-level advisory lock held on a connection of its own.
  PostgreSQL releases it the moment that session ends: a killed daemon's socket closes at
  once; a machine that vanishes is noticed by TCP keepalives (set per session, about 25 s).
  The key is derived from the database and schema, so environments sharing one server
  (and parallel test schemas) never meet. The holder is named by `application_name`.
- `FileLeaderLock`: for SQLite, an exclusive `flock` on a file beside the database; a
  second daemon on the same data directory stands by until the first one exits.

Leadership only decides who *schedules*; it is not what keeps runs correct. Work items are
claimed row by row (`FOR UPDATE SKIP LOCKED`) and a run has its own run lock, so even two
daemons that both believed they lead for a moment would not query a patient twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import socket
from pathlib import Path
from typing import IO, Protocol

import psycopg
from sqlalchemy import make_url

from prefetch.logging import get_logger

log = get_logger("prefetch.leader")

LOCK_NAME = "prefetch.daemon.leader"


class Leadership(Protocol):
    """Who schedules. Contract:

    - `try_acquire()` never blocks (beyond a bounded connect); True when this process holds
      leadership after the call (also when it already did). Errors (database down) are
      logged and answer False: no leadership without a working lock.
    - `still_held()` checks that the lock is still ours (the session is alive); False means
      it was lost and the caller must stop scheduling at once.
    - `holder()` describes the current holder ("prefetch-daemon host:pid"), or None.
    - `release()` gives it up; safe to call when not held.
    """

    def try_acquire(self) -> bool: ...
    def still_held(self) -> bool: ...
    def holder(self) -> str | None: ...
    def release(self) -> None: ...


def identity() -> str:
    return f"prefetch-daemon {socket.gethostname()}:{os.getpid()}"


def _advisory_key(database: str, schema: str) -> int:
    digest = hashlib.sha256(f"{LOCK_NAME}:{database}:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def libpq_url(sqlalchemy_url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as the plain libpq URL psycopg takes."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class PostgresLeaderLock:
    """A session-level advisory lock on a dedicated autocommit connection."""

    def __init__(self, database_url: str, *, connect_timeout: int = 5) -> None:
        self._url = libpq_url(database_url)
        self._connect_timeout = connect_timeout
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._key: int | None = None
        self._held = False

    def _connection(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(
                self._url,
                autocommit=True,
                connect_timeout=self._connect_timeout,
                application_name=identity()[:63],
                # our side: notice a dead database server
                keepalives=1,
                keepalives_idle=10,
                keepalives_interval=5,
                keepalives_count=3,
            )
            # the server's side: notice a vanished leader machine, release its lock
            for setting, value in (
                ("tcp_keepalives_idle", "10"),
                ("tcp_keepalives_interval", "5"),
                ("tcp_keepalives_count", "3"),
                ("statement_timeout", "5000"),
            ):
                conn.execute("SELECT set_config(%s, %s, false)", (setting, value))
            row = conn.execute("SELECT current_database(), current_schema()").fetchone()
            assert row is not None
            self._key = _advisory_key(str(row[0]), str(row[1]))
            self._conn = conn
        return self._conn

    def _drop(self) -> None:
        self._held = False
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None

    def try_acquire(self) -> bool:
        if self._held:
            return self.still_held()
        try:
            conn = self._connection()
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
        except psycopg.Error as exc:
            log.warning("leader_lock_unavailable", error=type(exc).__name__)
            self._drop()
            return False
        self._held = bool(row and row[0])
        return self._held

    def still_held(self) -> bool:
        if not self._held or self._conn is None:
            return False
        key = self._key or 0
        try:
            row = self._conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = pg_backend_pid() AND classid = %s AND objid = %s AND objsubid = 1",
                _split(key),
            ).fetchone()
        except psycopg.Error as exc:
            log.warning("leader_lock_lost", error=type(exc).__name__)
            self._drop()
            return False
        if not (row and row[0]):
            self._drop()
            return False
        return True

    def holder(self) -> str | None:
        try:
            conn = self._connection()
            row = conn.execute(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a"
                " ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted"
                " AND l.classid = %s AND l.objid = %s AND l.objsubid = 1",
                _split(self._key or 0),
            ).fetchone()
        except psycopg.Error:
            return None
        return str(row[0]) if row else None

    def release(self) -> None:
        if self._held and self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
        self._drop()


def _split(key: int) -> tuple[int, int]:
    """pg_locks shows a bigint advisory key as classid (high 32 bits) and objid (low)."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return unsigned >> 32, unsigned & 0xFFFFFFFF


class FileLeaderLock:
    """An exclusive, non-blocking `flock` on `path`; the file names the holder."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._file: IO[str] | None = None

    def try_acquire(self) -> bool:
        if self._file is not None:
            return True
        self._path.parent.mkdir(parents=True, exist_ok=True)
        handle = self._path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(identity() + "\n")
        handle.flush()
        self._file = handle
        return True

    def still_held(self) -> bool:
        return self._file is not None

    def holder(self) -> str | None:
        try:
            text = self._path.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return text or None

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def leader_lock_for(database_url: str) -> Leadership:
    """The lock that fits the database: advisory on PostgreSQL, a file lock beside the
    SQLite database file."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        return PostgresLeaderLock(database_url)
    return FileLeaderLock(Path(f"{url.database or 'prefetch.sqlite'}.daemon-lock"))
