"""SOAP 1.1 envelopes with a WS-Security header carrying the signed SAML tokens.

Client side: `secure_envelope(body, transaction_token=..., mandate_token=...)` returns the
bytes to POST. Simulator side: `EnvelopeVerifier` checks what the LSP checks (implemented in
`prefetch.security.verify`, re-exported here); `fault_code` maps a refusal to a WS-Security
fault code.
"""

from __future__ import annotations

import copy
import datetime as dt

from lxml import etree

from prefetch.hl7v3.aorta_settings import DEFAULT_SETTINGS, AortaSettings
from prefetch.hl7v3.params import QueryParams
from prefetch.hl7v3.query import build_query
from prefetch.hl7v3.xmlparse import parse_xml
from prefetch.security.envelope import EnvelopeParts, fault_code, split_envelope
from prefetch.security.keys import Credential
from prefetch.security.saml import DEFAULT_PROFILE, SOAP, WSSE, TokenProfile, q
from prefetch.security.tokens import build_transaction_token
from prefetch.security.verify import EnvelopeVerifier, VerifiedRequest

__all__ = [
    "EnvelopeParts",
    "EnvelopeVerifier",
    "VerifiedRequest",
    "fault_code",
    "secure_envelope",
    "secure_query",
    "split_envelope",
]


def secure_envelope(
    body: etree._Element,
    *,
    transaction_token: etree._Element,
    mandate_token: bytes | None,
    profile: TokenProfile = DEFAULT_PROFILE,
) -> bytes:
    """A SOAP 1.1 envelope: `wsse:Security` (mustUnderstand, AORTA actor) + the HL7 body.

    The caller's elements are copied, not moved. The mandate token is the stored bytes.
    """
    envelope = etree.Element(q(SOAP, "Envelope"), nsmap={"soap": SOAP})
    header = etree.SubElement(envelope, q(SOAP, "Header"))
    security = etree.SubElement(header, q(WSSE, "Security"), nsmap={"wsse": WSSE})
    security.set(q(SOAP, "mustUnderstand"), "1")
    security.set(q(SOAP, "actor"), profile.actor)
    security.append(copy.deepcopy(transaction_token))
    if mandate_token is not None:
        security.append(parse_xml(mandate_token))
    etree.SubElement(envelope, q(SOAP, "Body")).append(copy.deepcopy(body))
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def secure_query(
    params: QueryParams,
    credential: Credential,
    *,
    mandate_token: bytes | None,
    now: dt.datetime,
    settings: AortaSettings = DEFAULT_SETTINGS,
    validity: dt.timedelta = dt.timedelta(minutes=5),
    profile: TokenProfile = DEFAULT_PROFILE,
    assertion_id: str | None = None,
) -> bytes:
    """The complete envelope for one query: HL7 body, signed transactietoken, mandate token.

    The tree path: every element built and signed anew (`prefetch.security.template` makes
    the same bytes from a per-run template)."""
    body = build_query(params, settings)
    token = build_transaction_token(
        params,
        credential,
        now=now,
        validity=validity,
        profile=profile,
        assertion_id=assertion_id,
    )
    return secure_envelope(
        body, transaction_token=token, mandate_token=mandate_token, profile=profile
    )
