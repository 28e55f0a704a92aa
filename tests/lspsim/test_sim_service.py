"""The LSP service with a fake clock: admission, outage, security refusals, ping, stats."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt

import pytest
from lspsim_helpers import batch_of, make_params, query_body
from lxml import etree

from prefetch.domain.coded import Identifier
from prefetch.hl7v3.codes import CodeClass, rule_for
from prefetch.hl7v3.params import QueryParams, QueryRef
from prefetch.hl7v3.parse import parse_answer
from prefetch.hl7v3.schema import validate_accept_ack
from prefetch.hl7v3.soap import unwrap, wrap_soap_body
from prefetch.hl7v3.xmlparse import parse_xml
from prefetch.lspsim.clock import FakeClock
from prefetch.lspsim.ping import build_ping
from prefetch.lspsim.profiles import BUILTIN, Outage, RateLimit
from prefetch.lspsim.service import LspService
from prefetch.lspsim.world import World
from prefetch.security.errors import RejectReason, TokenRejected


def _body(world: World, i: int = 0) -> bytes:
    return query_body(make_params(world.patients[i].bsn))


def test_too_fast_client_is_refused_with_503_and_counted(world: World, clock: FakeClock) -> None:
    profile = dataclasses.replace(BUILTIN["ideal"], rate=RateLimit(max_rate=2, max_concurrency=4))
    service = LspService(world, profile, clock=clock)
    statuses = []
    for i in range(20):  # 10 per second
        answer = service.handle(_body(world, i), client="fast")
        statuses.append(answer.status)
        clock.advance(0.1)
    assert statuses.count(200) == 4 and statuses.count(503) == 16
    stats = service.stats.snapshot()
    assert stats["refused"] == {"rate": 16, "concurrency": 0}
    assert stats["violations"] == {"rate": 18, "concurrency": 0, "total": 18}
    assert stats["by_outcome"]["overload_rate"] == 16
    assert stats["queries_received"] == 20


def test_a_client_at_the_limit_has_no_violations(world: World, clock: FakeClock) -> None:
    profile = dataclasses.replace(BUILTIN["realistic"], faults=BUILTIN["ideal"].faults)
    service = LspService(world, profile, clock=clock)
    for i in range(40):
        start = clock.monotonic()
        assert service.handle(_body(world, i), client="h").status == 200
        clock.advance(max(0.0, 0.5 - (clock.monotonic() - start)))
    stats = service.stats.snapshot()
    assert stats["violations"]["total"] == 0
    assert stats["peak_rate_per_s"] <= 2
    assert clock.monotonic() > 20  # the fake clock saw the simulated latency


def test_outage_fails_everything_for_a_while_then_recovers(world: World, clock: FakeClock) -> None:
    profile = dataclasses.replace(BUILTIN["ideal"], outage=Outage(duration_s=30, start_after_s=10))
    service = LspService(world, profile, clock=clock)
    timeline = []
    for i in range(12):
        timeline.append(service.handle(_body(world, i), client="h").status)
        clock.advance(5)
    assert timeline == [200, 200, 503, 503, 503, 503, 503, 503, 200, 200, 200, 200]
    assert service.stats.snapshot()["by_outcome"]["outage"] == 6
    service.reset()  # the outage starts again from the next query
    assert service.handle(_body(world), client="h").status == 200


class _Refusing:
    def verify(self, envelope: bytes, *, client_identity: object) -> object:
        raise TokenRejected(RejectReason.EXPIRED_TOKEN)


class _Accepting:
    def __init__(self, params: QueryParams) -> None:
        self.params = params
        self.seen: list[object] = []

    def verify(self, envelope: bytes, *, client_identity: object) -> _Accepting:
        self.seen.append(client_identity)
        return self


def test_rejected_token_is_a_soap_fault_with_the_reason(world: World, clock: FakeClock) -> None:
    service = LspService(world, BUILTIN["ideal"], clock=clock, verifier=_Refusing())
    answer = service.handle(_body(world), client="h")
    assert answer.status == 500
    fault = unwrap(parse_xml(answer.body))
    assert getattr(fault, "reason", None) == "expired_token"
    assert getattr(fault, "code", None) == "wsse:FailedAuthentication"
    stats = service.stats.snapshot()
    assert stats["signature_failures"] == 1
    assert stats["signature_failure_reasons"] == {"expired_token": 1}
    assert stats["by_outcome"] == {"partial": 0, "signature_failure": 1}


def test_verifier_supplies_the_query(world: World, clock: FakeClock) -> None:
    patient = next(p for p in world.patients if p.registrations)
    verifier = _Accepting(make_params(patient.bsn))
    service = LspService(world, BUILTIN["ideal"], clock=clock, verifier=verifier)
    answer = service.handle(_body(world), client="h", client_identity="the-tls-client")
    assert answer.status == 200 and verifier.seen == ["the-tls-client"]
    assert answer.dispenses == len(world.dispenses_for(patient.bsn))


@pytest.mark.parametrize("body", [b"not xml", wrap_soap_body(b"<other xmlns='urn:x'/>")])
def test_garbage_is_a_client_fault(world: World, clock: FakeClock, body: bytes) -> None:
    service = LspService(world, BUILTIN["ideal"], clock=clock)
    answer = service.handle(body, client="h")
    assert answer.status == 500 and answer.outcome == "bad_request"


def test_ping_is_answered_with_a_pong(world: World, clock: FakeClock) -> None:
    service = LspService(world, BUILTIN["ideal"], clock=clock)
    ping = build_ping(
        message_id=Identifier(root="2.16.528.1.1007.3.3.12345678.1", extension="p1"),
        sender_application_id="10008890",
        now=clock.now(),
    )
    answer = service.handle(wrap_soap_body(ping), client="h")
    assert answer.status == 200
    pong = unwrap(parse_xml(answer.body))
    hl7 = "{urn:hl7-org:v3}"
    assert pong.tag == f"{hl7}COMT_IN229229"  # type: ignore[union-attr]
    target = pong.find(f"{hl7}acknowledgement/{hl7}targetMessage/{hl7}id")  # type: ignore[union-attr]
    assert target.get("extension") == "p1"
    assert service.stats.snapshot()["queries_received"] == 0


def test_flaky_retries_eventually_succeed(world: World, clock: FakeClock) -> None:
    service = LspService(world, BUILTIN["flaky"].with_time_scale(0), clock=clock)
    patient = next(p for p in world.patients if p.registrations)
    statuses = []
    for _ in range(40):
        answer = service.handle(query_body(make_params(patient.bsn)), client="h")
        statuses.append(answer.outcome)
        if answer.status == 200 and answer.outcome in {"records", "no_records"}:
            batch_of(answer.body)
            break
        clock.advance(1)
    assert statuses[-1] in {"records", "no_records"}


def test_same_client_behaviour_meets_the_same_faults(world: World) -> None:
    def run() -> list[str]:
        service = LspService(world, BUILTIN["flaky"].with_time_scale(0), clock=FakeClock())
        return [service.handle(_body(world, i % 30), client="h").outcome for i in range(90)]

    first = run()
    assert first == run()
    assert any(o.startswith("fault_") for o in first)


def test_created_at_unused_clock_now_stamps(world: World, clock: FakeClock) -> None:
    service = LspService(world, BUILTIN["ideal"], clock=clock)
    clock.advance(3600)
    answer = service.handle(_body(world), client="h")
    hl7 = "{urn:hl7-org:v3}"
    stamp = batch_of(answer.body).find(f"{hl7}creationTime").get("value")
    expected = (clock.now()).astimezone(dt.UTC).strftime("%Y%m%d%H%M%S")
    assert stamp.startswith(expected)


def _with_second_patient(body: bytes, other_bsn: str) -> bytes:
    root = parse_xml(body)
    (patient,) = root.iter("{urn:hl7-org:v3}patientID")
    second = copy.deepcopy(patient)
    value = second.find("{urn:hl7-org:v3}value")
    assert value is not None
    value.set("extension", other_bsn)
    patient.addnext(second)
    return etree.tostring(root)


def test_a_query_that_does_not_validate_is_refused_with_validatiefout(
    world: World, clock: FakeClock
) -> None:
    service = LspService(world, BUILTIN["ideal"], clock=clock)
    params = make_params(world.patients[0].bsn)
    body = _with_second_patient(query_body(params), world.patients[1].bsn.value)
    answer = service.handle(body, client="c")
    assert answer.status == 200 and answer.outcome == "invalid_query"
    ack = unwrap(parse_xml(answer.body))
    assert isinstance(ack, etree._Element)
    validate_accept_ack(ack)
    parsed = parse_answer(answer.body, expect=QueryRef.of(params))
    assert parsed.kind == "accept_ack" and parsed.acknowledgement == "CE"
    assert [i.code for i in parsed.issues] == ["VALIDATIEFOUT"]
    assert world.patients[1].bsn.value not in answer.body.decode()
    stats = service.stats.snapshot()
    assert stats["by_outcome"]["invalid_query"] == 1 and stats["dispenses_sent"] == 0
    rule = rule_for("VALIDATIEFOUT")
    assert rule is not None and rule.cls is CodeClass.OUR_BUG  # the client stops the run


def test_a_valid_query_still_gets_its_batch(world: World, clock: FakeClock) -> None:
    service = LspService(world, BUILTIN["ideal"], clock=clock)
    answer = service.handle(_body(world), client="c")
    assert answer.outcome != "invalid_query" and answer.status == 200


def test_a_slowed_down_profile_admits_a_client_at_its_rate(world: World, clock: FakeClock) -> None:
    profile = BUILTIN["realistic"].with_time_scale(4)  # 2 queries/s becomes 0.5/s
    profile = dataclasses.replace(profile, latency=dataclasses.replace(profile.latency, median_s=0))
    profile = dataclasses.replace(profile, faults=dataclasses.replace(BUILTIN["ideal"].faults))
    service = LspService(world, profile, clock=clock)
    outcomes = []
    for i in range(10):  # 0.5/s for 20 s
        outcomes.append(service.handle(_body(world, i), client="slow").outcome)
        clock.advance(2.0)
    stats = service.stats.snapshot()
    assert stats["violations"]["total"] == 0, outcomes
    assert stats["rate_limit"]["window_s"] == 2.0 and stats["rate_limit"]["per_window"] == 1
    assert service.handle(_body(world, 10), client="slow").outcome != "overload_rate"
    clock.advance(1.0)  # one second later: twice the rate
    assert service.handle(_body(world, 11), client="slow").outcome == "overload_rate"


def test_query_schema_is_compiled_when_the_service_is_made(
    world: World, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not by the first requests' connection threads (libxml2 then missed an include)."""
    import threading

    from prefetch.hl7v3 import schema
    from prefetch.lspsim import service as service_module

    compiled: list[tuple[str, threading.Thread]] = []

    def recording(name: str) -> object:
        compiled.append((name, threading.current_thread()))
        return schema.load_schema(name)

    monkeypatch.setattr(service_module, "load_schema", recording)
    made = LspService(world, BUILTIN["ideal"], clock=clock)
    if not made.validates_queries:
        pytest.skip("no schema set: queries are not validated")
    assert compiled == [(schema.QUERY_XSD, threading.current_thread())]
