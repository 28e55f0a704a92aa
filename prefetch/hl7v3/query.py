"""Build and read the `QURX_IN990111NL` query ("Opvragen medicatieverstrekkingenlijst").

Element order follows MCCI_MT000100 (transmission), QUQI_MT021001_OPT_OV (ControlAct with
the overseer) and our `QURX_MT990111NL.QueryByParameter` payload (see `schemas/`).
`parse_query` is what the simulator uses to read an incoming query back into the same
`QueryParams` value.
"""

from __future__ import annotations

import datetime as dt

from lxml import etree

from prefetch.domain import oids
from prefetch.domain.bsn import Bsn
from prefetch.domain.people import Clinician
from prefetch.errors import MessageError
from prefetch.hl7v3.aorta_settings import DEFAULT_SETTINGS, AortaSettings
from prefetch.hl7v3.params import QueryParams
from prefetch.hl7v3.read import child, children, element_text, first_text, identifier, parse_ts
from prefetch.hl7v3.wrapper import device, transmission_head
from prefetch.hl7v3.xmlbuild import format_date, ii, ii_values, sub, text_el

INTERACTION = "QURX_IN990111NL"


def build_query(params: QueryParams, settings: AortaSettings = DEFAULT_SETTINGS) -> etree._Element:
    """The complete query message (no SOAP envelope, no security header)."""
    root = transmission_head(
        INTERACTION, message_id=params.message_id, now=params.created_at, settings=settings
    )
    device(root, "receiver", settings.lsp_application_id)
    device(root, "sender", params.sender_application_id)
    cap = sub(root, "ControlActProcess", classCode="CACT", moodCode="EVN")
    participant = sub(sub(cap, "authorOrPerformer", typeCode="AUT"), "participant")
    if params.author is not None:
        _assigned_person(participant, "AssignedPerson", params.author, params, settings)
    else:
        assert params.author_system_uzi is not None  # guaranteed by QueryParams
        dev = sub(participant, "AssignedDevice", classCode="ASSIGNED")
        ii_values(dev, "id", oids.UZI_SYSTEM, params.author_system_uzi)
        ii_values(dev, "id", oids.AORTA_APPLICATION, params.sender_application_id)
        _organization(dev, params, settings)
    overseer = sub(cap, "overseer", typeCode="RESP")
    _assigned_person(overseer, "assignedEntity", params.overseer, params, settings)
    _query_by_parameter(cap, params, settings)
    return root


def _assigned_person(
    parent: etree._Element,
    tag: str,
    clinician: Clinician,
    params: QueryParams,
    settings: AortaSettings,
) -> None:
    person = sub(parent, tag, classCode="ASSIGNED")
    ii_values(person, "id", oids.UZI_PERSON, clinician.uzi_number)
    sub(person, "code", code=clinician.role_code, codeSystem=oids.UZI_ROLE)
    choice = sub(
        sub(person, "assignedPrincipalChoiceList"),
        "assignedPerson",
        classCode="PSN",
        determinerCode="INSTANCE",
    )
    text_el(choice, "name", clinician.name)
    _organization(person, params, settings)


def _organization(parent: etree._Element, params: QueryParams, settings: AortaSettings) -> None:
    org = sub(parent, "Organization", classCode="ORG", determinerCode="INSTANCE")
    ii_values(org, "id", oids.URA, params.hospital_ura)
    sub(org, "code", code=settings.hospital_organisation_type, codeSystem=oids.ORGANISATION_TYPE)
    text_el(org, "name", params.hospital_name)


def _query_by_parameter(cap: etree._Element, params: QueryParams, settings: AortaSettings) -> None:
    qbp = sub(cap, "queryByParameter")
    ii(qbp, "queryId", params.query_id)
    sub(qbp, "statusCode", code=settings.query_status_code)
    sub(qbp, "responseModalityCode", code=settings.response_modality_code)
    sub(qbp, "responsePriorityCode", code=settings.response_priority_code)
    if params.look_back_from is not None:
        interval = sub(sub(qbp, "dispenseEventEffectiveTimeInterval"), "value")
        sub(interval, "low", value=format_date(params.look_back_from))
    if settings.send_most_recent_dispense_indicator:
        sub(
            sub(qbp, "mostRecentDispenseForEachRxIndicator"),
            "value",
            value="true" if settings.most_recent_dispense_only else "false",
        )
    ii_values(sub(qbp, "patientID"), "value", oids.BSN, params.bsn.value)


# ------------------------------------------------------------------ reading a query
def parse_query(root: etree._Element) -> QueryParams:
    """Read a `QURX_IN990111NL` back into `QueryParams` (for the LSP simulator).

    Raises `MessageError` when a mandatory part is missing, `InvalidValueError` when a
    value is invalid (a BSN failing the 11-check, a malformed UZI number).
    """
    if etree.QName(root).localname != INTERACTION:
        raise MessageError("not a QURX_IN990111NL query", root=etree.QName(root).localname)
    message_id = identifier(_need(child(root, "id"), "id"))
    created = parse_ts(_need(child(root, "creationTime"), "creationTime").get("value"))
    if created is None or created.tzinfo is None:
        raise MessageError("query creationTime must carry a time zone")
    sender_ids = [identifier(i) for i in children(root, "sender", "device", "id")]
    sender_app = next(
        (i.extension for i in sender_ids if i.root == oids.AORTA_APPLICATION and i.extension), None
    )
    if sender_app is None:
        raise MessageError("query has no sender application id")
    cap = _need(child(root, "ControlActProcess"), "ControlActProcess")
    participant = _need(child(cap, "authorOrPerformer", "participant"), "authorOrPerformer")
    overseer_el = _need(child(cap, "overseer", "assignedEntity"), "overseer")
    overseer = _clinician(overseer_el)
    org = _need(child(overseer_el, "Organization"), "overseer Organization")
    ura = _id_in(org, oids.URA)
    hospital_name = first_text(org, "name")
    if ura is None or hospital_name is None:
        raise MessageError("overseer organisation needs a URA and a name")
    author: Clinician | None = None
    system_uzi: str | None = None
    person = child(participant, "AssignedPerson")
    if person is not None:
        author = _clinician(person)
    else:
        dev = _need(child(participant, "AssignedDevice"), "author")
        system_uzi = _id_in(dev, oids.UZI_SYSTEM)
    qbp = _need(child(cap, "queryByParameter"), "queryByParameter")
    query_id = identifier(_need(child(qbp, "queryId"), "queryId"))
    bsn_el = next(
        (v for v in children(qbp, "patientID", "value") if v.get("root") == oids.BSN), None
    )
    if bsn_el is None or not bsn_el.get("extension"):
        raise MessageError("query has no BSN patientID")
    low = child(qbp, "dispenseEventEffectiveTimeInterval", "value", "low")
    look_back: dt.date | None = None
    if low is not None:
        moment = parse_ts(low.get("value"))
        look_back = moment.date() if moment is not None else None
    return QueryParams(
        bsn=Bsn.parse(bsn_el.get("extension", "")),
        message_id=message_id,
        query_id=query_id,
        created_at=created,
        overseer=overseer,
        hospital_ura=ura,
        hospital_name=hospital_name,
        sender_application_id=sender_app,
        author=author,
        author_system_uzi=system_uzi,
        look_back_from=look_back,
    )


def _need(el: etree._Element | None, what: str) -> etree._Element:
    if el is None:
        raise MessageError("query lacks a mandatory element", element=what)
    return el


def _id_in(el: etree._Element, root: str) -> str | None:
    for ident in children(el, "id"):
        if ident.get("root") == root and ident.get("extension"):
            return ident.get("extension")
    return None


def _clinician(el: etree._Element) -> Clinician:
    uzi = _id_in(el, oids.UZI_PERSON)
    code = child(el, "code")
    name_el = child(el, "assignedPrincipalChoiceList", "assignedPerson", "name")
    name = " ".join((element_text(name_el) or "").split()) if name_el is not None else ""
    if uzi is None or code is None or not code.get("code"):
        raise MessageError("clinician needs a UZI number and a role code")
    org = child(el, "Organization")
    ura = _id_in(org, oids.URA) if org is not None else None
    return Clinician(uzi_number=uzi, role_code=code.get("code", ""), name=name, ura=ura)
