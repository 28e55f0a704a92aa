"""SAML 2.0 assertion shapes shared by the token builder and the verifier.

Every choice that public AORTA material leaves open (**[U]** in AORTA.md: attribute names,
NameID format, KeyInfo form) lives in `TokenProfile`, so qualification against the real LSP
changes a setting, not the code.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from lxml import etree

from prefetch.domain import oids
from prefetch.security.uzi import UziIdentity

SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XS = "http://www.w3.org/2001/XMLSchema"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
HOLDER_OF_KEY = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
AUTHN_X509 = "urn:oasis:names:tc:SAML:2.0:ac:classes:X509"

ASSERTION_NSMAP = {"saml": SAML, "xs": XS, "xsi": XSI}


def q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


class KeyInfoStyle(enum.Enum):
    """How the signature's KeyInfo names the signing certificate."""

    STR_ISSUER_SERIAL = "str_issuer_serial"  # wsse:SecurityTokenReference / X509IssuerSerial
    X509_CERTIFICATE = "x509_certificate"  # ds:X509Data / X509Certificate
    BOTH = "both"  # both: AORTA form + self-contained (xmlsec1)


@dataclass(frozen=True, slots=True)
class TokenProfile:
    """The wire choices for tokens. Defaults follow AORTA.md section 4 where it is explicit."""

    audience: str = f"urn:IIroot:{oids.AORTA_APPLICATION}:IIext:{oids.LSP_APPLICATION_ID}"
    actor: str = "http://www.aortarelease.nl/actor/zim"
    key_info: KeyInfoStyle = KeyInfoStyle.BOTH
    nameid_format: str = NAMEID_UNSPECIFIED
    # [U] attribute names; values are II URNs (urn:IIroot:<root>:IIext:<extension>)
    patient_attribute: str = f"urn:oid:{oids.BSN}"
    author_attribute: str = "urn:nl:aorta:author"
    overseer_attribute: str = "urn:nl:aorta:overseer"
    message_attribute: str = "urn:nl:aorta:message-id"
    mandate_id_attribute: str = "urn:nl:aorta:mandate-id"
    mandatee_attribute: str = "urn:nl:aorta:mandatee"
    schedules_attribute: str = "urn:nl:aorta:schedules"
    role_attribute: str = "urn:nl:aorta:role"
    max_transaction_validity: dt.timedelta = field(default=dt.timedelta(minutes=10))


DEFAULT_PROFILE = TokenProfile()


def ii_urn(root: str, extension: str) -> str:
    return f"urn:IIroot:{root}:IIext:{extension}"


def parse_ii_urn(value: str) -> tuple[str, str] | None:
    prefix = "urn:IIroot:"
    if not value.startswith(prefix) or ":IIext:" not in value:
        return None
    root, _, extension = value[len(prefix) :].partition(":IIext:")
    return (root, extension) if root and extension else None


def saml_time(moment: dt.datetime) -> str:
    """xs:dateTime in UTC with a Z, to the second (SAML core 1.3.3)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_saml_time(text: str | None) -> dt.datetime:
    if not text:
        raise ValueError("missing time")
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("SAML time without zone")
    return value.astimezone(dt.UTC)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a verified assertion says, read only from the signed XML."""

    assertion_id: str
    issuer: str
    issue_instant: dt.datetime
    name_id: str
    not_before: dt.datetime
    not_on_or_after: dt.datetime
    audiences: tuple[str, ...]
    attributes: tuple[tuple[str, tuple[str, ...]], ...]
    holder: tuple[str, int] | None  # (issuer name, serial) of holder-of-key cert
    signer_serial: int
    signer_uzi: str
    signer_ura: str
    signer_card_type: str  # UZI card type of the signer's certificate (Z, N, M, S)
    audience_restrictions: tuple[tuple[str, ...], ...] = ()
    signer_role: str = ""  # UZI role code in the signer's certificate ("00.000" for servers)

    def intended_for(self, audience: str) -> bool:
        """True when there is an AudienceRestriction and every one names `audience`."""
        return bool(self.audience_restrictions) and all(
            audience in restriction for restriction in self.audience_restrictions
        )

    def attribute(self, name: str) -> tuple[str, ...]:
        for key, values in self.attributes:
            if key == name:
                return values
        return ()

    def single(self, name: str) -> str | None:
        values = self.attribute(name)
        return values[0] if len(values) == 1 else None


def new_assertion(assertion_id: str, issue_instant: dt.datetime, issuer: str) -> etree._Element:
    """`saml:Assertion` with Issuer and a signature placeholder right after it."""
    assertion = etree.Element(q(SAML, "Assertion"), nsmap=ASSERTION_NSMAP)
    assertion.set("ID", assertion_id)
    assertion.set("IssueInstant", saml_time(issue_instant))
    assertion.set("Version", "2.0")
    etree.SubElement(assertion, q(SAML, "Issuer")).text = issuer
    placeholder = etree.SubElement(assertion, q(DS, "Signature"), nsmap={"ds": DS})
    placeholder.set("Id", "placeholder")
    return assertion


def add_conditions(
    assertion: etree._Element, not_before: dt.datetime, not_on_or_after: dt.datetime, audience: str
) -> None:
    cond = etree.SubElement(assertion, q(SAML, "Conditions"))
    cond.set("NotBefore", saml_time(not_before))
    cond.set("NotOnOrAfter", saml_time(not_on_or_after))
    restriction = etree.SubElement(cond, q(SAML, "AudienceRestriction"))
    etree.SubElement(restriction, q(SAML, "Audience")).text = audience


def add_attributes(assertion: etree._Element, attributes: list[tuple[str, list[str]]]) -> None:
    statement = etree.SubElement(assertion, q(SAML, "AttributeStatement"))
    for name, values in attributes:
        attr = etree.SubElement(statement, q(SAML, "Attribute"))
        attr.set("Name", name)
        attr.set("NameFormat", "urn:oasis:names:tc:SAML:2.0:attrname-format:uri")
        for value in values:
            el = etree.SubElement(attr, q(SAML, "AttributeValue"))
            el.set(q(XSI, "type"), "xs:string")
            el.text = value


def read_token(signed: etree._Element, *, signer: UziIdentity) -> TokenInfo:
    """The claims of a (verified) assertion element, with its signer; ValueError if malformed."""
    ns = {"saml": SAML, "ds": DS}
    if signed.tag != q(SAML, "Assertion") or signed.get("Version") != "2.0":
        raise ValueError("not a SAML 2.0 assertion")
    issuer = signed.findtext("saml:Issuer", namespaces=ns)
    cond = signed.find("saml:Conditions", ns)
    if issuer is None or cond is None:
        raise ValueError("assertion without Issuer or Conditions")
    holder: tuple[str, int] | None = None
    serial_el = signed.find(
        "saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData"
        "/ds:KeyInfo/ds:X509Data/ds:X509IssuerSerial",
        ns,
    )
    if serial_el is not None:
        holder = (
            serial_el.findtext("ds:X509IssuerName", "", ns),
            int(serial_el.findtext("ds:X509SerialNumber", "", ns)),
        )
    attributes = tuple(
        (a.get("Name", ""), tuple(v.text or "" for v in a.findall("saml:AttributeValue", ns)))
        for a in signed.findall("saml:AttributeStatement/saml:Attribute", ns)
    )
    names = [a for a, _ in attributes]
    if len(names) != len(set(names)):
        raise ValueError("duplicate SAML attribute")
    return TokenInfo(
        assertion_id=signed.get("ID") or "",
        issuer=issuer,
        issue_instant=parse_saml_time(signed.get("IssueInstant")),
        name_id=signed.findtext("saml:Subject/saml:NameID", "", ns),
        not_before=parse_saml_time(cond.get("NotBefore")),
        not_on_or_after=parse_saml_time(cond.get("NotOnOrAfter")),
        audiences=tuple(
            a.text or "" for a in cond.findall("saml:AudienceRestriction/saml:Audience", ns)
        ),
        attributes=attributes,
        holder=holder,
        signer_serial=signer.certificate_serial,
        signer_uzi=signer.uzi_number,
        signer_ura=signer.ura,
        signer_card_type=signer.card_type.value,
        signer_role=signer.role,
        audience_restrictions=tuple(
            tuple(a.text or "" for a in r.findall("saml:Audience", ns))
            for r in cond.findall("saml:AudienceRestriction", ns)
        ),
    )
