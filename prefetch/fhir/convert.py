"""One LSP answer file (`QURX_IN990113NL`, alone or in an `MCCI_IN200101` batch, with or
without SOAP) to the FHIR `collection` Bundle the API would serve for its dispenses.

The same mapping as the API (`prefetch.fhir.mapping`). What the answer does not say is
taken as the API would have it: the patient's BSN from each item's
`MedicationDispenseList/subject/Patient/id`, the query id from its `queryAck/queryId`,
the fetch time from the item's `creationTime` (Europe/Amsterdam without offset); the
responsible clinician is not in an answer and is given by the caller (or left out).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from lxml import etree

from prefetch.domain import oids
from prefetch.domain.dispense import DispenseProvenance
from prefetch.errors import MessageError
from prefetch.fhir.bundle import collection_bundle
from prefetch.fhir.mapping import DispenseResources, dispense_resources
from prefetch.fhir.quantities import Json
from prefetch.hl7v3.parse import parse_answer_element
from prefetch.hl7v3.read import child, children, id_key_of, parse_ts
from prefetch.hl7v3.soap import SoapFault, unwrap
from prefetch.hl7v3.xmlparse import parse_xml

_AMSTERDAM = ZoneInfo("Europe/Amsterdam")
DEFAULT_BASE = "urn:prefetch:fhir"


@dataclass(frozen=True, slots=True)
class Responsible:
    """The clinician under whose responsibility the answer was fetched."""

    uzi: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class _ItemContext:
    bsn: str | None
    query_id: str | None
    created: dt.datetime | None


def _items(root: etree._Element) -> list[etree._Element]:
    """The answer items in document order, as the parser reads them."""
    if child(root, "ControlActProcess") is not None:
        return [root]
    return [
        el for el in root.iterchildren(etree.Element) if child(el, "ControlActProcess") is not None
    ]


def _context(item: etree._Element) -> _ItemContext:
    cap = child(item, "ControlActProcess")
    assert cap is not None
    bsn = next(
        (
            i.get("extension")
            for i in children(cap, "subject", "MedicationDispenseList", "subject", "Patient", "id")
            if i.get("root") == oids.BSN
        ),
        None,
    )
    created_el = child(item, "creationTime")
    created = parse_ts(created_el.get("value") if created_el is not None else None)
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=_AMSTERDAM)
    return _ItemContext(
        bsn=bsn,
        query_id=id_key_of(child(cap, "queryAck", "queryId")),
        created=created.astimezone(dt.UTC) if created else None,
    )


def convert_answer(
    data: bytes,
    *,
    responsible: Responsible | None = None,
    now: dt.datetime,
    base: str = DEFAULT_BASE,
) -> tuple[Json, list[DispenseResources]]:
    """(collection Bundle, the mapped dispenses) for an LSP answer. Raises
    `XmlSecurityError` / `MessageError` for input that is not an answer we read."""
    root = parse_xml(data)
    payload = unwrap(root)
    if isinstance(payload, SoapFault):
        raise MessageError("the file is a SOAP fault, not an answer", code=payload.code)
    parsed = parse_answer_element(payload)
    items = _items(payload)
    if len(items) != len(parsed.sources):
        raise MessageError("answer items could not be matched", items=len(items))
    mapped: list[DispenseResources] = []
    for source, item in zip(parsed.sources, items, strict=True):
        if not source.dispenses:
            continue
        ctx = _context(item)
        if ctx.bsn is None:
            raise MessageError("answer item names no patient BSN", item=source.message_id)
        prov = DispenseProvenance(
            pharmacy_ura=source.organization_ura,
            pharmacy_name=source.organization_name,
            source_application_id=source.application_id,
            source_system_uzi=source.system_uzi,
            batch_message_id=parsed.batch_message_id if parsed.kind == "batch" else None,
            item_message_id=source.message_id,
            query_id=ctx.query_id or "",
            fetched_at=ctx.created or now,
            run_id=None,
            responsible_uzi=responsible.uzi if responsible else "",
            responsible_name=responsible.name if responsible else None,
        )
        mapped.extend(dispense_resources(d, prov, ctx.bsn) for d in source.dispenses)
    return collection_bundle(mapped, base=base, now=now), mapped
