"""Shared plumbing for the repositories: sessions, BSN input, database error mapping."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from prefetch.domain.bsn import Bsn
from prefetch.errors import PrefetchError, StoreError, StoreUnavailableError
from prefetch.store.db import writer

_SQLITE_WRITERS: dict[str, threading.RLock] = {}
_SQLITE_WRITERS_LOCK = threading.Lock()


def _sqlite_writer_lock(engine: Engine) -> threading.RLock | None:
    """One lock per SQLite database in this process: its threads take turns writing here
    and the next one starts the moment the last commits, instead of sleeping in SQLite's
    busy handler (1, 2, 5, 10 ... ms). Other processes still meet SQLite's own lock."""
    if engine.dialect.name != "sqlite":
        return None
    key = str(engine.url)
    with _SQLITE_WRITERS_LOCK:
        return _SQLITE_WRITERS.setdefault(key, threading.RLock())


class Sessions:
    """Read sessions (deferred) and write sessions (BEGIN IMMEDIATE on SQLite)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._read = sessionmaker(engine, expire_on_commit=False)
        self._write = sessionmaker(writer(engine), expire_on_commit=False)
        self._writer_lock = _sqlite_writer_lock(engine)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with translate_errors(), self._read() as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        lock = self._writer_lock
        if lock is None:
            with translate_errors(), self._write() as session, session.begin():
                yield session
            return
        with lock, translate_errors(), self._write() as session, session.begin():
            yield session


def bsn_value(bsn: Bsn | str) -> str:
    return bsn.value if isinstance(bsn, Bsn) else bsn


def _safe_reason(exc: DBAPIError) -> dict[str, str]:
    """Context that names the failure without quoting row values (they may hold a BSN)."""
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    if diag is not None:  # psycopg: sqlstate and constraint name, never the DETAIL line
        found = {
            "sqlstate": getattr(orig, "sqlstate", None),
            "constraint": getattr(diag, "constraint_name", None),
        }
    else:  # sqlite3 messages name the constraint or the trigger text, never the values
        found = {"reason": str(orig).splitlines()[0][:200] if orig is not None else None}
    return {key: str(value) for key, value in found.items() if value}


@contextmanager
def translate_errors() -> Iterator[None]:
    """Map driver errors to the product's error tree, with safe messages only."""
    try:
        yield
    except PrefetchError:
        raise
    except IntegrityError as exc:
        raise StoreError("database refused the write (integrity)", **_safe_reason(exc)) from None
    except OperationalError as exc:
        raise StoreUnavailableError(
            "database unavailable or busy", retry_after=None, **_safe_reason(exc)
        ) from None
    except DBAPIError as exc:
        raise StoreError("database error", **_safe_reason(exc)) from None
    except StatementError as exc:  # raised while binding, e.g. a naive datetime
        if isinstance(exc.orig, PrefetchError):
            raise exc.orig from None
        raise
