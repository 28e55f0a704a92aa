"""An LSP outage with the circuit breaker: the half-open trial query goes to the patient
with the most attempts left, so an outage alone exhausts nobody's attempts."""

from __future__ import annotations

import dataclasses
from collections import Counter

from samples import DAY
from sqlalchemy.engine import Engine
from test_engine import BSNS, CONFIG, MANDATE, SCHEDULE, Clock, appointment, records

from prefetch.domain.outcome import Outcome, OutcomeKind
from prefetch.engine import Prefetcher
from prefetch.hl7v3.params import QueryParams
from prefetch.lsp.fake import FakeLspGateway
from prefetch.ports import LspReply
from prefetch.store.dispenses import DispenseRepository
from prefetch.store.runs import RunRepository
from prefetch.throttle import Throttle, ThrottleConfig

DOWN = Outcome(OutcomeKind.TRANSIENT, code="HTTP_503", detail="LSP overloaded")


class OutageGateway(FakeLspGateway):
    """Every query fails with HTTP 503 until `down_for` queries were answered."""

    def __init__(self, down_for: int) -> None:
        super().__init__({bsn: [records(f"d{n}")] for n, bsn in enumerate(BSNS)})
        self.down_for = down_for
        self.answered = 0

    def query(self, params: QueryParams, *, mandate_token: bytes | None) -> LspReply:
        reply = super().query(params, mandate_token=mandate_token)
        with self._lock:
            self.answered += 1
            down = self.answered <= self.down_for
        return LspReply(outcome=DOWN) if down else reply


def test_an_outage_fails_nobody_and_no_patient_is_asked_more_than_three_times(
    migrated_engine: Engine,
) -> None:
    # Three failures open the breaker; six trials fail after: with the first due item as
    # the trial, two patients would use up their three attempts.
    gateway = OutageGateway(down_for=9)
    config = dataclasses.replace(CONFIG, workers=1)
    throttle = Throttle(
        ThrottleConfig(
            rate_per_second=50, max_in_flight=1, breaker_failures=3, breaker_reset_seconds=5
        ),
        clock=(clock := Clock()),
    )
    engine = Prefetcher(
        runs=RunRepository(migrated_engine),
        dispenses=DispenseRepository(migrated_engine),
        gateway=gateway,
        limiter=throttle,
        config=config,
        clock=clock,
    )
    day = [appointment(n, bsn) for n, bsn in enumerate(BSNS)]
    prepared = engine.prepare(SCHEDULE, DAY, day, mandate=MANDATE)
    report = engine.execute(prepared.run_id, SCHEDULE, MANDATE, clinic_day=DAY)
    assert report.stopped is None
    assert report.summary.by_state == {"done": len(BSNS)}
    asked = Counter(p.bsn.value for p in gateway.calls)
    assert max(asked.values()) <= CONFIG.max_attempts
    assert sum(asked.values()) == 9 + len(BSNS)
