"""The desk's actions: re-fetch now (through the engine) and record an objection."""

from __future__ import annotations

from conftest import csrf_of, make_client, sign_in
from desk_helpers import BSNS, DESK_NOW, SeededDay
from fastapi.testclient import TestClient
from samples import schedule
from sqlalchemy import Engine

from prefetch.composition import Stores
from prefetch.domain.coded import Code, Identifier
from prefetch.domain.dispense import Dispense, Product
from prefetch.domain.outcome import Outcome, OutcomeKind, SourceAnswer, SourceStatus
from prefetch.lsp.fake import FakeLspGateway
from prefetch.settings import Settings
from prefetch.store.audit import AuditLog
from prefetch.store.dispenses import DispenseRepository
from prefetch.store.mandates import MandateRepository
from prefetch.store.runs import RunRepository
from prefetch.web.compose import lsp_refetcher


def _records(*exts: str) -> Outcome:
    return Outcome(
        OutcomeKind.RECORDS,
        sources=(
            SourceAnswer(
                organization_ura="00063703",
                organization_name="Apotheek Zuid",
                application_id="10011427",
                system_uzi="000277280",
                message_id="2.16.840.1.113883.2.4.6.6^1",
                status=SourceStatus.OK,
                dispenses=tuple(
                    Dispense(
                        id=Identifier("2.16.528.1.1007.3.3.1234567.3", e),
                        product=Product(Code("16778685", "2.16.840.1.113883.2.4.4.8", "ASPIRINE")),
                    )
                    for e in exts
                ),
            ),
        ),
    )


def _client(engine: Engine, gateway: FakeLspGateway, user: str = "anna") -> TestClient:
    stores = Stores(
        engine=engine,
        runs=RunRepository(engine),
        dispenses=DispenseRepository(engine),
        audit=AuditLog(engine),
        mandates=MandateRepository(engine),
    )
    refetch = lsp_refetcher(
        Settings(), stores, lambda: [schedule()], lambda: gateway, clock=lambda: DESK_NOW
    )
    return sign_in(make_client(engine, refetch=refetch), user)


def _post(client: TestClient, path: str, **form: str) -> str:
    token = csrf_of(client.get("/werklijst").text)
    answer = client.post(path, data={"csrf_token": token, **form})
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


def test_refetch_queries_the_patient_now_and_shows_the_new_answer(
    desk_engine: Engine, seeded: SeededDay
) -> None:
    gateway = FakeLspGateway({BSNS[1]: [_records("a1", "a2")]})
    client = _client(desk_engine, gateway)
    before = seeded.items["P2"]
    assert "Geen gegevens" in client.get(f"/patienten/{before}").text
    target = _post(client, f"/patienten/{before}/opnieuw-ophalen")
    assert gateway.calls_for(BSNS[1]) == 1
    assert target != f"/patienten/{before}"  # the new item of the re-fetch run
    page = client.get(target).text
    assert "Opnieuw opgehaald." in page
    assert "Opgehaald: 2 verstrekkingen" in page
    assert "ASPIRINE" in page
    events = AuditLog(desk_engine).for_patient(BSNS[1])
    refetch = [e for e in events if e.event_type == "refetch"]
    assert len(refetch) == 1
    assert refetch[0].user_id == "desk:anna"
    assert refetch[0].authorisation_basis == "m1"
    assert refetch[0].responsible_user_id == "900000011"
    assert refetch[0].outcome == "success"
    assert sum(1 for e in events if e.event_type == "lsp_query") == 2  # the night's and now
    # the worklist shows the newest answer for the patient
    assert "Opgehaald: 2 verstrekkingen" in client.get("/werklijst?dag=2026-11-24").text


def test_refetch_is_refused_after_an_objection_and_for_a_skipped_patient(
    desk_engine: Engine, seeded: SeededDay
) -> None:
    gateway = FakeLspGateway()
    client = _client(desk_engine, gateway)
    item = seeded.items["P2"]
    _post(client, f"/patienten/{item}/bezwaar")  # not confirmed: nothing recorded
    assert "vink de bevestiging aan" in client.get(f"/patienten/{item}").text
    _post(client, f"/patienten/{item}/bezwaar", bevestig="ja")
    page = client.get(f"/patienten/{item}").text
    assert "Bezwaar vastgelegd" in page
    assert "Nu opnieuw ophalen" not in page
    _post(client, f"/patienten/{item}/opnieuw-ophalen")
    assert "de patiënt heeft bezwaar gemaakt" in client.get(f"/patienten/{item}").text
    _post(client, f"/patienten/{seeded.items['P4']}/opnieuw-ophalen")
    assert gateway.calls == []
    events = AuditLog(desk_engine).for_patient(BSNS[1])
    assert [e.outcome for e in events if e.event_type == "refetch"] == ["denied"]
    assert [e.user_id for e in events if e.event_type == "consent_refused"] == ["desk:anna"]


def test_refetch_needs_a_mandate_on_the_account(desk_engine: Engine, seeded: SeededDay) -> None:
    from desk_helpers import add_user

    from prefetch.store.desk_users import DeskRole

    add_user(desk_engine, "zonder", DeskRole.ASSISTANT, mandate_id=None)
    gateway = FakeLspGateway()
    client = _client(desk_engine, gateway, user="zonder")
    item = seeded.items["P2"]
    _post(client, f"/patienten/{item}/opnieuw-ophalen")
    assert "uw account heeft geen mandaat" in client.get(f"/patienten/{item}").text
    assert gateway.calls == []
