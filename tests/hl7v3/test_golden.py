"""Golden-file tests for what we send, compared after canonicalisation (C14N)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hl7_samples import make_params
from lxml import etree

from prefetch.hl7v3.query import build_query
from prefetch.hl7v3.xmlparse import parse_xml

GOLDEN = Path(__file__).parent / "golden"


def c14n(el: etree._Element) -> bytes:
    return bytes(etree.tostring(el, method="c14n", exclusive=True))


@pytest.mark.parametrize(
    ("name", "system"), [("query_system_author.xml", True), ("query_person_author.xml", False)]
)
def test_query_matches_golden_file(name: str, system: bool) -> None:
    built = parse_xml(
        etree.tostring(build_query(make_params(system=system))), remove_blank_text=True
    )
    golden = parse_xml((GOLDEN / name).read_bytes(), remove_blank_text=True)
    assert c14n(built) == c14n(golden)


def test_golden_comparison_is_sensitive() -> None:
    built = build_query(make_params(system=True))
    golden = parse_xml((GOLDEN / "query_system_author.xml").read_bytes(), remove_blank_text=True)
    built.find("{urn:hl7-org:v3}processingCode").set("code", "T")  # type: ignore[union-attr]
    assert c14n(parse_xml(etree.tostring(built), remove_blank_text=True)) != c14n(golden)
