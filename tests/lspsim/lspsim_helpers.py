"""Helpers for the simulator tests: queries as a real client builds them, schema checks."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

from lxml import etree

from prefetch.domain.bsn import Bsn
from prefetch.domain.coded import Identifier
from prefetch.domain.people import Clinician
from prefetch.hl7v3 import schema
from prefetch.hl7v3.params import QueryParams
from prefetch.hl7v3.query import build_query
from prefetch.hl7v3.soap import unwrap, wrap_soap_body
from prefetch.hl7v3.xmlparse import parse_xml

REFERENCE_DATE = dt.date(2026, 11, 20)
HOSPITAL_URA = "12345678"
SENDER_APP = "10008890"
OVERSEER = Clinician(
    uzi_number="000012345", role_code="01.015", name="Dr. A. Arts", ura=HOSPITAL_URA
)
_serial: Iterator[int] = itertools.count(1)


def make_params(
    bsn: Bsn,
    *,
    since: dt.date | None = None,
    created_at: dt.datetime | None = None,
    author_system_uzi: str = "000099999",
) -> QueryParams:
    n = next(_serial)
    return QueryParams(
        bsn=bsn,
        message_id=Identifier(root=f"2.16.528.1.1007.3.3.{HOSPITAL_URA}.1", extension=str(n)),
        query_id=Identifier(root=f"2.16.528.1.1007.3.3.{HOSPITAL_URA}.2", extension=str(n)),
        created_at=created_at or dt.datetime(2026, 11, 20, 18, 0, tzinfo=dt.UTC),
        overseer=OVERSEER,
        hospital_ura=HOSPITAL_URA,
        hospital_name="Ontwikkelziekenhuis",
        sender_application_id=SENDER_APP,
        author_system_uzi=author_system_uzi,
        look_back_from=since,
    )


def query_body(params: QueryParams) -> bytes:
    """The plain SOAP envelope a client sends (no security header)."""
    return wrap_soap_body(build_query(params))


def batch_of(body: bytes) -> etree._Element:
    """The MCCI_IN200101 inside a SOAP answer; fails the test if it is anything else."""
    payload = unwrap(parse_xml(body))
    assert isinstance(payload, etree._Element), payload
    assert etree.QName(payload).localname == "MCCI_IN200101"
    return payload


def validate_batch(batch: etree._Element) -> None:
    """The batch and each item against the HL7v3 engineer's assembled schemas."""
    schema.validate_batch(batch)
    for item in items_of(batch):
        schema.validate_answer_item(item)


HL7 = "{urn:hl7-org:v3}"


def items_of(batch: etree._Element) -> list[etree._Element]:
    return batch.findall(f"{HL7}QURX_IN990113NL")


def response_code(item: etree._Element) -> str:
    el = item.find(f"{HL7}ControlActProcess/{HL7}queryAck/{HL7}queryResponseCode")
    assert el is not None
    return el.get("code", "")


def issue_code(item: etree._Element) -> str | None:
    el = item.find(f"{HL7}ControlActProcess/{HL7}reasonOf/{HL7}justifiedDetectedIssue/{HL7}code")
    return None if el is None else el.get("code")


def source_ura(item: etree._Element) -> str | None:
    el = item.find(
        f"{HL7}ControlActProcess/{HL7}authorOrPerformer/{HL7}participant/"
        f"{HL7}AssignedDevice/{HL7}Organization/{HL7}id"
    )
    return None if el is None else el.get("extension")


def dispense_ids(item: etree._Element) -> list[tuple[str, str]]:
    return [
        (e.get("root", ""), e.get("extension", ""))
        for e in item.iter(f"{HL7}medicationDispenseEvent")
        for e in [e.find(f"{HL7}id")]
        if e is not None
    ]
