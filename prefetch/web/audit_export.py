"""A patient's audit rows for people: the page's table, CSV, and FHIR R4 AuditEvent.

Who queried or viewed the patient's data, when, under whose responsibility (the mandating
clinician) and on what basis (the mandate). The FHIR form is a `collection` Bundle of
R4 `AuditEvent` resources (type DICOM 110110 "Patient Record", the BSN as the entity).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from dataclasses import dataclass
from typing import Any

from prefetch.store.records import AuditEvent
from prefetch.web.labels import DASH, ROLE_LABELS, local_time

BSN_SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"
UZI_SYSTEM = "http://fhir.nl/fhir/NamingSystem/uzi-nr-pers"
EVENT_WORDS = {
    "lsp_query": "medicatie opgevraagd bij het LSP",
    "record_view": "patiëntpagina bekeken",
    "refetch": "opnieuw ophalen gevraagd",
    "consent_refused": "bezwaar vastgelegd",
    "audit_view": "auditoverzicht bekeken",
    "audit_export": "auditoverzicht geëxporteerd",
}
_ACTION_WORDS = {"C": "vastleggen", "R": "inzien", "U": "wijzigen", "D": "verwijderen"}
_ACTION_WORDS["E"] = "uitvoeren"


@dataclass(frozen=True, slots=True)
class AuditLine:
    when: str
    what: str
    who: str
    role: str
    responsible: str
    basis: str
    outcome: str


def _who(event: AuditEvent) -> str:
    if event.user_id.startswith("desk:"):
        return event.user_id.removeprefix("desk:")
    if event.user_role == "system":
        return f"prefetch (systeem {event.user_id})"
    return event.user_id


def audit_rows(events: list[AuditEvent]) -> list[AuditLine]:
    """Newest first, in words."""
    return [
        AuditLine(
            when=local_time(e.occurred_at),
            what=EVENT_WORDS.get(e.event_type, e.event_type),
            who=_who(e),
            role=ROLE_LABELS.get(e.user_role or "", e.user_role or DASH),
            responsible=f"UZI {e.responsible_user_id}" if e.responsible_user_id else DASH,
            basis=e.authorisation_basis or DASH,
            outcome=e.outcome,
        )
        for e in sorted(events, key=lambda e: e.occurred_at, reverse=True)
    ]


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
    "event_id",
)


def audit_csv(events: list[AuditEvent]) -> str:
    """One line per event, oldest first (UTC ISO times); the BSN is the file's subject."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for e in sorted(events, key=lambda e: e.occurred_at):
        writer.writerow(
            [
                e.occurred_at.astimezone(dt.UTC).isoformat(),
                e.event_type,
                e.action.value,
                e.user_id,
                e.user_role or "",
                e.responsible_user_id or "",
                e.authorisation_basis or "",
                e.source_system,
                e.source_workstation or "",
                e.outcome,
                e.event_id,
            ]
        )
    return out.getvalue()


def _outcome_code(outcome: str) -> str:
    """FHIR AuditEvent.outcome: 0 success, 4 minor failure, 8 serious failure."""
    if outcome in ("success", "records", "no_records", "no_registrations"):
        return "0"
    if outcome in ("denied", "refused", "transient"):
        return "4"
    return "8"


def fhir_audit_event(event: AuditEvent) -> dict[str, Any]:
    agents: list[dict[str, Any]] = [
        {
            "type": {"text": event.user_role or "user"},
            "who": {"identifier": {"value": event.user_id}, "display": _who(event)},
            "requestor": True,
            "network": {"address": event.source_workstation, "type": "2"}
            if event.source_workstation
            else None,
        }
    ]
    if event.responsible_user_id:
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
                "who": {"identifier": {"system": UZI_SYSTEM, "value": event.responsible_user_id}},
                "requestor": False,
                "policy": [event.authorisation_basis] if event.authorisation_basis else None,
            }
        )
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": event.event_id,
        "type": {
            "system": "http://dicom.nema.org/resources/ontology/DCM",
            "code": "110110",
            "display": "Patient Record",
        },
        "subtype": [{"code": event.event_type, "display": EVENT_WORDS.get(event.event_type)}],
        "action": event.action.value,
        "recorded": event.occurred_at.astimezone(dt.UTC).isoformat(),
        "outcome": _outcome_code(event.outcome),
        "outcomeDesc": event.outcome,
        "agent": [{k: v for k, v in a.items() if v is not None} for a in agents],
        "source": {"observer": {"display": event.source_system}},
    }
    if event.patient_bsn:
        resource["entity"] = [
            {
                "what": {"identifier": {"system": BSN_SYSTEM, "value": event.patient_bsn}},
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "1",
                    "display": "Person",
                },
            }
        ]
    return resource


def fhir_audit_bundle(events: list[AuditEvent], *, now: dt.datetime) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "id": uuid.uuid4().hex,
        "type": "collection",
        "timestamp": now.astimezone(dt.UTC).isoformat(),
        "entry": [
            {"fullUrl": f"urn:uuid:{uuid.UUID(hex=e.event_id)}", "resource": fhir_audit_event(e)}
            if _is_hex32(e.event_id)
            else {"resource": fhir_audit_event(e)}
            for e in sorted(events, key=lambda e: e.occurred_at)
        ],
    }


def _is_hex32(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)
