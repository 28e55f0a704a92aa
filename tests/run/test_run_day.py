"""The run use case: the mandate is checked before anything is planned or sent, and the
result says honestly whether every patient got a definitive answer."""

from __future__ import annotations

import pytest
from samples import DAY, NOW, schedule
from sqlalchemy.engine import Engine

from prefetch.clock import FakeClock
from prefetch.domain.run import EngineConfig, RunReport, RunSummary
from prefetch.errors import MandateError
from prefetch.lsp.fake import FakeLspGateway
from prefetch.run_day import RunRequest, RunResult, RunServices, run_schedule_day
from prefetch.store.dispenses import DispenseRepository
from prefetch.store.mandates import MandateRepository
from prefetch.store.runs import RunRepository
from prefetch.throttle import Throttle, ThrottleConfig

CONFIG = EngineConfig(
    hospital_ura="00000099",
    hospital_name="Ziekenhuis Test",
    application_id="12345",
    system_uzi="000000123",
)


def test_no_mandate_plans_nothing_and_sends_nothing(migrated_engine: Engine) -> None:
    gateway = FakeLspGateway()
    runs = RunRepository(migrated_engine)
    services = RunServices(
        runs=runs,
        dispenses=DispenseRepository(migrated_engine),
        mandates=MandateRepository(migrated_engine),  # empty: mandate m1 is not registered
        gateway=gateway,
        limiter=Throttle(ThrottleConfig(rate_per_second=10, max_in_flight=2)),
        trust=None,  # type: ignore[arg-type]  # never reached without a mandate
        config=CONFIG,
        clock=FakeClock(NOW),
    )
    with pytest.raises(MandateError, match="no mandate"):
        run_schedule_day(services, RunRequest(schedule=schedule(), clinic_day=DAY, appointments=[]))
    assert runs.find_run("card", DAY, "scheduled") is None
    assert gateway.calls == []


def _result(by_state: dict[str, int], stopped: str | None = None) -> RunResult:
    summary = RunSummary("r", sum(by_state.values()), by_state, {}, {}, 0)
    return RunResult("r", True, summary.total, summary.to_query, RunReport(summary, stopped))


@pytest.mark.parametrize(
    ("by_state", "stopped", "status"),
    [
        ({"done": 3, "skipped": 2}, None, "complete"),
        ({"done": 3, "failed": 1}, None, "failures"),
        ({"done": 3, "retry_wait": 1}, None, "incomplete"),
        ({"done": 3, "pending": 1, "in_flight": 1}, None, "incomplete"),
        ({"done": 3}, "the LSP reports our message as malformed", "stopped"),
        ({"skipped": 4}, None, "complete"),
    ],
)
def test_status_is_complete_only_when_every_item_is_definitive_and_none_failed(
    by_state: dict[str, int], stopped: str | None, status: str
) -> None:
    assert _result(by_state, stopped).status == status
