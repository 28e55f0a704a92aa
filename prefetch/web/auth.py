"""Sign-in for the desk: a signed, expiring session cookie, CSRF tokens, roles, SSO header.

- The session is a cookie signed with itsdangerous (`URLSafeTimedSerializer`): user name,
  CSRF token and the moment of sign-in. It expires after `session_minutes` without a
  request (each answer re-signs it) and after `MAX_SESSION` in any case. HttpOnly,
  SameSite=Strict; Secure when `[desk] secure_cookie`.
- Every POST carries the session's CSRF token in a form field (`csrf_token`); a POST
  without it, or with another one, is refused (403) before anything happens.
- Single sign-on: a request from one of `[desk] trusted_proxies` with the user header is
  signed in as that user (who must have an active local account, which gives the role).
  The header from any other address is ignored.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from prefetch.store.desk_users import DeskRole, DeskUser, DeskUserRepository

COOKIE = "prefetch_desk"
MAX_SESSION = dt.timedelta(hours=12)
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True, slots=True)
class AuthConfig:
    secret: bytes
    session_minutes: int = 30
    trusted_proxies: tuple[str, ...] = ()
    proxy_user_header: str = "X-Remote-User"
    secure_cookie: bool = False


@dataclass(slots=True)
class DeskSession:
    """What the cookie holds; `user` is filled in per request from the store."""

    username: str | None
    csrf: str
    since: float  # epoch seconds of sign-in
    via: str = "password"  # password | proxy
    flash: str | None = None  # one message for the next page (after a redirect)
    user: DeskUser | None = field(default=None)

    def payload(self) -> dict[str, Any]:
        return {"u": self.username, "c": self.csrf, "s": self.since, "v": self.via, "f": self.flash}


class NotSignedIn(Exception):
    """Raised by `signed_in`: GET requests are sent to the sign-in page, others get 401."""


class Forbidden(Exception):
    """The signed-in user's role does not allow this page or action (403)."""


class CsrfRefused(Exception):
    """A POST without the session's CSRF token (403)."""


def _trusted(address: str | None, proxies: tuple[str, ...]) -> bool:
    if not address or not proxies:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    for entry in proxies:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


class Authenticator:
    def __init__(self, config: AuthConfig, users: DeskUserRepository) -> None:
        self.config = config
        self.users = users
        self._signer = URLSafeTimedSerializer(config.secret, salt="prefetch-desk-session")

    def new_session(self, username: str | None = None, via: str = "password") -> DeskSession:
        now = dt.datetime.now(dt.UTC).timestamp()
        return DeskSession(username, secrets.token_urlsafe(32), now, via)

    def load(self, request: Request) -> DeskSession:
        """The request's session (a fresh anonymous one if none or expired), user resolved."""
        session = self._from_cookie(request.cookies.get(COOKIE))
        proxied = self._proxy_user(request)
        if proxied is not None and proxied != session.username:
            session = self.new_session(proxied, via="proxy")
        elif proxied is None and session.via == "proxy":
            session = self.new_session()  # the proxy no longer vouches for this user
        if session.username is not None:
            user = self.users.get(session.username)
            if user is None or not user.active:
                session = self.new_session()
            else:
                session.user = user
        return session

    def _from_cookie(self, cookie: str | None) -> DeskSession:
        if not cookie:
            return self.new_session()
        try:
            data = self._signer.loads(cookie, max_age=self.config.session_minutes * 60)
        except BadSignature:  # also SignatureExpired: the session timed out
            return self.new_session()
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return self.new_session()
        since = float(data.get("s") or 0)
        if dt.datetime.now(dt.UTC).timestamp() - since > MAX_SESSION.total_seconds():
            return self.new_session()
        username = data.get("u")
        return DeskSession(
            username if isinstance(username, str) else None,
            data["c"],
            since,
            str(data.get("v") or "password"),
            data["f"] if isinstance(data.get("f"), str) else None,
        )

    def _proxy_user(self, request: Request) -> str | None:
        client = request.client.host if request.client else None
        if not _trusted(client, self.config.trusted_proxies):
            return None
        value = request.headers.get(self.config.proxy_user_header, "").strip().lower()
        return value or None

    def store(self, response: Response, session: DeskSession) -> None:
        """Re-sign the cookie on every answer (sliding expiry)."""
        response.set_cookie(
            COOKIE,
            self._signer.dumps(session.payload()),
            max_age=self.config.session_minutes * 60,
            httponly=True,
            samesite="strict",
            secure=self.config.secure_cookie,
            path="/",
        )


def session_of(request: Request) -> DeskSession:
    session = getattr(request.state, "desk_session", None)
    assert isinstance(session, DeskSession), "the session middleware did not run"
    return session


def signed_in(request: Request) -> DeskUser:
    """FastAPI dependency: the signed-in user, else `NotSignedIn`."""
    user = session_of(request).user
    if user is None:
        raise NotSignedIn
    return user


def require_role(user: DeskUser, role: DeskRole) -> None:
    if not user.role.at_least(role):
        raise Forbidden


def check_csrf(request: Request, form: dict[str, str]) -> None:
    expected = session_of(request).csrf
    given = form.get(CSRF_FIELD, "")
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise CsrfRefused
