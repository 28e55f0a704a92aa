"""Signed SAML tokens: the transactietoken (every query) and the mandaattoken (per mandate).

Both are SAML 2.0 assertions with one enveloped XML signature placed right after
`saml:Issuer`: RSA-SHA256, SHA-256 digests, exclusive C14N, made with signxml. KeyInfo follows
`TokenProfile.key_info` (default: `wsse:SecurityTokenReference/X509IssuerSerial` as AORTA
describes, plus `ds:X509Data/X509Certificate` so that `xmlsec1 --verify` can check the token
against the CA on its own).

Transactietoken, server-certificate route (the author is the system): empty NameID, Issuer
`urn:IIroot:2.16.528.1.1007.3.3:IIext:<URA>`, holder-of-key confirmation naming the TLS
client certificate, Audience the LSP, NotBefore/NotOnOrAfter a few minutes apart, and
attributes binding it to the message: patient BSN, author, overseer, message id.
Signed with a personal UZI pass instead, NameID is `<UZI number>:<role>`.

Mandaattoken: signed once, at registration, by the mandating clinician's non-repudiation
key; Issuer their UZI number, NameID the URA where it is valid, IssueInstant the registration
time, Conditions the mandate's validity, attributes the mandate id, the mandatee (UZI number
or UZI system number), the clinician's role and the schedules it covers.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml.algorithms import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.signer import XMLSigner

from prefetch.domain import oids
from prefetch.domain.people import Mandate
from prefetch.errors import SecurityError
from prefetch.hl7v3.params import QueryParams
from prefetch.hl7v3.xmlparse import make_parser
from prefetch.security.keys import Credential
from prefetch.security.saml import (
    AUTHN_X509,
    DEFAULT_PROFILE,
    DS,
    HOLDER_OF_KEY,
    SAML,
    WSSE,
    KeyInfoStyle,
    TokenProfile,
    add_attributes,
    add_conditions,
    ii_urn,
    new_assertion,
    q,
    saml_time,
)
from prefetch.security.uzi import CardType

EXC_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0


def _signer() -> XMLSigner:
    signer = XMLSigner(
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=EXC_C14N,
    )
    signer.namespaces = {"ds": DS}
    signer._parser = make_parser()  # type: ignore[assignment]
    return signer


def _issuer_serial(parent: etree._Element, cert: x509.Certificate) -> None:
    data = etree.SubElement(parent, q(DS, "X509Data"))
    serial = etree.SubElement(data, q(DS, "X509IssuerSerial"))
    etree.SubElement(serial, q(DS, "X509IssuerName")).text = cert.issuer.rfc4514_string()
    etree.SubElement(serial, q(DS, "X509SerialNumber")).text = str(cert.serial_number)


def _key_info(credential: Credential, style: KeyInfoStyle) -> etree._Element:
    key_info = etree.Element(q(DS, "KeyInfo"), nsmap={"ds": DS})
    if style in (KeyInfoStyle.STR_ISSUER_SERIAL, KeyInfoStyle.BOTH):
        ref = etree.SubElement(key_info, q(WSSE, "SecurityTokenReference"), nsmap={"wsse": WSSE})
        _issuer_serial(ref, credential.certificate)
    if style in (KeyInfoStyle.X509_CERTIFICATE, KeyInfoStyle.BOTH):
        data = etree.SubElement(key_info, q(DS, "X509Data"))
        der = credential.certificate.public_bytes(Encoding.DER)
        etree.SubElement(data, q(DS, "X509Certificate")).text = base64.b64encode(der).decode()
    return key_info


def sign_assertion(
    assertion: etree._Element, credential: Credential, profile: TokenProfile = DEFAULT_PROFILE
) -> etree._Element:
    """Enveloped signature over the whole assertion (Reference URI `#<ID>`)."""
    signed: etree._Element = _signer().sign(
        assertion,
        key=credential.private_key,
        reference_uri=f"#{assertion.get('ID')}",
        id_attribute="ID",
        key_info=_key_info(credential, profile.key_info),
    )
    return signed


def new_assertion_id() -> str:
    """A fresh assertion ID (an NCName: `_` and 32 hex digits)."""
    return f"_{uuid.uuid4().hex}"


def build_transaction_token(
    params: QueryParams,
    credential: Credential,
    *,
    now: dt.datetime,
    validity: dt.timedelta = dt.timedelta(minutes=5),
    holder: x509.Certificate | None = None,
    profile: TokenProfile = DEFAULT_PROFILE,
    assertion_id: str | None = None,
) -> etree._Element:
    """The signed transactietoken for one query (a detached `saml:Assertion` element).

    `holder` is the TLS client certificate the token is bound to (default: the signer's).
    Raises SecurityError when the credential cannot speak for this query (wrong URA, or a
    personal pass that is not the message's author).
    """
    assertion = unsigned_transaction_token(
        params,
        credential,
        now=now,
        validity=validity,
        holder=holder,
        profile=profile,
        assertion_id=assertion_id,
    )
    return sign_assertion(assertion, credential, profile)


def unsigned_transaction_token(
    params: QueryParams,
    credential: Credential,
    *,
    now: dt.datetime,
    validity: dt.timedelta = dt.timedelta(minutes=5),
    holder: x509.Certificate | None = None,
    profile: TokenProfile = DEFAULT_PROFILE,
    assertion_id: str | None = None,
) -> etree._Element:
    """The transactietoken before signing (with the signature placeholder after Issuer);
    the same checks as `build_transaction_token`."""
    ident = credential.identity
    if ident.ura != params.hospital_ura:
        raise SecurityError(
            "signing certificate belongs to another organisation",
            message_id=params.message_id.extension,
        )
    if ident.card_type is CardType.SERVER:
        if params.author is not None or params.author_system_uzi != ident.uzi_number:
            raise SecurityError(
                "a server certificate signs only queries authored by its system",
                message_id=params.message_id.extension,
            )
        name_id = ""
        author = ii_urn(oids.UZI_SYSTEM, ident.uzi_number)
    else:
        if params.author is None or params.author.uzi_number != ident.uzi_number:
            raise SecurityError(
                "a personal pass signs only its holder's own queries",
                message_id=params.message_id.extension,
            )
        name_id = f"{ident.uzi_number}:{ident.role}"
        author = ii_urn(oids.UZI_PERSON, ident.uzi_number)
    assertion = new_assertion(assertion_id or new_assertion_id(), now, ii_urn(oids.URA, ident.ura))
    subject = etree.SubElement(assertion, q(SAML, "Subject"))
    nid = etree.SubElement(subject, q(SAML, "NameID"))
    nid.set("Format", profile.nameid_format)
    nid.text = name_id
    confirmation = etree.SubElement(subject, q(SAML, "SubjectConfirmation"))
    confirmation.set("Method", HOLDER_OF_KEY)
    data = etree.SubElement(confirmation, q(SAML, "SubjectConfirmationData"))
    data.set(
        q("http://www.w3.org/2001/XMLSchema-instance", "type"), "saml:KeyInfoConfirmationDataType"
    )
    key_info = etree.SubElement(data, q(DS, "KeyInfo"), nsmap={"ds": DS})
    _issuer_serial(key_info, holder or credential.certificate)
    add_conditions(assertion, now, now + validity, profile.audience)
    authn = etree.SubElement(assertion, q(SAML, "AuthnStatement"))
    authn.set("AuthnInstant", saml_time(now))
    ctx = etree.SubElement(authn, q(SAML, "AuthnContext"))
    etree.SubElement(ctx, q(SAML, "AuthnContextClassRef")).text = AUTHN_X509
    add_attributes(
        assertion,
        [
            (profile.patient_attribute, [params.bsn.value]),
            (profile.author_attribute, [author]),
            (profile.overseer_attribute, [ii_urn(oids.UZI_PERSON, params.overseer.uzi_number)]),
            (
                profile.message_attribute,
                [ii_urn(params.message_id.root or "", params.message_id.extension or "")],
            ),
        ],
    )
    return assertion


def build_mandate_token(
    mandate: Mandate,
    mandating_credential: Credential,
    *,
    now: dt.datetime,
    profile: TokenProfile = DEFAULT_PROFILE,
) -> bytes:
    """The mandaattoken, signed by the mandating clinician's own pass (serialised XML).

    Raises SecurityError if the credential is not the mandating clinician's personal pass.
    """
    ident = mandating_credential.identity
    if not ident.card_type.is_person or ident.uzi_number != mandate.mandating.uzi_number:
        raise SecurityError(
            "a mandate is signed only by the mandating clinician's own pass", mandate_id=mandate.id
        )
    if mandate.mandating.ura is not None and mandate.mandating.ura != ident.ura:
        raise SecurityError(
            "mandating clinician's URA differs from the pass", mandate_id=mandate.id
        )
    assertion = new_assertion(new_assertion_id(), now, ii_urn(oids.UZI_PERSON, ident.uzi_number))
    subject = etree.SubElement(assertion, q(SAML, "Subject"))
    nid = etree.SubElement(subject, q(SAML, "NameID"))
    nid.set("Format", profile.nameid_format)
    nid.text = ii_urn(oids.URA, ident.ura)
    add_conditions(assertion, mandate.valid_from, mandate.valid_until, profile.audience)
    add_attributes(
        assertion,
        [
            (profile.mandate_id_attribute, [mandate.id]),
            (profile.mandatee_attribute, [mandate.mandated_id]),
            (profile.role_attribute, [mandate.mandating.role_code]),
            (profile.schedules_attribute, sorted(mandate.schedules)),
        ],
    )
    signed = sign_assertion(assertion, mandating_credential, profile)
    return etree.tostring(signed)
