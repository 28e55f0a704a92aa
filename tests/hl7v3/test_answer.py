"""Answer builders: every item, batch, reject and fault the simulator sends validates."""

from __future__ import annotations

import pytest
from hl7_samples import BSN, NOW, PHARMACY, PHARMACY_2, full_dispense, magistral_dispense
from lxml import etree

from prefetch.domain import oids
from prefetch.domain.coded import Code, Identifier
from prefetch.domain.dispense import Dispense, Party
from prefetch.domain.outcome import Issue
from prefetch.errors import InvalidValueError
from prefetch.hl7v3.answer import (
    build_accept_ack,
    build_batch,
    build_dispense_item,
    build_lsp_issue_item,
    build_soap_fault,
    wrap_soap_body,
)
from prefetch.hl7v3.params import QueryRef
from prefetch.hl7v3.schema import (
    SchemaValidationError,
    validate_accept_ack,
    validate_answer_item,
    validate_batch,
    validate_dispense_event,
)
from prefetch.hl7v3.xmlparse import parse_xml

NS = {"h": "urn:hl7-org:v3", "s": "http://schemas.xmlsoap.org/soap/envelope/"}
LSP = "2.16.840.1.113883.2.4.6.6"


def mid(n: int) -> Identifier:
    return Identifier(LSP, str(n))


def item(ref: QueryRef, source=PHARMACY, dispenses=(), n=1) -> etree._Element:  # type: ignore[no-untyped-def]
    return build_dispense_item(
        query=ref,
        source=source,
        bsn=BSN,
        dispenses=dispenses,
        message_id=mid(n),
        receiver_application_id="4003",
        now=NOW,
    )


def test_ok_item_validates_and_echoes_query(ref: QueryRef) -> None:
    el = item(ref, dispenses=(full_dispense(), magistral_dispense()))
    validate_answer_item(el)
    for ev in el.iter("{urn:hl7-org:v3}medicationDispenseEvent"):
        validate_dispense_event(ev)
    assert el.xpath("h:acknowledgement/@typeCode", namespaces=NS) == ["AA"]
    assert el.xpath("h:acknowledgement/h:targetMessage/h:id/@extension", namespaces=NS) == [
        ref.message_id.extension
    ]
    assert el.xpath("//h:queryAck/h:queryId/@extension", namespaces=NS) == [ref.query_id.extension]
    assert el.xpath("//h:queryAck/h:queryResponseCode/@code", namespaces=NS) == ["OK"]
    assert el.xpath("//h:queryAck/h:resultTotalQuantity/@value", namespaces=NS) == ["2"]
    assert el.xpath("h:sender/h:device/h:id/@extension", namespaces=NS) == ["1"]
    dev = "//h:authorOrPerformer/h:participant/h:AssignedDevice"
    assert el.xpath(f"{dev}/h:Organization/h:id/@extension", namespaces=NS) == ["00063703"]
    assert el.xpath(f"{dev}/h:id[@root='{oids.UZI_SYSTEM}']/@extension", namespaces=NS) == [
        "000277280"
    ]


def test_nf_item_has_no_list(ref: QueryRef) -> None:
    el = item(ref)
    validate_answer_item(el)
    assert el.xpath("//h:queryResponseCode/@code", namespaces=NS) == ["NF"]
    assert el.xpath("//h:MedicationDispenseList", namespaces=NS) == []


@pytest.mark.parametrize(("response", "ack"), [("AE", "AE"), ("QE", "AE"), ("NF", "AA")])
def test_lsp_issue_item(ref: QueryRef, response: str, ack: str) -> None:
    el = build_lsp_issue_item(
        query=ref,
        code="KEY204",
        code_system=oids.AORTA_ACK_DETAIL,
        text="onbekende sleutel",
        message_id=mid(9),
        receiver_application_id="4003",
        now=NOW,
        response_code=response,
    )
    validate_answer_item(el)
    assert el.xpath("h:acknowledgement/@typeCode", namespaces=NS) == [ack]
    assert el.xpath("//h:reasonOf/h:justifiedDetectedIssue/h:code/@code", namespaces=NS) == [
        "KEY204"
    ]
    assert el.xpath("//h:AssignedDevice/h:id/@extension", namespaces=NS) == ["1"]
    assert el.xpath("//h:queryResponseCode/@code", namespaces=NS) == [response]


def test_lsp_issue_item_refuses_unknown_response(ref: QueryRef) -> None:
    with pytest.raises(InvalidValueError):
        build_lsp_issue_item(
            query=ref,
            code="X",
            code_system="1.2",
            text=None,
            message_id=mid(1),
            receiver_application_id="4003",
            now=NOW,
            response_code="ZZ",
        )


def test_batch_validates_with_all_item_kinds(ref: QueryRef) -> None:
    items = [
        item(ref, dispenses=(full_dispense(),), n=1),
        item(ref, PHARMACY_2, n=2),
        build_lsp_issue_item(
            query=ref,
            code="QABRTITI",
            code_system=oids.AORTA_ACK_DETAIL,
            text=None,
            message_id=mid(3),
            receiver_application_id="4003",
            now=NOW,
        ),
    ]
    data = build_batch(
        query=ref, items=items, message_id=mid(10), receiver_application_id="4003", now=NOW
    )
    assert data.startswith(b"<?xml")
    root = parse_xml(data)
    validate_batch(root)
    assert root.xpath("h:transmissionQuantity/@value", namespaces=NS) == ["3"]
    assert root.xpath("h:acknowledgement/h:targetTransmission/h:id/@extension", namespaces=NS) == [
        ref.message_id.extension
    ]
    assert len(root.xpath("h:QURX_IN990113NL", namespaces=NS)) == 3


def test_batch_with_transmission_error(ref: QueryRef) -> None:
    data = build_batch(
        query=ref,
        items=[],
        message_id=mid(10),
        receiver_application_id="4003",
        now=NOW,
        ack_type="AE",
        details=(Issue("VALIDATIEFOUT", oids.AORTA_ACK_DETAIL, "fout"),),
    )
    root = parse_xml(data)
    validate_batch(root)
    assert root.xpath("//h:acknowledgementDetail/h:code/@code", namespaces=NS) == ["VALIDATIEFOUT"]


def test_batch_schema_rejects_a_broken_item(ref: QueryRef) -> None:
    broken = item(ref, dispenses=(full_dispense(),))
    qack = broken.find(".//{urn:hl7-org:v3}queryAck")
    assert qack is not None
    qack.getparent().remove(qack)
    root = parse_xml(
        build_batch(
            query=ref, items=[broken], message_id=mid(1), receiver_application_id="4003", now=NOW
        )
    )
    with pytest.raises(SchemaValidationError) as info:
        validate_batch(root)
    assert info.value.errors


def test_accept_ack_validates(ref: QueryRef) -> None:
    root = parse_xml(
        build_accept_ack(
            query=ref,
            code="VALIDATIEFOUT",
            code_system=oids.AORTA_ACK_DETAIL,
            text="x",
            message_id=mid(4),
            receiver_application_id="4003",
            now=NOW,
        )
    )
    validate_accept_ack(root)
    assert root.xpath("h:acknowledgement/@typeCode", namespaces=NS) == ["CE"]


def test_soap_wrapping_and_fault(ref: QueryRef) -> None:
    el = item(ref)
    env = parse_xml(wrap_soap_body(el))
    body = env.xpath("/s:Envelope/s:Body/*", namespaces=NS)
    assert [etree.QName(b).localname for b in body] == ["QURX_IN990113NL"]
    fault = parse_xml(build_soap_fault("Client", "token refused"))
    assert fault.xpath("//s:Fault/faultcode/text()", namespaces=NS) == ["soap:Client"]
    assert fault.xpath("//s:Fault/faultstring/text()", namespaces=NS) == ["token refused"]


def test_values_the_wire_cannot_hold_are_refused(ref: QueryRef) -> None:
    d = full_dispense()
    two_ids = Dispense(
        id=d.id, performer=Party(ids=(Identifier("1.2", "a"), Identifier("1.2", "b")))
    )
    with pytest.raises(InvalidValueError):
        item(ref, dispenses=(two_ids,))
    named = Dispense(
        id=d.id, prescriber=Party(ids=(Identifier(oids.UZI_PERSON, "1"),), name="Dr. X")
    )
    with pytest.raises(InvalidValueError):
        item(ref, dispenses=(named,))
    role_on_performer = Dispense(id=d.id, performer=Party(role=Code("17.000")))
    with pytest.raises(InvalidValueError):
        item(ref, dispenses=(role_on_performer,))
