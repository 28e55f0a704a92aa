"""Strict structural reading of a secured SOAP envelope (before any signature check).

`split_envelope` refuses anything but exactly one Header with one `wsse:Security`, one Body
with one child, and SAML assertions / signatures only where they belong. Moving, duplicating
or wrapping a signed assertion therefore fails before any signature is looked at
(`wrapped_signature`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from lxml import etree

from prefetch.errors import XmlSecurityError
from prefetch.hl7v3.xmlparse import parse_xml
from prefetch.security.errors import RejectReason, TokenRejected
from prefetch.security.saml import DS, SAML, SOAP, WSSE, q

# SOAP fault codes from WS-Security 1.0 section 12, per reason.
_FAULT_CODES: dict[RejectReason, str] = {
    RejectReason.MALFORMED: "wsse:InvalidSecurity",
    RejectReason.TOKEN_MISSING: "wsse:SecurityTokenUnavailable",
    RejectReason.BAD_SIGNATURE: "wsse:FailedCheck",
    RejectReason.DIGEST_MISMATCH: "wsse:FailedCheck",
    RejectReason.WRAPPED_SIGNATURE: "wsse:InvalidSecurity",
    RejectReason.UNTRUSTED_SIGNER: "wsse:InvalidSecurityToken",
    RejectReason.REVOKED_SIGNER: "wsse:InvalidSecurityToken",
    RejectReason.SIGNER_CERT_INVALID: "wsse:InvalidSecurityToken",
    RejectReason.MANDATE_MISSING: "wsse:SecurityTokenUnavailable",
}


def fault_code(reason: RejectReason) -> str:
    """WS-Security fault code (QName text) for a refusal; reason.value is the fault string."""
    return _FAULT_CODES.get(reason, "wsse:FailedAuthentication")


@dataclass(frozen=True, slots=True)
class EnvelopeParts:
    """The pieces of a structurally sound secured envelope (not yet verified)."""

    body: etree._Element
    transaction: etree._Element
    mandate: etree._Element | None


def _reject(reason: RejectReason, **context: object) -> TokenRejected:
    return TokenRejected(reason, **context)


def _only(parent: etree._Element, tag: str) -> list[etree._Element]:
    return [c for c in parent if isinstance(c.tag, str) and c.tag == tag]


_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
# every value of an ID, Id, id or wsu:Id attribute in the document (in C, one pass)
_ID_VALUES = "//@ID | //@Id | //@id | //@wsu:Id"


class _PerThread(threading.local):
    """Each thread's compiled XPath (lxml XPath objects are not shared between threads)."""

    def __init__(self) -> None:
        self.id_values = etree.XPath(_ID_VALUES, namespaces={"wsu": _WSU}, smart_strings=False)


_THREAD = _PerThread()


def _check_unique_ids(root: etree._Element) -> None:
    values = _THREAD.id_values(root)
    assert isinstance(values, list)
    if len(set(values)) != len(values):
        raise _reject(RejectReason.WRAPPED_SIGNATURE, detail="duplicate ID")


def _check_assertion_shape(assertion: etree._Element) -> None:
    children = [c for c in assertion if isinstance(c.tag, str)]
    sigs = [c for c in children if c.tag == q(DS, "Signature")]
    if (
        len(sigs) != 1
        or len(children) < 2
        or children[0].tag != q(SAML, "Issuer")
        or children[1] is not sigs[0]
    ):
        raise _reject(RejectReason.WRAPPED_SIGNATURE, detail="signature not after Issuer")
    refs = sigs[0].findall(f"{q(DS, 'SignedInfo')}/{q(DS, 'Reference')}")
    if len(refs) != 1 or refs[0].get("URI") != f"#{assertion.get('ID')}":
        raise _reject(RejectReason.WRAPPED_SIGNATURE, detail="reference is not the assertion")


def split_envelope(envelope: bytes, *, max_bytes: int = 2 * 1024 * 1024) -> EnvelopeParts:
    """Parse (hardened) and structurally check a secured envelope.

    Raises TokenRejected: malformed, token_missing, wrapped_signature, mandate_unexpected.
    """
    try:
        root = parse_xml(envelope, max_bytes=max_bytes)
    except XmlSecurityError:
        raise _reject(RejectReason.MALFORMED, detail="envelope not parseable") from None
    return split_tree(root)


def split_tree(root: etree._Element) -> EnvelopeParts:
    """`split_envelope` for an envelope already parsed by `parse_xml` (the same limits).

    The caller must not change the tree; its elements are the parts returned.
    """
    if root.tag != q(SOAP, "Envelope"):
        raise _reject(RejectReason.MALFORMED, detail="not a SOAP 1.1 envelope")
    headers, bodies = _only(root, q(SOAP, "Header")), _only(root, q(SOAP, "Body"))
    if len(headers) > 1 or len(bodies) != 1:
        raise _reject(RejectReason.MALFORMED, detail="header or body count")
    payload = [c for c in bodies[0] if isinstance(c.tag, str)]
    if len(payload) != 1:
        raise _reject(RejectReason.MALFORMED, detail="body must hold one interaction")
    securities = _only(headers[0], q(WSSE, "Security")) if headers else []
    if len(securities) > 1:
        raise _reject(RejectReason.WRAPPED_SIGNATURE, detail="more than one Security header")
    if not securities:
        raise _reject(RejectReason.TOKEN_MISSING)
    security = securities[0]
    assertions = _only(security, q(SAML, "Assertion"))
    if sum(1 for _ in root.iter(q(SAML, "Assertion"))) != len(assertions):
        raise _reject(RejectReason.WRAPPED_SIGNATURE, detail="assertion outside Security")
    signatures = sum(1 for _ in root.iter(q(DS, "Signature")))
    if signatures != len(assertions):
        raise _reject(RejectReason.WRAPPED_SIGNATURE, detail="signature count")
    _check_unique_ids(root)
    for assertion in assertions:
        _check_assertion_shape(assertion)
    transactions, mandates = [], []
    for assertion in assertions:
        issuer = assertion.findtext(q(SAML, "Issuer")) or ""
        if issuer.startswith("urn:IIroot:2.16.528.1.1007.3.3:"):
            transactions.append(assertion)
        elif issuer.startswith("urn:IIroot:2.16.528.1.1007.3.1:"):
            mandates.append(assertion)
        else:
            raise _reject(RejectReason.MALFORMED, detail="assertion of unknown kind")
    if not transactions:
        raise _reject(RejectReason.TOKEN_MISSING)
    if len(transactions) > 1:
        raise _reject(RejectReason.WRAPPED_SIGNATURE, detail="more than one transactietoken")
    if len(mandates) > 1:
        raise _reject(RejectReason.MANDATE_UNEXPECTED)
    return EnvelopeParts(
        body=payload[0], transaction=transactions[0], mandate=mandates[0] if mandates else None
    )
