"""What the simulated LSP answers to one query: the fan-out over the registrations.

Pure apart from the id source: takes the world, the profile, the parsed query and the
`QueryPlan` and returns the HTTP answer. HL7 is built only with `prefetch.hl7v3.answer`.

- one `QURX_IN990113NL` per registering pharmacy inside an `MCCI_IN200101`: `OK` with the
  dispenses in the look-back window (`dispenseEventEffectiveTimeInterval/low`), `NF` when
  none falls in it;
- a pharmacy that missed the time-out: an LSP-authored `QABRTITI` item (partial batch);
- regions mode: a pharmacy outside the client's regions: LSP-authored `AUTERR_SWV_FALSE`;
- nobody registered: the profile's form (empty batch, LSP-authored `NF`, or `KEY204`).
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from dataclasses import dataclass, field

from lxml import etree

from prefetch.domain import oids
from prefetch.domain.coded import Identifier
from prefetch.hl7v3.answer import (
    PUBLIC_PHARMACY,
    NamePart,
    PatientDemographics,
    SourceSystem,
    build_batch_element,
    build_dispense_item,
    build_lsp_issue_item,
    build_soap_fault,
    wrap_soap_body,
)
from prefetch.hl7v3.params import QueryParams, QueryRef
from prefetch.lspsim.dispgen import in_window
from prefetch.lspsim.faults import QueryPlan, retry_after_header
from prefetch.lspsim.profiles import FailureForm, NotRegistered, Profile
from prefetch.lspsim.world import Demographics, Pharmacy, World

LSP_MESSAGE_ROOT = "2.16.840.1.113883.2.4.6.6"
HL7_QUERY_RESPONSE = "2.16.840.1.113883.5.1067"  # HL7 QueryResponse: OK, NF, AE, QE
SOAP_XML = "text/xml; charset=utf-8"

ISSUE_TEXTS = {
    "KEY204": "Onbekende sleutel: patiënt niet bekend in de verwijsindex",
    "QABRTITI": "Query afgebroken: time-out bij het verzamelen van de antwoorden",
    "AUTERR_SWV_FALSE": "Er zijn gegevens beschikbaar buiten uw samenwerkingsverband/regio "
    "bij zorgaanbieder (URA: {ura})",
    "NF": "Geen gegevens gevonden",
}


@dataclass(frozen=True, slots=True)
class SimAnswer:
    """The HTTP answer to one request. `reset` means: close the connection, no answer."""

    status: int
    body: bytes
    outcome: str
    content_type: str = SOAP_XML
    headers: tuple[tuple[str, str], ...] = ()
    dispenses: int = 0
    reset: bool = False


@dataclass
class MessageIds:
    """Thread-safe source of LSP message ids (root 2.16.840.1.113883.2.4.6.6)."""

    start: int = 3_813_245_000
    _counter: itertools.count[int] = field(init=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._counter = itertools.count(self.start)

    def next(self) -> Identifier:
        with self._lock:
            value = next(self._counter)
        return Identifier(root=LSP_MESSAGE_ROOT, extension=str(value))


def soap_fault(code: str, reason: str, outcome: str) -> SimAnswer:
    return SimAnswer(status=500, body=build_soap_fault(code, reason), outcome=outcome)


def overload(profile: Profile, outcome: str, seconds: float) -> SimAnswer:
    """HTTP 503 with Retry-After (rate/concurrency refusals, faults and outages)."""
    return SimAnswer(
        status=503,
        body=b"Service Unavailable: LSP overloaded\n",
        content_type="text/plain; charset=utf-8",
        outcome=outcome,
        headers=(("Retry-After", retry_after_header(profile, seconds)),),
    )


def _issue(
    query: QueryRef,
    code: str,
    *,
    receiver: str,
    ids: MessageIds,
    now: dt.datetime,
    response_code: str = "AE",
    system: str = oids.AORTA_ACK_DETAIL,
    ura: str = "",
) -> etree._Element:
    return build_lsp_issue_item(
        query=query,
        code=code,
        code_system=system,
        text=ISSUE_TEXTS[code].format(ura=ura),
        message_id=ids.next(),
        receiver_application_id=receiver,
        now=now,
        response_code=response_code,
    )


PHARMACY_KINDS = {"J8": PUBLIC_PHARMACY}


def source_system(pharmacy: Pharmacy) -> SourceSystem:
    """The pharmacy as its items name it, with the details real items carry."""
    return SourceSystem(
        organization_ura=pharmacy.ura,
        organization_name=pharmacy.name,
        application_id=pharmacy.application_id,
        system_uzi=pharmacy.system_uzi,
        organization_code=PHARMACY_KINDS.get(pharmacy.kind_code or ""),
        organization_telecom=f"x-hl7-applicatie:{LSP_MESSAGE_ROOT}.{pharmacy.application_id}",
        organization_city=pharmacy.city,
        software_name=pharmacy.software_name,
    )


def patient_details(person: Demographics | None) -> PatientDemographics | None:
    """The synthetic patient as `Patient/addr` and `Person` (name, gender, birth date)."""
    if person is None:
        return None
    return PatientDemographics(
        name=(NamePart("given", person.given), NamePart("family", person.family)),
        gender_code=person.gender,
        birth_date=person.birth_date,
        street_name=person.street,
        house_number=person.house_number,
        postal_code=person.postal_code,
        city=person.city,
    )


def answer_query(
    *,
    world: World,
    profile: Profile,
    params: QueryParams,
    plan: QueryPlan,
    now: dt.datetime,
    ids: MessageIds,
) -> SimAnswer:
    """The answer for an admitted query, following `plan`."""
    failure = plan.failure
    if failure is FailureForm.HTTP_503:
        return overload(profile, "fault_http_503", profile.faults.retry_after_s)
    if failure is FailureForm.SOAP_FAULT:
        return soap_fault(
            "soap:Server", "Interne fout bij het verwerken van het bericht", "fault_soap_fault"
        )
    if failure is FailureForm.CONNECTION_RESET:
        return SimAnswer(status=0, body=b"", outcome="fault_connection_reset", reset=True)
    if failure is FailureForm.MALFORMED_XML:
        body = (
            b'<?xml version="1.0" encoding="UTF-8"?>\n<soap:Envelope xmlns:soap='
            b'"http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
            b'<MCCI_IN200101 xmlns="urn:hl7-org:v3"><id root="2.16.840.1.113883'
            b'.2.4.6.6" extension="0"></MCCI_IN200101 <</soap:Body>'
        )
        return SimAnswer(status=200, body=body, outcome="fault_malformed_xml")
    query = QueryRef.of(params)
    receiver = params.sender_application_id
    if failure is FailureForm.QABRTITI:
        item = _issue(query, "QABRTITI", receiver=receiver, ids=ids, now=now)
        return _batch(
            query, [item], receiver=receiver, ids=ids, now=now, outcome="fault_qabrtiti", count=0
        )
    items, outcome, count = _fan_out(
        world=world, profile=profile, params=params, plan=plan, now=now, ids=ids
    )
    answer = _batch(query, items, receiver=receiver, ids=ids, now=now, outcome=outcome, count=count)
    if failure is FailureForm.TRUNCATED_XML:
        cut = max(1, int(len(answer.body) * plan.cut_fraction))
        return SimAnswer(status=200, body=answer.body[:cut], outcome="fault_truncated_xml")
    return answer


def _batch(
    query: QueryRef,
    items: list[etree._Element],
    *,
    receiver: str,
    ids: MessageIds,
    now: dt.datetime,
    outcome: str,
    count: int,
) -> SimAnswer:
    batch = build_batch_element(
        query=query, items=items, message_id=ids.next(), receiver_application_id=receiver, now=now
    )
    return SimAnswer(status=200, body=wrap_soap_body(batch), outcome=outcome, dispenses=count)


def _fan_out(
    *,
    world: World,
    profile: Profile,
    params: QueryParams,
    plan: QueryPlan,
    now: dt.datetime,
    ids: MessageIds,
) -> tuple[list[etree._Element], str, int]:
    query = QueryRef.of(params)
    receiver = params.sender_application_id
    patient = world.patient(params.bsn)
    registrations = patient.registrations if patient else ()
    if not registrations:
        form = profile.not_registered
        if form is NotRegistered.EMPTY_BATCH:
            return [], "not_registered", 0
        if form is NotRegistered.LSP_NF:
            return (
                [
                    _issue(
                        query,
                        "NF",
                        receiver=receiver,
                        ids=ids,
                        now=now,
                        response_code="NF",
                        system=HL7_QUERY_RESPONSE,
                    )
                ],
                "not_registered",
                0,
            )
        return [_issue(query, "KEY204", receiver=receiver, ids=ids, now=now)], "not_registered", 0
    items: list[etree._Element] = []
    found = timed_out = refused = 0
    for reg in registrations:
        pharmacy = world.pharmacy(reg.pharmacy_ura)
        if profile.regions.enabled and pharmacy.region not in profile.regions.client_regions:
            refused += 1
            items.append(
                _issue(
                    query, "AUTERR_SWV_FALSE", receiver=receiver, ids=ids, now=now, ura=pharmacy.ura
                )
            )
            continue
        if pharmacy.ura in plan.timed_out:
            timed_out += 1
            items.append(_issue(query, "QABRTITI", receiver=receiver, ids=ids, now=now))
            continue
        dispenses = [d for d in reg.dispenses if in_window(d, params.look_back_from)]
        found += len(dispenses)
        items.append(
            build_dispense_item(
                query=query,
                source=source_system(pharmacy),
                bsn=params.bsn,
                dispenses=dispenses,
                message_id=ids.next(),
                receiver_application_id=receiver,
                now=now,
                patient_details=patient_details(patient.demographics) if patient else None,
            )
        )
    if timed_out:
        outcome = "partial"
    elif refused:
        outcome = "region_refused"
    else:
        outcome = "records" if found else "no_records"
    return items, outcome, found
