"""NEN 7513 completeness (issue 11): each action on patient data or its authority writes
one audit row with event, action, time, user and role, patient, object, source, and the
responsible clinician and authorisation basis where the action has them.

Driven for real: the LSP query (sent and answered) through the engine, a desk page view
and a consent change through the desk, an EPD read through the FHIR API, a CLI export,
a mandate registration and a purge."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import pytest
from desk_helpers import BSNS, DESK_NOW, SeededDay
from fastapi import FastAPI
from fastapi.testclient import TestClient
from samples import mandate as sample_mandate
from samples import schedule
from sqlalchemy import Engine
from typer.testing import CliRunner

from prefetch.audit_report import missing_fields, patient_audit
from prefetch.cli import app as cli_app
from prefetch.clock import FakeClock
from prefetch.domain.bsn import Bsn
from prefetch.domain.outcome import Outcome, OutcomeKind
from prefetch.domain.people import Appointment, Patient
from prefetch.domain.run import EngineConfig
from prefetch.engine import Prefetcher
from prefetch.lsp.fake import FakeLspGateway
from prefetch.settings import RetentionSettings
from prefetch.store.api_tokens import ApiTokens
from prefetch.store.audit import AuditLog
from prefetch.store.audit_verify import verify_chain
from prefetch.store.dispenses import DispenseRepository
from prefetch.store.mandates import MandateRepository
from prefetch.store.purge import purge
from prefetch.store.records import AuditEvent
from prefetch.store.runs import RunRepository
from prefetch.throttle import Throttle, ThrottleConfig
from prefetch.web.fhir_api import fhir_router

#: action -> (event type, whether it has a responsible clinician and an authorisation basis)
ACTIONS = {
    "query sent": ("lsp_query", True),
    "query answered": ("lsp_query_answer", True),
    "desk page view": ("record_view", True),
    "consent change": ("consent_refused", True),
    "FHIR API read": ("fhir_search", False),
    "CLI export": ("audit_export", False),
    "mandate registration": ("mandate_register", True),
    "purge": ("dispense_purge", False),
}
QUERIED = BSNS[20]


def csrf_of(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def _query(engine: Engine) -> None:
    clock = FakeClock(DESK_NOW)
    prefetcher = Prefetcher(
        runs=RunRepository(engine),
        dispenses=DispenseRepository(engine),
        gateway=FakeLspGateway({QUERIED: [Outcome(OutcomeKind.NO_RECORDS)]}),
        limiter=Throttle(ThrottleConfig(rate_per_second=50, max_in_flight=1)),
        config=EngineConfig(
            hospital_ura="00000099",
            hospital_name="Ziekenhuis Test",
            application_id="12345",
            system_uzi="000000123",
            workers=1,
            idle_poll_seconds=0.01,
        ),
        clock=clock,
    )
    plan = schedule(frozenset({"CARD"}))
    day = DESK_NOW.date() + dt.timedelta(days=1)
    patient = Patient(local_id="Q1", bsn=Bsn(QUERIED), bsn_verified=True)
    start = dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC)
    visit = Appointment(
        id="A-Q1", patient=patient, clinic="CARD", start=start, appointment_type="NP"
    )
    prepared = prefetcher.prepare(plan, day, [visit], mandate=sample_mandate(b"<m/>"))
    report = prefetcher.execute(prepared.run_id, plan, sample_mandate(b"<m/>"), clinic_day=day)
    assert report.summary.by_outcome == {"no_records": 1}


def _fhir_read(engine: Engine, bsn: str) -> None:
    token = ApiTokens(engine).create("epd-nen7513", now=DESK_NOW)
    assert token is not None
    api = FastAPI()
    api.include_router(fhir_router(engine, clock=FakeClock(DESK_NOW)))
    with TestClient(api) as client:
        answer = client.get(
            "/fhir/MedicationDispense",
            params={"patient.identifier": f"http://fhir.nl/fhir/NamingSystem/bsn|{bsn}"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 200, answer.text


def _check(event: AuditEvent, with_authority: bool) -> None:
    assert event.event_type and event.action and event.occurred_at
    assert event.user_id and event.user_role and event.source_system
    assert event.object_detail, event.event_type
    if event.event_type != "mandate_register":  # a mandate is about a clinician, not a patient
        assert missing_fields(event) == [], event.event_type
    if with_authority:
        assert event.responsible_user_id and event.authorisation_basis, event.event_type
    else:
        assert event.authorisation_basis, event.event_type  # token, reason or policy


def test_each_action_writes_one_complete_audit_row(
    client_as: Callable[[str], TestClient],
    desk_engine: Engine,
    seeded: SeededDay,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    viewed, objecting = BSNS[0], BSNS[1]
    before = {e.event_id for e in AuditLog(desk_engine).recent(10_000)}
    _query(desk_engine)
    desk = client_as("anna")
    assert desk.get(f"/patienten/{seeded.items['P1']}").status_code == 200
    token = csrf_of(desk.get("/werklijst").text)
    answer = desk.post(
        f"/patienten/{seeded.items['P2']}/bezwaar", data={"csrf_token": token, "bevestig": "ja"}
    )
    assert answer.status_code == 303
    _fhir_read(desk_engine, viewed)
    monkeypatch.setenv("PREFETCH_DATABASE_URL", str(desk_engine.url))
    exported = CliRunner().invoke(cli_app, ["audit", "patient", viewed])
    assert exported.exit_code == 0, exported.output
    renewed = dataclasses.replace(sample_mandate(b"<m/>"), id="m-nen7513")
    MandateRepository(desk_engine).add(renewed)
    purged = purge(
        desk_engine, RetentionSettings(dispense_days=1), now=DESK_NOW + dt.timedelta(days=30)
    )
    assert purged.dispenses_expired > 0
    new = [e for e in AuditLog(desk_engine).recent(10_000) if e.event_id not in before]
    for action, (event_type, with_authority) in ACTIONS.items():
        found = [e for e in new if e.event_type == event_type]
        assert found, f"no audit row for {action}"
        for event in found:
            _check(event, with_authority)
    assert {e.event_type for e in patient_audit(desk_engine, viewed)} >= {
        "record_view", "fhir_search", "audit_export", "dispense_purge"
    }  # fmt: skip
    assert "consent_refused" in {e.event_type for e in patient_audit(desk_engine, objecting)}
    assert {e.event_type for e in patient_audit(desk_engine, QUERIED)} >= {
        "lsp_query", "lsp_query_answer"
    }  # fmt: skip
    assert verify_chain(desk_engine).ok
