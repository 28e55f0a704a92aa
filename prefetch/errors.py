"""One error tree for the whole product, split by what the caller does next.

::

    PrefetchError                    base; never raised itself
    ├── StopError                    stop the run or command; an operator must act
    │   ├── ConfigError              bad settings or schedule file (exit code 2)
    │   ├── SecurityError            keys, certificates, tokens, mandate unusable
    │   │   └── MandateError         no valid mandate for the overseer / schedule
    │   ├── ProtocolBugError         the LSP says our message is wrong (e.g. SYN105)
    │   └── StoreError               the database refused a write (integrity) or broke
    ├── SkipError                    skip this one item, record why, go on
    │   ├── InvalidValueError        a domain value failed validation (bad BSN, ...)
    │   └── MessageError             an answer that cannot be used for this item
    │       ├── XmlSecurityError     hardened parser refused the document (DTD, entity, size)
    │       └── CorrelationError     an answer that does not belong to our query
    └── RetryError                   transient: try again later with backoff
        ├── TransportError           connection refused / reset, TLS failure, time-out
        ├── OverloadError            HTTP 503 / LSP says it is busy; carries retry_after
        └── StoreUnavailableError    the database is down or busy (locked, timed out)

Messages carry ids (run id, item id, message id), never a BSN, a name or a birth date.
"""

from __future__ import annotations


class PrefetchError(Exception):
    """Base of every error the product raises on purpose."""

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.message = message
        self.context = context

    def __str__(self) -> str:
        if not self.context:
            return self.message
        details = ", ".join(f"{k}={v}" for k, v in sorted(self.context.items()))
        return f"{self.message} ({details})"


class StopError(PrefetchError):
    """Stop the run or command: continuing would be wrong or useless."""


class ConfigError(StopError):
    """Settings or a schedule file are invalid. Context names file, key/line and the fix."""


class AlreadyRunningError(StopError):
    """Another process holds the run's lock (exit code 3); `holder` says which."""

    def __init__(self, message: str, *, holder: str, **context: object) -> None:
        super().__init__(message, holder=holder, **context)
        self.holder = holder


class SecurityError(StopError):
    """A key, certificate or token cannot be used."""


class MandateError(SecurityError):
    """No valid mandate covers this query (missing, expired, foreign)."""


class ProtocolBugError(StopError):
    """The LSP reports that our message is malformed: a bug on our side."""


class StoreError(StopError):
    """The database refused a write or failed; the message carries only safe reasons."""


class SkipError(PrefetchError):
    """Skip the current item, record the reason, carry on with the run."""


class InvalidValueError(SkipError, ValueError):
    """A domain value failed validation at construction."""


class MessageError(SkipError):
    """An HL7v3 / SOAP message could not be used."""


class XmlSecurityError(MessageError):
    """The hardened parser refused a document (DTD, entity, XInclude, size)."""


class CorrelationError(MessageError):
    """An answer that does not belong to the query it was received for."""


class RetryError(PrefetchError):
    """Transient failure: retry later with backoff."""

    def __init__(self, message: str, *, retry_after: float | None = None, **context: object):
        super().__init__(message, **context)
        self.retry_after = retry_after


class TransportError(RetryError):
    """Connection, TLS or time-out problem on the way to the LSP."""


class OverloadError(RetryError):
    """The LSP (or our own throttle) says: not now."""


class StoreUnavailableError(RetryError):
    """The database is unreachable, locked or timed out: try again shortly."""
