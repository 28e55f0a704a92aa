"""Ports the engine depends on. Adapters implement them; `cli`/`daemon` wire them.

The storage ports live with the store (`prefetch.store.ports`); this module has the ones
the core defines for itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from prefetch.domain.outcome import Outcome
from prefetch.hl7v3.params import QueryParams


@dataclass(frozen=True, slots=True)
class LspReply:
    """What one query produced: the classified outcome and the batch it came in."""

    outcome: Outcome
    batch_message_id: str | None = None  # root^extension of the MCCI_IN200101
    elapsed_seconds: float = 0.0


class LspGateway(Protocol):
    """Sends one `QURX_IN990111NL` and classifies the answer.

    Contract: every transport problem, HTTP overload and transient LSP code comes back as
    an `Outcome` of kind TRANSIENT (with `retry_after` when the LSP gave one); an answer
    that does not belong to the query, or cannot be used, is FAILED with a code. It raises
    only `StopError`s (our own bug, unusable keys): those stop the run.
    """

    def query(self, params: QueryParams, *, mandate_token: bytes | None) -> LspReply: ...


WallClock = Callable[[], dt.datetime]  # returns aware UTC


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
