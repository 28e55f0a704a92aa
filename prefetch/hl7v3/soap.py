"""SOAP 1.1 envelopes: wrap an HL7 interaction, build a fault, take an envelope apart.

The HL7 interaction is the direct child of `soap:Body` (AORTA.md section 4). Building the
envelope is a function of its own so that the security layer can add a `wsse:Security`
header to the element before serialising.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from prefetch.hl7v3.xmlbuild import SOAP11, set_text
from prefetch.hl7v3.xmlparse import parse_xml

_ENV = f"{{{SOAP11}}}Envelope"
_HEADER = f"{{{SOAP11}}}Header"
_BODY = f"{{{SOAP11}}}Body"
_FAULT = f"{{{SOAP11}}}Fault"


@dataclass(frozen=True, slots=True)
class SoapFault:
    """A SOAP 1.1 fault as received: faultcode, faultstring, optional actor and detail text."""

    code: str
    reason: str
    actor: str | None = None
    detail: str | None = None


def envelope(payload: bytes | etree._Element, *, header: bool = True) -> etree._Element:
    """A SOAP 1.1 `Envelope` element with (empty) Header and the payload in Body."""
    env = etree.Element(_ENV, nsmap={"soap": SOAP11})
    if header:
        etree.SubElement(env, _HEADER)
    body = etree.SubElement(env, _BODY)
    body.append(parse_xml(payload) if isinstance(payload, bytes) else _detached(payload))
    return env


def _detached(el: etree._Element) -> etree._Element:
    """The element itself if it is a root; a deep copy if it sits inside another tree."""
    if el.getparent() is None:
        return el
    return etree.fromstring(etree.tostring(el))


def wrap_soap_body(payload: bytes | etree._Element) -> bytes:
    """Serialise `payload` inside a SOAP 1.1 envelope (UTF-8 with declaration)."""
    return bytes(etree.tostring(envelope(payload), xml_declaration=True, encoding="UTF-8"))


def build_soap_fault(code: str, reason: str) -> bytes:
    """A SOAP 1.1 fault envelope. `code` without a prefix is qualified as `soap:<code>`."""
    env = etree.Element(_ENV, nsmap={"soap": SOAP11})
    body = etree.SubElement(env, _BODY)
    fault = etree.SubElement(body, _FAULT)
    set_text(etree.SubElement(fault, "faultcode"), code if ":" in code else f"soap:{code}")
    set_text(etree.SubElement(fault, "faultstring"), reason)
    return bytes(etree.tostring(env, xml_declaration=True, encoding="UTF-8"))


def unwrap(root: etree._Element) -> etree._Element | SoapFault:
    """The payload of a SOAP 1.1 envelope, a `SoapFault`, or `root` itself if not SOAP."""
    if root.tag != _ENV:
        return root
    body = root.find(_BODY)
    if body is None:
        return SoapFault(code="soap:Client", reason="SOAP envelope without Body")
    payload = next((c for c in body if isinstance(c.tag, str)), None)
    if payload is None:
        return SoapFault(code="soap:Client", reason="empty SOAP Body")
    if payload.tag == _FAULT:
        return _fault(payload)
    return payload


def _fault(el: etree._Element) -> SoapFault:
    def text(name: str) -> str | None:
        found = el.find(name)
        if found is None:
            return None
        value = " ".join("".join(t for t in found.itertext() if isinstance(t, str)).split())
        return value or None

    return SoapFault(
        code=text("faultcode") or "",
        reason=text("faultstring") or "",
        actor=text("faultactor"),
        detail=text("detail"),
    )
