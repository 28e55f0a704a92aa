"""Assembled schemas: what we build validates with lxml and with xmllint; real examples
validate too; a broken document is refused with every error listed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hl7_samples import (
    BSN,
    DEMOGRAPHICS,
    NOW,
    PHARMACY,
    PHARMACY_DETAILED,
    full_dispense,
    magistral_dispense,
    make_params,
)
from lxml import etree

from prefetch.domain import oids
from prefetch.domain.coded import Identifier
from prefetch.hl7v3.answer import build_batch, build_dispense_item, build_lsp_issue_item
from prefetch.hl7v3.params import QueryRef
from prefetch.hl7v3.query import build_query
from prefetch.hl7v3.schema import (
    ANSWER_ITEM_XSD,
    BATCH_XSD,
    QUERY_XSD,
    SchemaValidationError,
    validate_answer_item,
    validate_batch,
    validate_query,
)
from prefetch.hl7v3.xmlbuild import to_bytes
from prefetch.hl7v3.xmlparse import parse_xml

LSP = "2.16.840.1.113883.2.4.6.6"


def built_documents() -> dict[str, tuple[str, bytes]]:
    """name -> (schema, document) for every kind of message we or the simulator build."""
    docs: dict[str, tuple[str, bytes]] = {}
    for system in (True, False):
        for look_back in (None, NOW.date()):
            params = make_params(system=system, look_back=look_back)
            docs[f"query-system{system}-lookback{bool(look_back)}"] = (
                QUERY_XSD,
                to_bytes(build_query(params)),
            )
    ref = QueryRef.of(make_params())
    ok = build_dispense_item(
        query=ref,
        source=PHARMACY,
        bsn=BSN,
        dispenses=(full_dispense(), magistral_dispense()),
        message_id=Identifier(LSP, "1"),
        receiver_application_id="4003",
        now=NOW,
    )
    nf = build_dispense_item(
        query=ref,
        source=PHARMACY,
        bsn=BSN,
        dispenses=(),
        message_id=Identifier(LSP, "2"),
        receiver_application_id="4003",
        now=NOW,
    )
    issue = build_lsp_issue_item(
        query=ref,
        code="KEY204",
        code_system=oids.AORTA_ACK_DETAIL,
        text="x",
        message_id=Identifier(LSP, "3"),
        receiver_application_id="4003",
        now=NOW,
    )
    detailed = build_dispense_item(
        query=ref,
        source=PHARMACY_DETAILED,
        bsn=BSN,
        dispenses=(full_dispense(),),
        message_id=Identifier(LSP, "6"),
        receiver_application_id="4003",
        now=NOW,
        patient_details=DEMOGRAPHICS,
    )
    docs["item-ok-demographics"] = (ANSWER_ITEM_XSD, to_bytes(detailed))
    docs["item-ok"] = (ANSWER_ITEM_XSD, to_bytes(ok))
    docs["item-nf"] = (ANSWER_ITEM_XSD, to_bytes(nf))
    docs["item-lsp-issue"] = (ANSWER_ITEM_XSD, to_bytes(issue))
    docs["batch"] = (
        BATCH_XSD,
        build_batch(
            query=ref,
            items=[ok, nf, issue],
            message_id=Identifier(LSP, "4"),
            receiver_application_id="4003",
            now=NOW,
        ),
    )
    docs["batch-empty"] = (
        BATCH_XSD,
        build_batch(
            query=ref,
            items=[],
            message_id=Identifier(LSP, "5"),
            receiver_application_id="4003",
            now=NOW,
        ),
    )
    return docs


DOCS = built_documents()
VALIDATORS = {
    QUERY_XSD: validate_query,
    ANSWER_ITEM_XSD: validate_answer_item,
    BATCH_XSD: validate_batch,
}


@pytest.mark.parametrize("name", sorted(DOCS))
def test_built_documents_validate_with_lxml(name: str) -> None:
    xsd, data = DOCS[name]
    VALIDATORS[xsd](parse_xml(data))


def official_answers(examples: Path) -> list[Path]:
    return sorted(
        p
        for p in examples.rglob("*.xml")
        if "interaction-catalogue" not in p.name and "lsp-error" not in str(p)
    )


def test_real_answers_validate_against_our_answer_schemas(examples: Path) -> None:
    for path in official_answers(examples):
        root = parse_xml(path.read_bytes())
        if etree.QName(root).localname == "MCCI_IN200101":
            validate_batch(root)
        else:
            validate_answer_item(root)


def test_invalid_query_lists_every_error() -> None:
    root = build_query(make_params())
    for tag in ("versionCode", "profileId"):
        el = root.find(f"{{urn:hl7-org:v3}}{tag}")
        assert el is not None
        root.remove(el)
    with pytest.raises(SchemaValidationError) as info:
        validate_query(root)
    assert info.value.schema == QUERY_XSD
    assert info.value.errors and all(":" in e for e in info.value.errors)


def test_wrong_element_order_is_refused() -> None:
    root = build_query(make_params())
    overseer = root.find(".//{urn:hl7-org:v3}overseer")
    cap = root.find("{urn:hl7-org:v3}ControlActProcess")
    assert overseer is not None and cap is not None
    cap.remove(overseer)
    cap.insert(0, overseer)
    with pytest.raises(SchemaValidationError):
        validate_query(root)


XMLLINT = shutil.which("xmllint")


@pytest.mark.tools
@pytest.mark.skipif(XMLLINT is None, reason="xmllint (libxml2-utils) not installed")
@pytest.mark.parametrize("name", sorted(DOCS))
def test_built_documents_validate_with_xmllint(
    tmp_path: Path, name: str, xmllint_schemas: Path
) -> None:
    assert XMLLINT is not None
    xsd, data = DOCS[name]
    doc = tmp_path / f"{name}.xml"
    doc.write_bytes(data)
    result = subprocess.run(
        [XMLLINT, "--noout", "--nonet", "--schema", str(xmllint_schemas / xsd), str(doc)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "validates" in result.stderr


@pytest.mark.tools
@pytest.mark.skipif(XMLLINT is None, reason="xmllint (libxml2-utils) not installed")
def test_xmllint_refuses_a_broken_query(tmp_path: Path, xmllint_schemas: Path) -> None:
    assert XMLLINT is not None
    root = build_query(make_params())
    bsn = root.find(".//{urn:hl7-org:v3}patientID")
    assert bsn is not None
    bsn.getparent().remove(bsn)  # type: ignore[union-attr]
    doc = tmp_path / "broken.xml"
    doc.write_bytes(to_bytes(root))
    result = subprocess.run(
        [XMLLINT, "--noout", "--nonet", "--schema", str(xmllint_schemas / QUERY_XSD), str(doc)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode != 0
    assert "fails to validate" in result.stderr
