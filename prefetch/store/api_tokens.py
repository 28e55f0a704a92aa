"""Bearer tokens for the FHIR API: created once, stored only as a SHA-256, revocable.

A token is 32 random bytes (URL-safe base64, prefixed `pft_`); a fast hash is the right
one here because the secret has full entropy (a slow password hash protects guessable
secrets). The plain token exists only in the return value of `create`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, select, update

from prefetch.errors import InvalidValueError
from prefetch.store._support import Sessions
from prefetch.store.tables import ApiTokenRow

PREFIX = "pft_"
_NAME_MAX = 128


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiTokenInfo:
    """A token as listed: never the token itself."""

    name: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class ApiTokens:
    """The `api_tokens` table on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = Sessions(engine)

    def create(self, name: str, *, now: dt.datetime) -> str | None:
        """A new token for `name` (returned once), or None if the name is taken."""
        name = name.strip()
        if not name or len(name) > _NAME_MAX or not name.isprintable():
            raise InvalidValueError("token name must be 1..128 printable characters")
        token = PREFIX + secrets.token_urlsafe(32)
        with self._sessions.write() as session:
            if session.scalar(select(ApiTokenRow.id).where(ApiTokenRow.name == name)):
                return None
            session.add(ApiTokenRow(name=name, token_hash=token_hash(token), created_at=now))
        return token

    def revoke(self, name: str, *, now: dt.datetime) -> bool:
        """Revoke the active token `name`; False if there is none."""
        with self._sessions.write() as session:
            done = session.execute(
                update(ApiTokenRow)
                .where(ApiTokenRow.name == name, ApiTokenRow.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            return bool(getattr(done, "rowcount", 0))

    def all(self) -> list[ApiTokenInfo]:
        with self._sessions.read() as session:
            rows = session.execute(
                select(ApiTokenRow.name, ApiTokenRow.created_at, ApiTokenRow.revoked_at).order_by(
                    ApiTokenRow.name
                )
            )
            return [ApiTokenInfo(name=n, created_at=c, revoked_at=r) for n, c, r in rows]

    def holder(self, token: str) -> str | None:
        """The name of the active token `token`, or None (unknown or revoked)."""
        if not token.startswith(PREFIX):
            return None
        with self._sessions.read() as session:
            row = session.execute(
                select(ApiTokenRow.name, ApiTokenRow.revoked_at).where(
                    ApiTokenRow.token_hash == token_hash(token)
                )
            ).first()
        if row is None or row.revoked_at is not None:
            return None
        return str(row.name)
