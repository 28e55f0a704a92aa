"""An in-process `LspGateway` for dry runs and tests: answers from a table, no network.

Each BSN maps to a list of outcomes, answered in turn (the last one repeats), so tests can
script "transient, transient, records". Unknown BSNs answer NO_REGISTRATIONS, like an LSP
that has no registration for them. Every call is recorded (BSN digits stay in memory only).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

from prefetch.domain.outcome import Outcome, OutcomeKind
from prefetch.hl7v3.params import QueryParams
from prefetch.ports import LspReply


class FakeLspGateway:
    def __init__(self, answers: Mapping[str, Sequence[Outcome]] | None = None) -> None:
        self._answers = {k: list(v) for k, v in (answers or {}).items()}
        self._lock = threading.Lock()
        self.calls: list[QueryParams] = []
        self.mandate_tokens: list[bytes | None] = []

    def set(self, bsn: str, *outcomes: Outcome) -> None:
        with self._lock:
            self._answers[bsn] = list(outcomes)

    def envelope(self, params: QueryParams, *, mandate_token: bytes | None) -> bytes:
        return mandate_token or b""

    def send(
        self, params: QueryParams, data: bytes, *, on_wire: Callable[[], None] | None = None
    ) -> LspReply:
        if on_wire is not None:
            on_wire()
        return self.query(params, mandate_token=data or None)

    def query(self, params: QueryParams, *, mandate_token: bytes | None) -> LspReply:
        with self._lock:
            self.calls.append(params)
            self.mandate_tokens.append(mandate_token)
            queue = self._answers.get(params.bsn.value)
            if not queue:
                outcome = Outcome(OutcomeKind.NO_REGISTRATIONS)
            elif len(queue) > 1:
                outcome = queue.pop(0)
            else:
                outcome = queue[0]
        return LspReply(outcome=outcome, batch_message_id=f"fake^{len(self.calls)}")

    def calls_for(self, bsn: str) -> int:
        with self._lock:
            return sum(1 for p in self.calls if p.bsn.value == bsn)
