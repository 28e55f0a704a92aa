"""Who looked at a patient's data: the NEN 7513 answer for the patient-information desk.

- `record_access(engine, event)`: the one call for a view or an export (desk page, FHIR
  API read, CLI export); refuses an event that lacks a NEN 7513 field it must carry.
- `patient_audit(engine, bsn, since=, until=)`: the patient's rows, oldest first: who
  queried or viewed what, when, under whose responsibility, on what basis.
- `audit_csv(events)` and `audit_bundle(events, now=)`: the same as CSV, or as a FHIR R4
  Bundle of `AuditEvent`s (what `prefetch audit patient` prints).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, select

from prefetch.domain.bsn import Bsn
from prefetch.errors import InvalidValueError
from prefetch.store._support import Sessions, bsn_value
from prefetch.store.audit import AuditLog, event_of_row
from prefetch.store.records import AuditAction, AuditEvent
from prefetch.store.tables import AuditRow

#: Fields every view or export row must fill (NEN 7513: user and role, source).
VIEW_FIELDS = ("user_role", "source_system")
CSV_COLUMNS = (
    "occurred_at",
    "event_type",
    "action",
    "user_id",
    "user_role",
    "responsible_user_id",
    "authorisation_basis",
    "source_system",
    "source_workstation",
    "outcome",
    "object",
)
_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_BSN_SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"
_UZI_PERSON = "http://fhir.nl/fhir/NamingSystem/uzi-nr-pers"
_UZI_SYSTEM = "http://fhir.nl/fhir/NamingSystem/uzi-nr-sys"
_EVENT_TYPES = "urn:prefetch:audit-event-type"
_NAMESPACE = uuid.UUID("3f1f8e0c-5b7a-4c53-9a53-8f2b7f7d1e11")


def missing_fields(event: AuditEvent) -> list[str]:
    """NEN 7513 fields a patient-related row leaves empty (user role, source, patient)."""
    missing = [name for name in VIEW_FIELDS if not getattr(event, name)]
    if event.patient_bsn is None:
        missing.append("patient_bsn")
    return missing


def record_access(engine: Engine, event: AuditEvent) -> None:
    """Append a view or export of patient data (desk page, FHIR read, CLI export)."""
    missing = missing_fields(event)
    if missing:
        raise InvalidValueError(
            "audit row incomplete", event_id=event.event_id, missing=",".join(missing)
        )
    AuditLog(engine).append(event)


def patient_audit(
    engine: Engine,
    bsn: Bsn | str,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> list[AuditEvent]:
    """The patient's audit rows with `since <= occurred_at < until`, oldest first."""
    query = select(AuditRow).where(AuditRow.patient_bsn == bsn_value(bsn))
    if since is not None:
        query = query.where(AuditRow.occurred_at >= since)
    if until is not None:
        query = query.where(AuditRow.occurred_at < until)
    with Sessions(engine).read() as session:
        rows = session.scalars(query.order_by(AuditRow.occurred_at, AuditRow.id))
        return [event_of_row(row) for row in rows]


def _utc(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def audit_csv(events: Sequence[AuditEvent]) -> str:
    """One line per row (no BSN: the report is for that patient), header first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for e in events:
        writer.writerow(
            [
                _utc(e.occurred_at),
                e.event_type,
                e.action.value,
                e.user_id,
                e.user_role or "",
                e.responsible_user_id or "",
                e.authorisation_basis or "",
                e.source_system,
                e.source_workstation or "",
                e.outcome,
                json.dumps(dict(e.object_detail), sort_keys=True, ensure_ascii=False),
            ]
        )
    return out.getvalue()


def _outcome_code(outcome: str) -> str:
    if outcome in ("failed", "error"):
        return "8"  # serious failure
    if outcome in ("refused", "denied", "transient"):
        return "4"  # minor failure
    return "0"


def _who(user_id: str, role: str | None) -> dict[str, Any]:
    if user_id.isdigit() and len(user_id) == 9:
        system = _UZI_SYSTEM if role == "system" else _UZI_PERSON
    else:
        system = "urn:prefetch:user"
    return {"identifier": {"system": system, "value": user_id}, "display": user_id}


def _agents(e: AuditEvent) -> list[dict[str, Any]]:
    user: dict[str, Any] = {"who": _who(e.user_id, e.user_role), "requestor": True}
    if e.user_role:
        user["role"] = [{"text": e.user_role}]
    if e.authorisation_basis:
        user["policy"] = [f"urn:prefetch:mandate:{quote(e.authorisation_basis, safe='')}"]
    if e.source_workstation:
        user["network"] = {"address": e.source_workstation, "type": "1"}
    agents = [user]
    if e.responsible_user_id:
        agents.append(
            {
                "type": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "code": "RESP",
                            "display": "responsible party",
                        }
                    ]
                },
                "who": {
                    "identifier": {"system": _UZI_PERSON, "value": e.responsible_user_id},
                    "display": e.responsible_user_id,
                },
                "requestor": False,
            }
        )
    return agents


def _entities(e: AuditEvent) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    if e.patient_bsn:
        entities.append(
            {
                "what": {"identifier": {"system": _BSN_SYSTEM, "value": e.patient_bsn}},
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "1",
                    "display": "Person",
                },
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "1",
                    "display": "Patient",
                },
            }
        )
    details = [
        {"type": str(key), "valueString": str(value)}
        for key, value in sorted(e.object_detail.items())
        if value is not None and str(value)
    ]
    if details:
        entities.append(
            {
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "2",
                    "display": "System Object",
                },
                "name": e.event_type,
                "detail": details,
            }
        )
    return entities


def audit_event_resource(e: AuditEvent) -> dict[str, Any]:
    """One row as a FHIR R4 AuditEvent."""
    query = e.action is AuditAction.EXECUTE
    return {
        "resourceType": "AuditEvent",
        "id": str(uuid.uuid5(_NAMESPACE, e.event_id)),
        "type": {
            "system": _DCM,
            "code": "110112" if query else "110110",
            "display": "Query" if query else "Patient Record",
        },
        "subtype": [{"system": _EVENT_TYPES, "code": e.event_type}],
        "action": e.action.value,
        "recorded": _utc(e.occurred_at),
        "outcome": _outcome_code(e.outcome),
        "outcomeDesc": e.outcome,
        "purposeOfEvent": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                        "code": "TREAT",
                    }
                ]
            }
        ],
        "agent": _agents(e),
        "source": {"observer": {"display": e.source_system}},
        "entity": _entities(e),
    }


def audit_bundle(events: Sequence[AuditEvent], *, now: dt.datetime) -> dict[str, Any]:
    """A FHIR R4 Bundle (collection) of the rows as AuditEvents."""
    entries = []
    for e in events:
        resource = audit_event_resource(e)
        entries.append({"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource})
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _utc(now),
        "entry": entries,
    }
