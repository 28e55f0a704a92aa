"""Answer builders: every item, batch, reject and fault the simulator sends validates."""

from __future__ import annotations

import pytest
from hl7_samples import (
    BSN,
    DEMOGRAPHICS,
    EXAMPLES,
    NOW,
    PHARMACY,
    PHARMACY_2,
    PHARMACY_DETAILED,
    full_dispense,
    magistral_dispense,
)
from lxml import etree

from prefetch.domain import oids
from prefetch.domain.coded import Code, Identifier
from prefetch.domain.dispense import Dispense, Party
from prefetch.domain.outcome import Issue
from prefetch.errors import InvalidValueError
from prefetch.hl7v3.answer import (
    ORGANIZATION_TYPE_SYSTEM,
    NamePart,
    PatientDemographics,
    SourceSystem,
    build_accept_ack,
    build_batch,
    build_batch_element,
    build_dispense_item,
    build_lsp_issue_item,
    build_soap_fault,
    wrap_soap_body,
)
from prefetch.hl7v3.params import QueryRef
from prefetch.hl7v3.parse import parse_answer
from prefetch.hl7v3.schema import (
    SchemaValidationError,
    validate_accept_ack,
    validate_answer_item,
    validate_batch,
    validate_dispense_event,
)
from prefetch.hl7v3.xmlbuild import to_bytes
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


def test_batch_element_is_the_batch_and_wraps_without_a_second_parse(ref: QueryRef) -> None:
    def items() -> list[etree._Element]:
        return [item(ref, dispenses=(full_dispense(), magistral_dispense()), n=1), item(ref, n=2)]

    def kwargs() -> dict[str, object]:
        return {"query": ref, "message_id": mid(10), "receiver_application_id": "4003", "now": NOW}

    data = build_batch(items=items(), **kwargs())  # type: ignore[arg-type]
    element = build_batch_element(items=items(), **kwargs())  # type: ignore[arg-type]
    assert to_bytes(element) == data
    assert wrap_soap_body(element) == wrap_soap_body(data)


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


def _detailed_item(
    ref: QueryRef, details: PatientDemographics | None = DEMOGRAPHICS
) -> etree._Element:
    return build_dispense_item(
        query=ref,
        source=PHARMACY_DETAILED,
        bsn=BSN,
        dispenses=(full_dispense(),),
        message_id=mid(7),
        receiver_application_id="4003",
        now=NOW,
        patient_details=details,
    )


def _shape(el: etree._Element) -> list[str]:
    """Element names in document order below `el` (local names), for order comparisons."""
    return [etree.QName(e).localname for e in el.iter(etree.Element)]


def test_demographics_and_source_details_are_written_in_schema_order(ref: QueryRef) -> None:
    el = _detailed_item(ref)
    validate_answer_item(el)
    patient = el.xpath("//h:MedicationDispenseList/h:subject/h:Patient", namespaces=NS)[0]
    # the same element order as the official example's patient
    official = parse_xml((EXAMPLES / "official" / "QURX_EX990113NL_01.xml").read_bytes())
    want = official.xpath("//h:MedicationDispenseList/h:subject/h:Patient", namespaces=NS)[0]
    assert _shape(patient) == _shape(want)
    assert patient.xpath("h:addr/@use", namespaces=NS) == ["HP"]
    assert patient.xpath("h:addr/h:postalCode/text()", namespaces=NS) == ["2035 RC"]
    name = patient.xpath("h:Person/h:name", namespaces=NS)[0]
    assert [(etree.QName(p).localname, p.text, p.get("qualifier")) for p in name] == [
        (etree.QName(p).localname, p.text, p.get("qualifier"))
        for p in want.xpath("h:Person/h:name", namespaces=NS)[0]
    ]
    assert patient.xpath("h:Person/h:administrativeGenderCode/@code", namespaces=NS) == ["F"]
    assert patient.xpath("h:Person/h:birthTime/@value", namespaces=NS) == ["19721218"]
    # the device as the lsp-batch example's first item has it
    dev = el.xpath("//h:authorOrPerformer/h:participant/h:AssignedDevice", namespaces=NS)[0]
    assert [etree.QName(c).localname for c in dev] == [
        "id",
        "id",
        "assignedPrincipalChoiceList",
        "Organization",
    ]
    assert dev.xpath(
        "h:assignedPrincipalChoiceList/h:assignedDevice/h:softwareName/text()", namespaces=NS
    ) == ["TestApplicatie"]
    org = dev.xpath("h:Organization", namespaces=NS)[0]
    assert [etree.QName(c).localname for c in org] == ["id", "code", "name", "telecom", "addr"]
    assert org.xpath("h:code/@code", namespaces=NS) == ["J8"]
    assert org.xpath("h:code/@codeSystem", namespaces=NS) == [ORGANIZATION_TYPE_SYSTEM]
    assert org.xpath("h:addr/h:city/text()", namespaces=NS) == ["Paterswolde"]


def test_defaults_keep_the_plain_item(ref: QueryRef) -> None:
    plain = item(ref, dispenses=(full_dispense(),), n=7)
    bare = SourceSystem(
        organization_ura=PHARMACY.organization_ura,
        organization_name=PHARMACY.organization_name,
        application_id=PHARMACY.application_id,
        system_uzi=PHARMACY.system_uzi,
    )
    again = build_dispense_item(
        query=ref,
        source=bare,
        bsn=BSN,
        dispenses=(full_dispense(),),
        message_id=mid(7),
        receiver_application_id="4003",
        now=NOW,
        patient_details=None,
    )
    assert etree.tostring(plain) == etree.tostring(again)
    patient = plain.xpath("//h:Patient", namespaces=NS)[0]
    assert [etree.QName(c).localname for c in patient] == ["id", "statusCode"]
    # empty demographics write nothing either
    empty = _detailed_item(ref, PatientDemographics())
    assert [etree.QName(c).localname for c in empty.xpath("//h:Patient", namespaces=NS)[0]] == [
        "id",
        "statusCode",
    ]


def test_parser_ignores_demographics(ref: QueryRef) -> None:
    with_details = parse_answer(to_bytes(_detailed_item(ref)), expect=ref, expect_bsn=BSN)
    without = parse_answer(to_bytes(_detailed_item(ref, None)), expect=ref, expect_bsn=BSN)
    assert with_details.sources[0].dispenses == without.sources[0].dispenses
    assert with_details.deviations == without.deviations
    text = repr(with_details)
    for secret in ("Noble", "Boerhaavelaan", "2035 RC", "19721218", "HAARLEM"):
        assert secret not in text
    assert with_details.sources[0].application_id == "10006673"


def test_name_part_kind_is_checked() -> None:
    with pytest.raises(InvalidValueError):
        NamePart("nickname", "Jo")


def test_text_xml_cannot_hold_is_an_invalid_value(ref: QueryRef) -> None:
    bad = SourceSystem(
        organization_ura="00063703",
        organization_name="bad\x01name",
        application_id="1",
        system_uzi="2",
    )
    with pytest.raises(InvalidValueError):
        build_dispense_item(
            query=ref,
            source=bad,
            bsn=BSN,
            dispenses=(),
            message_id=mid(8),
            receiver_application_id="4003",
            now=NOW,
        )


def test_unholdable_text_in_a_dispense_or_fault_is_an_invalid_value(ref: QueryRef) -> None:
    import dataclasses
    from decimal import Decimal

    from prefetch.domain.coded import Quantity

    bad_unit = dataclasses.replace(full_dispense(), quantity=Quantity(Decimal(1), "st\x07uk"))
    with pytest.raises(InvalidValueError) as info:
        item(ref, dispenses=(bad_unit,))
    assert not isinstance(info.value.__cause__, InvalidValueError)  # lxml's ValueError, wrapped
    with pytest.raises(InvalidValueError):
        build_soap_fault("Client", "bad\x00reason")


def test_sub_refuses_an_attribute_xml_cannot_hold_and_appends_nothing() -> None:
    from prefetch.hl7v3.xmlbuild import root_element, sub

    root = root_element("x")
    with pytest.raises(InvalidValueError) as info:
        sub(root, "code", code="ok", displayName="bad\x01name")
    assert info.value.context == {"element": "code", "attribute": "displayName"}
    assert len(root) == 0
    el = sub(root, "code", code="A", codeSystem=None, displayName="b")
    assert dict(el.attrib) == {"code": "A", "displayName": "b"}  # None left out, order kept
