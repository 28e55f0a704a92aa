"""The answer parser: envelopes, BOM, item kinds, rejects, faults, correlation, leniency."""

from __future__ import annotations

from pathlib import Path

import pytest
from hl7_samples import BSN, NOW, PHARMACY, PHARMACY_2, full_dispense, magistral_dispense
from lxml import etree

from prefetch.domain import oids
from prefetch.domain.coded import Identifier
from prefetch.domain.outcome import SourceStatus
from prefetch.errors import CorrelationError, MessageError, XmlSecurityError
from prefetch.hl7v3.answer import (
    build_accept_ack,
    build_batch,
    build_dispense_item,
    build_lsp_issue_item,
    build_soap_fault,
    wrap_soap_body,
)
from prefetch.hl7v3.params import QueryRef
from prefetch.hl7v3.parse import parse_answer
from prefetch.hl7v3.xmlbuild import to_bytes

LSP = "2.16.840.1.113883.2.4.6.6"
BOM = b"\xef\xbb\xbf"


def batch(ref: QueryRef, *items: etree._Element) -> bytes:
    return build_batch(
        query=ref,
        items=list(items),
        message_id=Identifier(LSP, "900"),
        receiver_application_id="4003",
        now=NOW,
    )


def ok_item(ref: QueryRef, n: int = 1, source=PHARMACY) -> etree._Element:  # type: ignore[no-untyped-def]
    return build_dispense_item(
        query=ref,
        source=source,
        bsn=BSN,
        dispenses=(full_dispense(f"d{n}"), magistral_dispense(f"m{n}")),
        message_id=Identifier(LSP, str(n)),
        receiver_application_id="4003",
        now=NOW,
    )


def nf_item(ref: QueryRef, n: int = 2) -> etree._Element:
    return build_dispense_item(
        query=ref,
        source=PHARMACY_2,
        bsn=BSN,
        dispenses=(),
        message_id=Identifier(LSP, str(n)),
        receiver_application_id="4003",
        now=NOW,
    )


def issue_item(ref: QueryRef, code: str, response: str = "AE") -> etree._Element:
    return build_lsp_issue_item(
        query=ref,
        code=code,
        code_system=oids.AORTA_ACK_DETAIL,
        text=f"{code} text",
        message_id=Identifier(LSP, "77"),
        receiver_application_id="4003",
        now=NOW,
        response_code=response,
    )


@pytest.mark.parametrize("wrap", ["bare", "soap", "bom", "bom+soap"])
def test_batch_in_every_wrapping(ref: QueryRef, wrap: str) -> None:
    data = batch(ref, ok_item(ref), nf_item(ref))
    if "soap" in wrap:
        data = wrap_soap_body(data)
    if "bom" in wrap:
        data = BOM + data
    parsed = parse_answer(data, expect=ref)
    assert parsed.kind == "batch"
    assert parsed.batch_message_id == f"{LSP}^900"
    assert parsed.target_message_id == f"{ref.message_id.root}^{ref.message_id.extension}"
    assert parsed.transmission_quantity == 2
    assert [s.status for s in parsed.sources] == [SourceStatus.OK, SourceStatus.NF]
    first = parsed.sources[0]
    assert (
        first.organization_ura,
        first.organization_name,
        first.application_id,
        first.system_uzi,
    ) == ("00063703", "Apotheek Kuinre", "10011427", "000277280")
    assert first.message_id == f"{LSP}^1"
    assert first.dispenses == (full_dispense("d1"), magistral_dispense("m1"))
    assert not first.lsp_authored
    assert parsed.deviations == ()


def test_bare_item(ref: QueryRef) -> None:
    parsed = parse_answer(to_bytes(ok_item(ref)), expect=ref)
    assert parsed.kind == "item"
    assert parsed.interaction == "QURX_IN990113NL"
    assert len(parsed.dispenses) == 2


def test_lsp_authored_item(ref: QueryRef) -> None:
    parsed = parse_answer(batch(ref, issue_item(ref, "QABRTITI")), expect=ref)
    (source,) = parsed.sources
    assert source.lsp_authored
    assert source.status is SourceStatus.AE
    assert [(i.code, i.system, i.text) for i in source.issues] == [
        ("QABRTITI", oids.AORTA_ACK_DETAIL, "QABRTITI text")
    ]


def test_accept_ack_reject(ref: QueryRef) -> None:
    data = build_accept_ack(
        query=ref,
        code="VALIDATIEFOUT",
        code_system=oids.AORTA_ACK_DETAIL,
        text="schema",
        message_id=Identifier(LSP, "5"),
        receiver_application_id="4003",
        now=NOW,
    )
    parsed = parse_answer(wrap_soap_body(data), expect=ref)
    assert parsed.kind == "accept_ack"
    assert parsed.acknowledgement == "CE"
    assert [(i.code, i.text) for i in parsed.issues] == [("VALIDATIEFOUT", "schema")]


def test_soap_fault_is_a_result(ref: QueryRef) -> None:
    parsed = parse_answer(build_soap_fault("Client", "token refused"), expect=ref)
    assert parsed.kind == "fault"
    assert parsed.fault is not None
    assert (parsed.fault.code, parsed.fault.reason) == ("soap:Client", "token refused")
    assert parsed.sources == ()


def test_correlation_refuses_other_message_id(ref: QueryRef) -> None:
    other = QueryRef(message_id=Identifier(ref.message_id.root, "other"), query_id=ref.query_id)
    with pytest.raises(CorrelationError):
        parse_answer(batch(ref, ok_item(ref)), expect=other)


def test_correlation_refuses_other_query_id(ref: QueryRef) -> None:
    other = QueryRef(message_id=ref.message_id, query_id=Identifier(ref.query_id.root, "other"))
    with pytest.raises(CorrelationError):
        parse_answer(batch(ref, ok_item(ref)), expect=other)


def test_correlation_refuses_foreign_item_in_our_batch(ref: QueryRef) -> None:
    other = QueryRef(
        message_id=Identifier(ref.message_id.root, "x"), query_id=Identifier(ref.query_id.root, "y")
    )
    with pytest.raises(CorrelationError):
        parse_answer(batch(ref, ok_item(ref), ok_item(other, 2)), expect=ref)


def test_correlation_compares_ids_not_roots(ref: QueryRef) -> None:
    swapped = QueryRef(message_id=ref.query_id, query_id=ref.message_id)
    with pytest.raises(CorrelationError):
        parse_answer(batch(ref, ok_item(ref)), expect=swapped)


def test_decker_example_correlates_with_distinct_roots(examples: Path) -> None:
    data = (examples / "lsp-batch" / "999900444_Decker-multi-QURX113.xml").read_bytes()
    ref = QueryRef(
        message_id=Identifier("2.16.528.1.1007.3.3.69665.10008890.12", "311422"),
        query_id=Identifier("2.16.528.1.1007.3.3.69665.10008890.18", "311422"),
    )
    parsed = parse_answer(data, expect=ref)
    assert len(parsed.dispenses) == 65


def test_relayed_item_in_lsp_error_example(examples: Path) -> None:
    data = (examples / "lsp-error" / "episodes_bundle_01.xml").read_bytes()
    ref = QueryRef(
        message_id=Identifier(
            "2.16.528.1.1007.3.3.1234567.1", "34745ef4-6429-4142-8efc-99e4714e887e"
        ),
        query_id=Identifier(
            "2.16.528.1.1007.3.1.1009.1", "KZ_29a3bec1-2009-40c1-b137-060a06aab3db"
        ),
    )
    parsed = parse_answer(data, expect=ref)
    assert parsed.sources[0].lsp_authored
    assert parsed.sources[0].issues[0].code == "AUTERR_SWV_FALSE"


def test_out_of_order_element_is_a_deviation_not_a_loss(ref: QueryRef) -> None:
    root = ok_item(ref)
    mar = root.find(".//{urn:hl7-org:v3}medicationAdministrationRequest")
    assert mar is not None
    support2 = mar.find("{urn:hl7-org:v3}support2")
    assert support2 is not None
    mar.remove(support2)
    mar.insert(1, support2)  # before statusCode: not allowed there
    extra = etree.SubElement(mar, "{urn:hl7-org:v3}vendorExtra")
    extra.text = "x"
    parsed = parse_answer(to_bytes(root), expect=ref)
    dispense = parsed.dispenses[0]
    assert dispense.dosages[0].instructions == full_dispense("d1").dosages[0].instructions
    assert dispense.deviations == (
        "element support2 out of order (before statusCode) in medicationAdministrationRequest",
        "unexpected element vendorExtra in medicationAdministrationRequest",
    )


def test_dispense_without_id_root_is_reported(ref: QueryRef) -> None:
    root = ok_item(ref)
    ev_id = root.find(".//{urn:hl7-org:v3}medicationDispenseEvent/{urn:hl7-org:v3}id")
    assert ev_id is not None
    for attr in ("root", "extension"):
        del ev_id.attrib[attr]
    ev_id.set("nullFlavor", "UNK")
    parsed = parse_answer(to_bytes(root), expect=ref)
    assert len(parsed.dispenses) == 1
    assert any("without id root" in d for d in parsed.deviations)


def test_unknown_response_code_is_kept_as_issue(ref: QueryRef) -> None:
    root = nf_item(ref)
    code = root.find(".//{urn:hl7-org:v3}queryResponseCode")
    assert code is not None
    code.set("code", "ZZ")
    parsed = parse_answer(to_bytes(root), expect=ref)
    assert parsed.sources[0].status is None
    assert parsed.sources[0].issues[0].code == "queryResponseCode:ZZ"


@pytest.mark.parametrize("data", [b"", b"not xml", b"<a><b></a>"])
def test_garbage_is_refused(data: bytes) -> None:
    with pytest.raises(XmlSecurityError):
        parse_answer(data)


def test_other_documents_are_refused() -> None:
    with pytest.raises(MessageError):
        parse_answer(b"<x xmlns='urn:hl7-org:v3'/>")
    with pytest.raises(MessageError):
        parse_answer(b"<x/>")


def test_answer_about_another_patient_is_refused(ref: QueryRef) -> None:
    from prefetch.domain.bsn import Bsn

    data = batch(ref, ok_item(ref))
    assert len(parse_answer(data, expect=ref, expect_bsn=BSN).dispenses) == 2
    other = Bsn("111222333")
    with pytest.raises(CorrelationError) as info:
        parse_answer(data, expect=ref, expect_bsn=other)
    assert BSN.value not in str(info.value) and other.value not in str(info.value)


def test_unmodelled_timing_content_is_reported(ref: QueryRef) -> None:
    root = ok_item(ref)
    eff = root.find(
        ".//{urn:hl7-org:v3}medicationAdministrationRequest/{urn:hl7-org:v3}effectiveTime"
    )
    assert eff is not None
    for c in list(eff):
        eff.remove(c)
    eff.set("{http://www.w3.org/2001/XMLSchema-instance}type", "EIVL_TS")
    etree.SubElement(eff, "{urn:hl7-org:v3}event", code="ACM")
    parsed = parse_answer(to_bytes(root), expect=ref)
    dosage = parsed.dispenses[0].dosages[0]
    assert dosage.timing[0].kind == "EIVL"
    assert "not kept: content of a EIVL timing" in parsed.dispenses[0].deviations
