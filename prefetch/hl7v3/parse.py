"""Parse what the LSP sends back into domain values, completely and leniently.

Handles: an `MCCI_IN200101` batch (with or without a SOAP 1.1 envelope, with or without a
UTF-8 byte-order mark) holding `QURX_IN990113NL` items or any other item interaction; a
bare `QURX_IN990113NL`; an `MCCI_IN000002` accept acknowledgement (transmission reject);
LSP-authored items with `reasonOf/justifiedDetectedIssue`; a SOAP fault (a typed result,
not an exception).

Correlation (when `expect` is given): the batch's `targetTransmission/id` and each item's
`targetMessage/id` must equal our message id, and each `queryAck/queryId` our query id;
ids are compared as ids (message id to message id, query id to query id), never across.
An item addressed *to* the LSP (a source's own answer relayed as-is, its receiver being
the LSP) targets the LSP's forwarded message, so only its queryId is checked. A mismatch
raises `CorrelationError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO

from lxml import etree

from prefetch.domain import oids
from prefetch.domain.bsn import Bsn
from prefetch.domain.coded import Identifier
from prefetch.domain.dispense import Dispense
from prefetch.domain.outcome import Issue, SourceAnswer, SourceStatus
from prefetch.errors import CorrelationError, MessageError
from prefetch.hl7v3.dispense_read import read_dispense
from prefetch.hl7v3.hl7read import text_of
from prefetch.hl7v3.params import QueryRef, id_key
from prefetch.hl7v3.read import child, children
from prefetch.hl7v3.soap import SoapFault, unwrap
from prefetch.hl7v3.xmlbuild import HL7
from prefetch.hl7v3.xmlparse import DEFAULT_MAX_BYTES, parse_xml, parse_xml_stream

_PREFIX = "{" + HL7 + "}"
_STATUSES = {s.value: s for s in SourceStatus}
_EVENT_TAG = _PREFIX + "medicationDispenseEvent"
_ID_TAG = _PREFIX + "id"


@dataclass(frozen=True, slots=True)
class ParsedAnswer:
    """Everything one answer said, before classification (see `codes.classify`)."""

    kind: str  # "batch" | "item" | "accept_ack" | "fault"
    sources: tuple[SourceAnswer, ...] = ()
    issues: tuple[Issue, ...] = ()  # transmission level (acknowledgementDetail)
    batch_message_id: str | None = None  # root^extension of the batch / message
    interaction: str | None = None  # e.g. MCCI_IN200101
    acknowledgement: str | None = None  # transmission ack typeCode (AA, AE, CE, ...)
    target_message_id: str | None = None  # the query message id the answer echoes
    transmission_quantity: int | None = None
    fault: SoapFault | None = None
    deviations: tuple[str, ...] = field(default=())  # message-level problems, no patient data

    @property
    def message_id(self) -> str | None:
        """Alias of `batch_message_id` (for a bare item: the item's id)."""
        return self.batch_message_id

    @property
    def is_fault(self) -> bool:
        return self.fault is not None

    @property
    def dispenses(self) -> tuple[Dispense, ...]:
        return tuple(d for s in self.sources for d in s.dispenses)


def parse_answer(
    data: bytes,
    *,
    expect: QueryRef | None = None,
    expect_bsn: Bsn | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ParsedAnswer:
    """Parse an LSP answer. Raises `XmlSecurityError` (refused XML), `MessageError`
    (not an answer we know), `CorrelationError` (does not belong to `expect`, or names a
    patient other than `expect_bsn`)."""
    return _answer(parse_xml(data, max_bytes=max_bytes), expect, expect_bsn)


def _answer(root: etree._Element, expect: QueryRef | None, expect_bsn: Bsn | None) -> ParsedAnswer:
    payload = unwrap(root)
    if isinstance(payload, SoapFault):
        return ParsedAnswer(kind="fault", fault=payload)
    return parse_answer_element(payload, expect=expect, expect_bsn=expect_bsn)


def parse_answer_stream(
    stream: BinaryIO,
    *,
    expect: QueryRef | None = None,
    expect_bsn: Bsn | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ParsedAnswer:
    """As `parse_answer`, reading a file or pipe chunk by chunk (never whole first)."""
    return _answer(parse_xml_stream(stream, max_bytes=max_bytes), expect, expect_bsn)


def parse_answer_element(
    root: etree._Element, *, expect: QueryRef | None = None, expect_bsn: Bsn | None = None
) -> ParsedAnswer:
    """As `parse_answer`, for an already parsed HL7 interaction element."""
    tag = root.tag
    if not isinstance(tag, str) or not tag.startswith(_PREFIX):
        raise MessageError("not an HL7v3 message", root=etree.QName(root).localname)
    name = tag[len(_PREFIX) :]
    if expect_bsn is not None:
        _check_patient(root, expect_bsn)
    if name == "MCCI_IN200101":
        return _batch(root, expect)
    if name == "MCCI_IN000002":
        return _accept_ack(root, expect)
    if child(root, "ControlActProcess") is not None and child(root, "acknowledgement") is not None:
        deviations: list[str] = []
        source = _item(root, expect, deviations, relayed_ok=False)
        ack = child(root, "acknowledgement")
        return ParsedAnswer(
            kind="item",
            sources=(source,),
            batch_message_id=_key(child(root, "id")),
            interaction=name,
            acknowledgement=ack.get("typeCode") if ack is not None else None,
            target_message_id=_key(child(root, "acknowledgement", "targetMessage", "id")),
            issues=_details(root),
            deviations=tuple(deviations),
        )
    raise MessageError("not an LSP answer", interaction=name)


def _check_patient(root: etree._Element, bsn: Bsn) -> None:
    """Every BSN identifier in the answer must be the queried patient's (never logged)."""
    for ident in root.iter(_ID_TAG):
        if ident.get("root") == oids.BSN and ident.get("extension") != bsn.value:
            raise CorrelationError(
                "answer names another patient than the one queried", line=ident.sourceline
            )


def _key(el: etree._Element | None) -> str | None:
    if el is None:
        return None
    return id_key(_ident(el))


def _ident(el: etree._Element) -> Identifier:
    return Identifier(
        root=el.get("root"), extension=el.get("extension"), null_flavor=el.get("nullFlavor")
    )


def _same(el: etree._Element | None, want: Identifier) -> bool:
    return el is not None and el.get("root") == want.root and el.get("extension") == want.extension


def _details(root: etree._Element) -> tuple[Issue, ...]:
    issues = []
    for detail in children(root, "acknowledgement", "acknowledgementDetail"):
        code = child(detail, "code")
        text = text_of(child(detail, "text"))
        if code is not None and (code.get("code") or code.get("nullFlavor")):
            issues.append(
                Issue(
                    code=code.get("code") or code.get("nullFlavor") or "",
                    system=code.get("codeSystem"),
                    text=text or code.get("displayName"),
                )
            )
        elif text is not None:
            issues.append(Issue(code="", text=text))
    return tuple(issues)


def _batch(root: etree._Element, expect: QueryRef | None) -> ParsedAnswer:
    target = child(root, "acknowledgement", "targetTransmission", "id")
    if expect is not None and not _same(target, expect.message_id):
        raise CorrelationError(
            "batch does not answer our query message",
            got=_key(target),
            want=id_key(expect.message_id),
        )
    deviations: list[str] = []
    sources = []
    for item in root.iterchildren(etree.Element):
        if child(item, "ControlActProcess") is None:
            continue  # the batch's own header elements
        sources.append(_item(item, expect, deviations, relayed_ok=True))
    quantity_el = child(root, "transmissionQuantity")
    quantity: int | None = None
    if quantity_el is not None:
        try:
            quantity = int(quantity_el.get("value", ""))
        except ValueError:
            deviations.append("transmissionQuantity is not a number")
    if quantity is not None and quantity != len(sources):
        deviations.append(f"transmissionQuantity {quantity} but {len(sources)} items")
    ack = child(root, "acknowledgement")
    return ParsedAnswer(
        kind="batch",
        sources=tuple(sources),
        issues=_details(root),
        batch_message_id=_key(child(root, "id")),
        interaction="MCCI_IN200101",
        acknowledgement=ack.get("typeCode") if ack is not None else None,
        target_message_id=_key(target),
        transmission_quantity=quantity,
        deviations=tuple(deviations),
    )


def _accept_ack(root: etree._Element, expect: QueryRef | None) -> ParsedAnswer:
    target = child(root, "acknowledgement", "targetMessage", "id")
    if expect is not None and not _same(target, expect.message_id):
        raise CorrelationError(
            "acknowledgement does not answer our query message",
            got=_key(target),
            want=id_key(expect.message_id),
        )
    ack = child(root, "acknowledgement")
    return ParsedAnswer(
        kind="accept_ack",
        issues=_details(root),
        batch_message_id=_key(child(root, "id")),
        interaction="MCCI_IN000002",
        acknowledgement=ack.get("typeCode") if ack is not None else None,
        target_message_id=_key(target),
    )


_Author = tuple[str | None, str | None, str | None, str | None, bool]


def _author(cap: etree._Element, item_id: str | None, deviations: list[str]) -> _Author:
    """(URA, organisation name, application id, UZI system number, LSP-authored)."""
    ura = name = app_id = system_uzi = None
    participant = child(cap, "authorOrPerformer", "participant")
    author = None
    if participant is not None:
        author = child(participant, "AssignedDevice")
        if author is None:
            author = child(participant, "AssignedPerson")
    if author is None:
        deviations.append(f"item {item_id} names no author")
        return None, None, None, None, False
    for ident in children(author, "id"):
        root_, ext = ident.get("root"), ident.get("extension")
        if root_ == oids.AORTA_APPLICATION:
            app_id = ext
        elif root_ == oids.UZI_SYSTEM:
            system_uzi = ext
    org = child(author, "Organization")
    if org is not None:
        ura = next(
            (i.get("extension") for i in children(org, "id") if i.get("root") == oids.URA), None
        )
        name = text_of(child(org, "name"))
        if app_id is None:
            app_id = _application_from_telecom(org)
    return ura, name, app_id, system_uzi, app_id == oids.LSP_APPLICATION_ID and ura is None


def _item(
    item: etree._Element, expect: QueryRef | None, deviations: list[str], *, relayed_ok: bool
) -> SourceAnswer:
    interaction = etree.QName(item).localname
    if interaction != "QURX_IN990113NL":
        deviations.append(f"item {_key(child(item, 'id'))} is {interaction}: read generically")
    item_id = _key(child(item, "id"))
    cap = child(item, "ControlActProcess")
    assert cap is not None  # callers check
    query_ack = child(cap, "queryAck")
    if expect is not None:
        _correlate(item, query_ack, expect, relayed_ok=relayed_ok)
    ura, name, app_id, system_uzi, lsp_authored = _author(cap, item_id, deviations)
    issues = list(_details(item))
    for detected in children(cap, "reasonOf", "justifiedDetectedIssue"):
        code = child(detected, "code")
        if code is None:
            deviations.append(f"item {item_id} has a detected issue without code")
            continue
        issues.append(
            Issue(
                code=code.get("code") or code.get("nullFlavor") or "",
                system=code.get("codeSystem"),
                text=code.get("displayName") or text_of(child(detected, "text")),
            )
        )
    status: SourceStatus | None = None
    if query_ack is None:
        deviations.append(f"item {item_id} ({interaction}) has no queryAck")
    else:
        response = child(query_ack, "queryResponseCode")
        raw = response.get("code") if response is not None else None
        status = _STATUSES.get(raw or "")
        if status is None:
            deviations.append(f"item {item_id} has queryResponseCode {raw!r}")
            issues.append(Issue(code=f"queryResponseCode:{raw}", system=None))
    dispenses = []
    dropped = 0
    for ev in cap.iter(_EVENT_TAG):
        dispense = read_dispense(ev)
        if dispense is None:
            dropped += 1
            deviations.append(
                f"item {item_id}: dispense without id root not kept (line {ev.sourceline})"
            )
        else:
            dispenses.append(dispense)
    return SourceAnswer(
        organization_ura=ura,
        organization_name=name,
        application_id=app_id,
        system_uzi=system_uzi,
        message_id=item_id,
        status=status,
        issues=tuple(issues),
        dispenses=tuple(dispenses),
        lsp_authored=lsp_authored,
        dropped_dispenses=dropped,
    )


_TELECOM_APP = "x-hl7-applicatie:" + oids.AORTA_APPLICATION + "."


def _application_from_telecom(org: etree._Element) -> str | None:
    """AORTA application id from `telecom value="x-hl7-applicatie:<root>.<id>"`."""
    for telecom in children(org, "telecom"):
        value = telecom.get("value") or ""
        if value.startswith(_TELECOM_APP):
            return value[len(_TELECOM_APP) :] or None
    return None


def _correlate(
    item: etree._Element, query_ack: etree._Element | None, expect: QueryRef, *, relayed_ok: bool
) -> None:
    if query_ack is not None:
        query_id = child(query_ack, "queryId")
        if not _same(query_id, expect.query_id):
            raise CorrelationError(
                "answer item echoes another query id",
                got=_key(query_id),
                want=id_key(expect.query_id),
            )
    target = child(item, "acknowledgement", "targetMessage", "id")
    if _same(target, expect.message_id):
        return
    receiver_ids = [
        (i.get("root"), i.get("extension")) for i in children(item, "receiver", "device", "id")
    ]
    relayed = (oids.AORTA_APPLICATION, oids.LSP_APPLICATION_ID) in receiver_ids
    if relayed_ok and relayed and query_ack is not None:
        return
    raise CorrelationError(
        "answer item does not answer our query message",
        got=_key(target),
        want=id_key(expect.message_id),
    )
