"""The metered gateway counts a query when it leaves (`on_wire`), not before its send
slot: a query refused at the gate is neither counted nor timed."""

from __future__ import annotations

import datetime as dt

import pytest
from prometheus_client import generate_latest

from prefetch.domain.bsn import Bsn
from prefetch.domain.coded import Identifier
from prefetch.domain.people import Clinician
from prefetch.errors import OverloadError
from prefetch.hl7v3.params import QueryParams
from prefetch.lsp.fake import FakeLspGateway
from prefetch.metrics import Metrics, metered_gateway
from prefetch.ports import TwoPhaseGateway


def _params() -> QueryParams:
    return QueryParams(
        bsn=Bsn("123456782"),
        message_id=Identifier("2.16.528.1.1007.3.3.1234567.1", "m1"),
        query_id=Identifier("2.16.528.1.1007.3.3.1234567.2", "q1"),
        created_at=dt.datetime.now(dt.UTC),
        overseer=Clinician(uzi_number="123456782", role_code="01.015", name="A. Arts"),
        hospital_ura="12345678",
        hospital_name="Ziekenhuis",
        sender_application_id="10008890",
        author_system_uzi="987654321",
    )


def _text(metrics: Metrics) -> str:
    return generate_latest(metrics.registry).decode()


def test_counted_when_it_leaves_not_when_refused_at_the_gate() -> None:
    metrics = Metrics()
    gateway = metered_gateway(FakeLspGateway(), metrics)
    assert isinstance(gateway, TwoPhaseGateway)
    params = _params()

    def no_slot() -> None:
        raise OverloadError("no send slot", retry_after=1.0)

    with pytest.raises(OverloadError):
        gateway.send(params, b"", on_wire=no_slot)
    assert "prefetch_lsp_queries_total{" not in _text(metrics)
    assert "prefetch_lsp_query_seconds_count 0.0" in _text(metrics)
    assert "prefetch_lsp_queries_in_flight 0.0" in _text(metrics)

    passed: list[bool] = []
    gateway.send(params, b"", on_wire=lambda: passed.append(True))
    assert passed == [True]
    assert 'prefetch_lsp_queries_total{outcome="no_registrations"} 1.0' in _text(metrics)
    assert "prefetch_lsp_query_seconds_count 1.0" in _text(metrics)
    assert "prefetch_lsp_queries_in_flight 0.0" in _text(metrics)
