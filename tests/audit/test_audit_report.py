"""`prefetch audit patient`: who queried or viewed a patient's data, as CSV and as a FHIR
R4 Bundle of AuditEvents that parses with fhir.resources (R4B models)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from audit_helpers import BSN_A, BSN_B, T0, event
from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import Engine
from typer.testing import CliRunner

from prefetch.audit_report import audit_bundle, patient_audit, record_access
from prefetch.cli import app
from prefetch.errors import InvalidValueError
from prefetch.store.audit import AuditLog
from prefetch.store.records import AuditAction

runner = CliRunner()
DAY = dt.timedelta(days=1)


def _history(engine: Engine) -> None:
    log = AuditLog(engine)
    log.append(event(BSN_A, at=T0))  # the evening query
    log.append(event(BSN_B, at=T0 + dt.timedelta(minutes=1)))  # someone else
    record_access(
        engine,
        event(
            BSN_A, at=T0 + DAY, event_type="record_view", action=AuditAction.READ, outcome="success"
        ),
    )
    log.append(event(BSN_A, at=T0 + 3 * DAY))


def test_patient_audit_lists_the_patients_rows_in_the_window(migrated_engine: Engine) -> None:
    _history(migrated_engine)
    rows = patient_audit(migrated_engine, BSN_A)
    assert [(r.event_type, r.action) for r in rows] == [
        ("lsp_query", AuditAction.EXECUTE),
        ("record_view", AuditAction.READ),
        ("lsp_query", AuditAction.EXECUTE),
    ]
    window = patient_audit(migrated_engine, BSN_A, since=T0 + DAY, until=T0 + 2 * DAY)
    assert [r.event_type for r in window] == ["record_view"]


def test_the_fhir_bundle_parses_as_r4_audit_events(migrated_engine: Engine) -> None:
    _history(migrated_engine)
    bundle = audit_bundle(patient_audit(migrated_engine, BSN_A), now=T0 + 4 * DAY)
    parsed = Bundle.model_validate(bundle)
    assert parsed.type == "collection"
    assert parsed.entry is not None and len(parsed.entry) == 3
    events = [FhirAuditEvent.model_validate(e["resource"]) for e in bundle["entry"]]
    query = events[0]
    assert query.action == "E" and query.type.code == "110112"
    assert query.entity is not None and query.entity[0].what.identifier.value == BSN_A
    agents = {a.requestor: a for a in query.agent}
    assert agents[True].who.identifier.value == "900000012"  # our system, under ...
    assert agents[False].who.identifier.value == "000018389"  # ... the responsible clinician
    assert agents[True].policy == ["urn:prefetch:mandate:mandate-1"]
    assert events[1].action == "R"


def test_record_access_refuses_an_incomplete_view(migrated_engine: Engine) -> None:
    incomplete = event(BSN_A, event_type="record_view", action=AuditAction.READ)
    incomplete = type(incomplete)(**{**_fields(incomplete), "user_role": None})
    with pytest.raises(InvalidValueError, match="user_role"):
        record_access(migrated_engine, incomplete)


def _fields(e: object) -> dict[str, object]:
    return {name: getattr(e, name) for name in e.__slots__}  # type: ignore[attr-defined]


def test_cli_csv_and_fhir_and_the_export_is_audited(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefetch.store.db import make_engine, upgrade

    monkeypatch.setenv("PREFETCH_DATABASE_URL", database_url)
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        _history(engine)
        result = runner.invoke(app, ["audit", "patient", BSN_A, "--to", "2026-11-22"])
        assert result.exit_code == 0, result.output
        rows = list(csv.DictReader(io.StringIO(result.output)))
        assert [r["event_type"] for r in rows] == ["lsp_query", "record_view"]
        assert rows[0]["responsible_user_id"] == "000018389"
        assert rows[0]["authorisation_basis"] == "mandate-1"
        assert BSN_A not in result.output  # the report is for that patient: no BSN column
        result = runner.invoke(app, ["audit", "patient", BSN_A, "--format", "fhir"])
        assert result.exit_code == 0, result.output
        bundle = Bundle.model_validate(json.loads(result.output))
        assert bundle.entry is not None
        kinds = [e.resource.entity[-1].name for e in bundle.entry]  # type: ignore[union-attr]
        assert kinds[-1] == "audit_export"  # the first export is itself on the record
        assert len(kinds) == 4
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["123456789"], "not a valid BSN"),
        ([BSN_A, "--from", "yesterday"], "--from must be a date"),
        ([BSN_A, "--format", "xml"], "--format must be csv or fhir"),
    ],
)
def test_cli_usage_errors_exit_2(args: list[str], expected: str) -> None:
    result = runner.invoke(app, ["audit", "patient", *args])
    assert result.exit_code == 2
    assert expected in result.output
    assert "123456789" not in result.output
