"""Builders for what the LSP sends back (used by the simulator and by tests).

- `build_dispense_item`: one pharmacy's `QURX_IN990113NL` (OK with dispenses, else NF);
- `build_lsp_issue_item`: an item authored by the LSP itself with a
  `reasonOf/justifiedDetectedIssue` (e.g. KEY204, QABRTITI, AUTERR_SWV_FALSE);
- `build_batch`: the `MCCI_IN200101` holding the items;
- `build_accept_ack`: an `MCCI_IN000002` transmission-level reject;
- `build_soap_fault` / `wrap_soap_body`: SOAP 1.1.

Everything built here validates against the assembled schemas in `schemas/`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from prefetch.domain import oids
from prefetch.domain.bsn import Bsn
from prefetch.domain.coded import Code, Identifier
from prefetch.domain.dispense import Dispense
from prefetch.domain.outcome import Issue
from prefetch.errors import InvalidValueError
from prefetch.hl7v3.aorta_settings import DEFAULT_SETTINGS, AortaSettings
from prefetch.hl7v3.dispense_xml import build_dispense_event
from prefetch.hl7v3.params import QueryRef
from prefetch.hl7v3.soap import build_soap_fault, wrap_soap_body
from prefetch.hl7v3.wrapper import device, transmission_head
from prefetch.hl7v3.xmlbuild import (
    cd,
    format_date,
    format_ts,
    ii,
    ii_values,
    root_element,
    sub,
    text_el,
    to_bytes,
)

__all__ = [
    "GENDER_SYSTEM",
    "ORGANIZATION_TYPE_SYSTEM",
    "PUBLIC_PHARMACY",
    "NamePart",
    "PatientDemographics",
    "SourceSystem",
    "build_accept_ack",
    "build_batch",
    "build_batch_element",
    "build_dispense_item",
    "build_lsp_issue_item",
    "build_soap_fault",
    "wrap_soap_body",
]

ITEM_INTERACTION = "QURX_IN990113NL"
_RESPONSE_CODES = frozenset({"OK", "NF", "AE", "QE"})


ORGANIZATION_TYPE_SYSTEM = "2.16.840.1.113883.2.4.15.1060"  # Vektis AGB organisation types
GENDER_SYSTEM = "2.16.840.1.113883.5.1"  # HL7 AdministrativeGender (M, F, UN)
PUBLIC_PHARMACY = Code(code="J8", system=ORGANIZATION_TYPE_SYSTEM, display="Openbare apotheek")
_NAME_PARTS = frozenset({"given", "prefix", "family", "suffix"})


@dataclass(frozen=True, slots=True)
class SourceSystem:
    """A pharmacy information system answering through the LSP.

    The optional details are written as the real LSP items carry them (lsp-batch examples):
    `AssignedDevice/assignedPrincipalChoiceList/assignedDevice/softwareName` and
    `Organization/code` (e.g. `PUBLIC_PHARMACY`), `telecom`, `addr/city`. Left at None,
    the item is what it was before they existed.
    """

    organization_ura: str
    organization_name: str
    application_id: str  # AORTA application id (2.16.840.1.113883.2.4.6.6)
    system_uzi: str  # UZI system number (2.16.528.1.1007.3.2)
    organization_code: Code | None = None  # code system ORGANIZATION_TYPE_SYSTEM
    organization_telecom: str | None = None  # e.g. "x-hl7-applicatie:2.16.840...6.6.10006673"
    organization_city: str | None = None
    software_name: str | None = None


@dataclass(frozen=True, slots=True)
class NamePart:
    """One part of a person name: `kind` is given / prefix / family / suffix.

    `qualifier` is the HL7 EntityNamePartQualifier ("IN" initials, "VV" voorvoegsel,
    "BR" birth name, "SP" spouse name, ...).
    """

    kind: str
    text: str
    qualifier: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in _NAME_PARTS:
            raise InvalidValueError("unknown name part", kind=self.kind)


@dataclass(frozen=True, slots=True)
class PatientDemographics:
    """Patient details an LSP item may carry besides the BSN (test data for the simulator).

    Written as `Patient/addr`, `statusCode`, `Person/name|administrativeGenderCode|birthTime`
    as in the official `QURX_EX990113NL_*` examples. The parser never reads them.
    """

    name: tuple[NamePart, ...] = ()
    name_use: str | None = "L"
    gender_code: str | None = None  # "M", "F", "UN" in GENDER_SYSTEM
    birth_date: dt.date | None = None
    street_name: str | None = None
    house_number: str | None = None
    postal_code: str | None = None
    city: str | None = None
    address_use: str | None = "HP"

    @property
    def has_address(self) -> bool:
        return any(
            v is not None
            for v in (self.street_name, self.house_number, self.postal_code, self.city)
        )

    @property
    def has_person(self) -> bool:
        return bool(self.name) or self.gender_code is not None or self.birth_date is not None


def _item_head(
    *,
    query: QueryRef,
    message_id: Identifier,
    receiver_application_id: str,
    now: dt.datetime,
    ack_type: str,
    settings: AortaSettings,
) -> etree._Element:
    root = transmission_head(ITEM_INTERACTION, message_id=message_id, now=now, settings=settings)
    ack = sub(root, "acknowledgement", typeCode=ack_type)
    ii(sub(ack, "targetMessage"), "id", query.message_id)
    device(root, "receiver", receiver_application_id)
    device(root, "sender", settings.lsp_application_id)
    return root


def _query_ack(cap: etree._Element, query: QueryRef, response_code: str, count: int) -> None:
    ack = sub(cap, "queryAck")
    ii(ack, "queryId", query.query_id)
    sub(ack, "queryResponseCode", code=response_code)
    sub(ack, "resultTotalQuantity", value=str(count))
    sub(ack, "resultCurrentQuantity", value=str(count))
    sub(ack, "resultRemainingQuantity", value="0")


def build_dispense_item(
    *,
    query: QueryRef,
    source: SourceSystem,
    bsn: Bsn,
    dispenses: Sequence[Dispense],
    message_id: Identifier,
    receiver_application_id: str,
    now: dt.datetime,
    settings: AortaSettings = DEFAULT_SETTINGS,
    patient_details: PatientDemographics | None = None,
) -> etree._Element:
    """One pharmacy's `QURX_IN990113NL`: `OK` with a dispense list, or `NF` when empty.

    `patient_details` (only written with dispenses: an NF item has no patient) adds the
    address, name, gender and birth date next to the BSN.
    """
    root = _item_head(
        query=query,
        message_id=message_id,
        receiver_application_id=receiver_application_id,
        now=now,
        ack_type="AA",
        settings=settings,
    )
    cap = sub(root, "ControlActProcess", classCode="CACT", moodCode="EVN")
    sub(cap, "effectiveTime", value=format_ts(now))
    dev = sub(
        sub(sub(cap, "authorOrPerformer", typeCode="AUT"), "participant"),
        "AssignedDevice",
        classCode="ASSIGNED",
    )
    _source_device(dev, source)
    if dispenses:
        lst = sub(
            sub(cap, "subject", typeCode="SUBJ", contextConductionInd="false"),
            "MedicationDispenseList",
            classCode="LIST",
            moodCode="EVN",
        )
        sub(lst, "code", code="MEDLIST", codeSystem="2.16.840.1.113883.5.4")
        patient = sub(sub(lst, "subject", typeCode="SBJ"), "Patient", classCode="PAT")
        ii_values(patient, "id", oids.BSN, bsn.value)
        _patient(patient, patient_details)
        for dispense in dispenses:
            build_dispense_event(sub(lst, "component", typeCode="COMP"), dispense)
    _query_ack(cap, query, "OK" if dispenses else "NF", len(dispenses))
    return root


def _source_device(dev: etree._Element, source: SourceSystem) -> None:
    """AssignedDevice content in COCT_MT090300 order: id*, assignedPrincipalChoiceList,
    Organization (id, code, name, telecom, addr in COCT_MT150000 order)."""
    ii_values(dev, "id", oids.UZI_SYSTEM, source.system_uzi)
    ii_values(dev, "id", oids.AORTA_APPLICATION, source.application_id)
    if source.software_name is not None:
        choice = sub(sub(dev, "assignedPrincipalChoiceList"), "assignedDevice")
        text_el(choice, "softwareName", source.software_name)
    org = sub(dev, "Organization", classCode="ORG", determinerCode="INSTANCE")
    ii_values(org, "id", oids.URA, source.organization_ura)
    if source.organization_code is not None:
        cd(org, "code", source.organization_code, allow_original_text=False)
    text_el(org, "name", source.organization_name)
    if source.organization_telecom is not None:
        sub(org, "telecom", value=source.organization_telecom)
    if source.organization_city is not None:
        text_el(sub(org, "addr"), "city", source.organization_city)


def _patient(patient: etree._Element, details: PatientDemographics | None) -> None:
    """Patient content after the id: addr, statusCode, Person (QURX_MT990113NL order)."""
    if details is not None and details.has_address:
        addr = sub(patient, "addr", use=details.address_use)
        for tag, value in (
            ("streetName", details.street_name),
            ("houseNumber", details.house_number),
            ("postalCode", details.postal_code),
            ("city", details.city),
        ):
            if value is not None:
                text_el(addr, tag, value)
    sub(patient, "statusCode", code="active")
    if details is None or not details.has_person:
        return
    person = sub(patient, "Person", classCode="PSN", determinerCode="INSTANCE")
    if details.name:
        name = sub(person, "name", use=details.name_use)
        for part in details.name:
            text_el(name, part.kind, part.text, qualifier=part.qualifier)
    if details.gender_code is not None:
        sub(person, "administrativeGenderCode", code=details.gender_code, codeSystem=GENDER_SYSTEM)
    if details.birth_date is not None:
        sub(person, "birthTime", value=format_date(details.birth_date))


def build_lsp_issue_item(
    *,
    query: QueryRef,
    code: str,
    code_system: str,
    text: str | None,
    message_id: Identifier,
    receiver_application_id: str,
    now: dt.datetime,
    response_code: str = "AE",
    settings: AortaSettings = DEFAULT_SETTINGS,
) -> etree._Element:
    """An item authored by the LSP itself (AssignedDevice app id 1) with a detected issue.

    `response_code` "AE"/"QE" gives `acknowledgement AE`; "NF" (an LSP-authored not-found)
    and "OK" give `acknowledgement AA`.
    """
    if response_code not in _RESPONSE_CODES:
        raise InvalidValueError("unknown queryResponseCode", code=response_code)
    ack_type = "AE" if response_code in ("AE", "QE") else "AA"
    root = _item_head(
        query=query,
        message_id=message_id,
        receiver_application_id=receiver_application_id,
        now=now,
        ack_type=ack_type,
        settings=settings,
    )
    cap = sub(root, "ControlActProcess", classCode="CACT", moodCode="EVN")
    sub(cap, "effectiveTime", value=format_ts(now))
    dev = sub(
        sub(sub(cap, "authorOrPerformer", typeCode="AUT"), "participant"),
        "AssignedDevice",
        classCode="ASSIGNED",
    )
    ii_values(dev, "id", oids.AORTA_APPLICATION, settings.lsp_application_id)
    issue = sub(
        sub(cap, "reasonOf", typeCode="RSON"),
        "justifiedDetectedIssue",
        classCode="ALRT",
        moodCode="EVN",
    )
    sub(issue, "code", code=code, codeSystem=code_system, displayName=text)
    _query_ack(cap, query, response_code, 0)
    return root


def build_batch(
    *,
    query: QueryRef,
    items: Sequence[etree._Element],
    message_id: Identifier,
    receiver_application_id: str,
    now: dt.datetime,
    ack_type: str = "AA",
    details: Sequence[Issue] = (),
    settings: AortaSettings = DEFAULT_SETTINGS,
) -> bytes:
    """The `MCCI_IN200101` batch holding `items`, as UTF-8 bytes.

    `ack_type` / `details` give a transmission-level acknowledgement (e.g. "AE" with
    `VALIDATIEFOUT`); normally "AA" without details.
    """
    return to_bytes(
        build_batch_element(
            query=query,
            items=items,
            message_id=message_id,
            receiver_application_id=receiver_application_id,
            now=now,
            ack_type=ack_type,
            details=details,
            settings=settings,
        )
    )


def build_batch_element(
    *,
    query: QueryRef,
    items: Sequence[etree._Element],
    message_id: Identifier,
    receiver_application_id: str,
    now: dt.datetime,
    ack_type: str = "AA",
    details: Sequence[Issue] = (),
    settings: AortaSettings = DEFAULT_SETTINGS,
) -> etree._Element:
    """`build_batch` as an element (to put in a SOAP body without parsing it again)."""
    root = root_element("MCCI_IN200101")
    ii(root, "id", message_id)
    sub(root, "creationTime", value=format_ts(now))
    sub(root, "versionCode", code=settings.version_code)
    ii_values(root, "interactionId", oids.INTERACTION, "MCCI_IN200101")
    ii_values(root, "profileId", oids.PROFILE, settings.profile_id)
    sub(root, "transmissionQuantity", value=str(len(items)))
    ack = sub(root, "acknowledgement", typeCode=ack_type)
    _details(ack, details)
    ii(sub(ack, "targetTransmission"), "id", query.message_id)
    device(root, "receiver", receiver_application_id)
    device(root, "sender", settings.lsp_application_id)
    for item in items:
        root.append(_copy(item))
    return root


def _details(ack: etree._Element, details: Sequence[Issue]) -> None:
    for detail in details:
        el = sub(ack, "acknowledgementDetail", typeCode="E")
        cd(el, "code", Code(code=detail.code, system=detail.system))
        if detail.text is not None:
            text_el(el, "text", detail.text)


def _copy(item: etree._Element) -> etree._Element:
    if item.getparent() is None:
        return item
    return etree.fromstring(etree.tostring(item))


def build_accept_ack(
    *,
    query: QueryRef,
    code: str,
    code_system: str,
    text: str | None,
    message_id: Identifier,
    receiver_application_id: str,
    now: dt.datetime,
    type_code: str = "CE",
    settings: AortaSettings = DEFAULT_SETTINGS,
) -> bytes:
    """An `MCCI_IN000002` accept acknowledgement (a transmission-level reject: CE / CR)."""
    root = transmission_head("MCCI_IN000002", message_id=message_id, now=now, settings=settings)
    ack = sub(root, "acknowledgement", typeCode=type_code)
    _details(ack, (Issue(code=code, system=code_system, text=text),))
    ii(sub(ack, "targetMessage"), "id", query.message_id)
    device(root, "receiver", receiver_application_id)
    device(root, "sender", settings.lsp_application_id)
    return to_bytes(root)
