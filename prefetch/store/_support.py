"""Shared plumbing for the repositories: sessions, BSN input, database error mapping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from prefetch.domain.bsn import Bsn
from prefetch.errors import PrefetchError, StoreError, StoreUnavailableError
from prefetch.store.db import writer


class Sessions:
    """Read sessions (deferred) and write sessions (BEGIN IMMEDIATE on SQLite)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._read = sessionmaker(engine, expire_on_commit=False)
        self._write = sessionmaker(writer(engine), expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with translate_errors(), self._read() as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        with translate_errors(), self._write() as session, session.begin():
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
