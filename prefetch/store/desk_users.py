"""Desk accounts: who may sign in to the desk, with which role, under which mandate.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106 low-memory profile);
only the hash is stored. A user without a password hash signs in only through the
hospital's single sign-on (the trusted reverse-proxy header). Disabled users cannot sign in.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from prefetch.errors import InvalidValueError
from prefetch.store._support import Sessions
from prefetch.store.tables import DeskUserRow

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
MIN_PASSWORD_LENGTH = 12
_HASHER = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
_DUMMY: list[str] = []  # verified for unknown names: a wrong name costs what a wrong password does


def use_hasher(hasher: PasswordHasher) -> None:
    """Replace the hasher (tests use argon2's CHEAPEST profile to keep the suite fast).
    Stored hashes carry their own parameters, so they verify under any hasher; a stored
    hash weaker than the hasher's is rehashed at the next sign-in."""
    global _HASHER  # noqa: PLW0603 - one process-wide setting, like the schema set's
    _HASHER = hasher
    _DUMMY.clear()


def _dummy_hash() -> str:
    if not _DUMMY:
        _DUMMY.append(_HASHER.hash("not a password of anyone"))
    return _DUMMY[0]


class DeskRole(enum.Enum):
    """Assistant < poli manager < administrator (each may do what the ones before may)."""

    ASSISTANT = "assistant"
    POLIMANAGER = "polimanager"
    ADMINISTRATOR = "administrator"

    @property
    def rank(self) -> int:
        return list(DeskRole).index(self)

    def at_least(self, other: DeskRole) -> bool:
        return self.rank >= other.rank


@dataclass(frozen=True, slots=True)
class DeskUser:
    username: str
    display_name: str
    role: DeskRole
    mandate_id: str | None
    has_password: bool
    created_at: dt.datetime
    disabled_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None


def check_username(username: str) -> str:
    name = username.strip().lower()
    if not _USERNAME.match(name):
        raise InvalidValueError(
            "user name: lower-case letters, digits and . _ @ - (at most 64), e.g. j.jansen"
        )
    return name


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidValueError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


def _user(row: DeskUserRow) -> DeskUser:
    return DeskUser(
        username=row.username,
        display_name=row.display_name,
        role=DeskRole(row.role),
        mandate_id=row.mandate_id,
        has_password=bool(row.password_hash),
        created_at=row.created_at,
        disabled_at=row.disabled_at,
    )


class DeskUserRepository:
    """Desk accounts on SQLAlchemy (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = Sessions(engine)

    def add(
        self,
        username: str,
        *,
        display_name: str,
        role: DeskRole | str,
        password: str | None,
        mandate_id: str | None,
        now: dt.datetime,
    ) -> DeskUser:
        name = check_username(username)
        if not display_name.strip() or not display_name.isprintable():
            raise InvalidValueError("display name must be printable text")
        pw_hash = hash_password(password) if password is not None else None
        with self._sessions.write() as session:
            if session.get(DeskUserRow, name) is not None:
                raise InvalidValueError("a desk user with this name exists", username=name)
            row = DeskUserRow(
                username=name,
                display_name=display_name.strip(),
                role=DeskRole(role).value,
                password_hash=pw_hash,
                mandate_id=mandate_id or None,
                created_at=now,
                password_changed_at=now if pw_hash else None,
                disabled_at=None,
            )
            session.add(row)
            session.flush()
            return _user(row)

    def get(self, username: str) -> DeskUser | None:
        with self._sessions.read() as session:
            row = session.get(DeskUserRow, username.strip().lower())
            return _user(row) if row is not None else None

    def all(self) -> list[DeskUser]:
        with self._sessions.read() as session:
            rows = session.scalars(select(DeskUserRow).order_by(DeskUserRow.username))
            return [_user(row) for row in rows]

    def set_password(self, username: str, password: str, *, now: dt.datetime) -> None:
        pw_hash = hash_password(password)
        with self._sessions.write() as session:
            row = self._require(session, username)
            row.password_hash = pw_hash
            row.password_changed_at = now

    def set_disabled(self, username: str, *, disabled: bool, now: dt.datetime) -> None:
        with self._sessions.write() as session:
            row = self._require(session, username)
            row.disabled_at = now if disabled else None

    def set_role(self, username: str, role: DeskRole | str) -> None:
        with self._sessions.write() as session:
            self._require(session, username).role = DeskRole(role).value

    def set_mandate(self, username: str, mandate_id: str | None) -> None:
        with self._sessions.write() as session:
            self._require(session, username).mandate_id = mandate_id or None

    def authenticate(self, username: str, password: str) -> DeskUser | None:
        """The active user with this password, else None (same cost for unknown names)."""
        with self._sessions.read() as session:
            row = session.get(DeskUserRow, username.strip().lower())
            stored = row.password_hash if row is not None else None
        try:
            _HASHER.verify(stored or _dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None or stored is None or row.disabled_at is not None:
            return None
        if _HASHER.check_needs_rehash(stored):
            with self._sessions.write() as session:
                fresh = session.get(DeskUserRow, row.username)
                if fresh is not None:
                    fresh.password_hash = _HASHER.hash(password)
        return _user(row)

    @staticmethod
    def _require(session: Session, username: str) -> DeskUserRow:
        row = session.get(DeskUserRow, username.strip().lower(), with_for_update=True)
        if row is None:
            raise InvalidValueError("no desk user with this name", username=username)
        return row
