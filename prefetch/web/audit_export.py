"""A patient's audit rows for people: the desk page's table, in Dutch words.

Who queried or viewed the patient's data, when, under whose responsibility (the mandating
clinician) and on what basis (the mandate). The CSV and FHIR AuditEvent exports are
`prefetch.audit_report`'s, the same as `prefetch audit patient`.
"""

from __future__ import annotations

from dataclasses import dataclass

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
