"""The values a `QURX_IN990111NL` query is built from (and that the simulator reads back).

Shared contract between the message builder (`prefetch.hl7v3`), the token signer
(`prefetch.security`), the LSP client and the simulator.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from prefetch.domain.bsn import Bsn
from prefetch.domain.coded import Identifier
from prefetch.domain.localtime import AMSTERDAM
from prefetch.domain.people import Clinician
from prefetch.errors import InvalidValueError

MAX_LOOK_BACK_DAYS = 3650  # ten years; more is a typo, not a clinical question


def look_back_start(now: dt.datetime, days: int) -> dt.date:
    """The first day of a look-back of `days` (1..MAX_LOOK_BACK_DAYS) days, counted on
    the Europe/Amsterdam calendar (the pharmacies' and the desk's day, not UTC's)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidValueError("now must be timezone-aware")
    if not 1 <= days <= MAX_LOOK_BACK_DAYS:
        raise InvalidValueError(f"look-back must be 1..{MAX_LOOK_BACK_DAYS} days", days=days)
    return now.astimezone(AMSTERDAM).date() - dt.timedelta(days=days)


def requester_roots(ura: str) -> tuple[str, str]:
    """Our OID roots for message ids and query ids, derived from the hospital's URA
    (AORTA: `2.16.528.1.1007.3.3.<URA>.<n>`): `.1` for messages, `.2` for queries."""
    base = f"2.16.528.1.1007.3.3.{int(ura)}"
    return f"{base}.1", f"{base}.2"


def id_key(identifier: Identifier) -> str:
    """`root^extension`: how message and query ids are stored and compared."""
    return f"{identifier.root or ''}^{identifier.extension or ''}"


@dataclass(frozen=True, slots=True)
class QueryParams:
    """Everything that varies per query. Static AORTA choices live in `AortaSettings`."""

    bsn: Bsn
    message_id: Identifier  # transmission id (root derived from our URA)
    query_id: Identifier  # queryByParameter/queryId
    created_at: dt.datetime  # aware
    overseer: Clinician  # the responsible (mandating) clinician, RESP
    hospital_ura: str
    hospital_name: str
    sender_application_id: str  # our AORTA application id
    author: Clinician | None = None  # mandated person; None: the system is the author
    author_system_uzi: str | None = None  # UZI system number of our server certificate
    look_back_from: dt.date | None = None

    def __post_init__(self) -> None:
        if self.created_at.tzinfo is None:
            raise InvalidValueError("created_at must be timezone-aware")
        if self.author is None and not self.author_system_uzi:
            raise InvalidValueError("a query needs a person or a system as author")
        if not (self.message_id.root and self.message_id.extension):
            raise InvalidValueError("message id needs root and extension")
        if not (self.query_id.root and self.query_id.extension):
            raise InvalidValueError("query id needs root and extension")


@dataclass(frozen=True, slots=True)
class QueryRef:
    """What an answer must echo to belong to a query."""

    message_id: Identifier
    query_id: Identifier

    @classmethod
    def of(cls, params: QueryParams) -> QueryRef:
        return cls(message_id=params.message_id, query_id=params.query_id)
