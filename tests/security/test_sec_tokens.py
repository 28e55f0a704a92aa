"""Token shape, signing rules, envelope, and independent verification with xmlsec1."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree
from sec_helpers import ParamsFactory

from prefetch.domain.people import Clinician, Mandate
from prefetch.errors import SecurityError
from prefetch.hl7v3.query import build_query
from prefetch.hl7v3.xmlparse import parse_xml
from prefetch.security.keys import Credential
from prefetch.security.pki import DevPki
from prefetch.security.saml import DS, SAML, SOAP, WSSE, KeyInfoStyle, TokenProfile, q
from prefetch.security.tokens import build_mandate_token, build_transaction_token
from prefetch.security.trust import TrustStore
from prefetch.security.wssec import EnvelopeVerifier, secure_envelope, secure_query

NS = {"saml": SAML, "ds": DS, "wsse": WSSE, "soap": SOAP}
ASSERTION_ID = "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"


def test_transaction_token_shape(
    make_params: ParamsFactory, creds: dict[str, Credential], pki: DevPki
) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    token = build_transaction_token(make_params(now=now), creds["hospital"], now=now)
    children = [etree.QName(c).localname for c in token]
    assert children[:3] == ["Issuer", "Signature", "Subject"]
    assert (
        token.findtext("saml:Issuer", namespaces=NS)
        == f"urn:IIroot:2.16.528.1.1007.3.3:IIext:{pki.hospital_ura}"
    )
    assert token.findtext("saml:Subject/saml:NameID", namespaces=NS) in ("", None)
    assert (
        token.find("saml:Subject/saml:SubjectConfirmation", NS).get("Method")
        == "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"
    )
    sig = token.find("ds:Signature", NS)
    assert (
        sig.find("ds:SignedInfo/ds:SignatureMethod", NS).get("Algorithm")
        == "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    )
    assert (
        sig.find("ds:SignedInfo/ds:CanonicalizationMethod", NS).get("Algorithm")
        == "http://www.w3.org/2001/10/xml-exc-c14n#"
    )
    assert sig.find("ds:SignedInfo/ds:Reference", NS).get("URI") == f"#{token.get('ID')}"
    serial = sig.findtext(
        "ds:KeyInfo/wsse:SecurityTokenReference/ds:X509Data/"
        "ds:X509IssuerSerial/ds:X509SerialNumber",
        namespaces=NS,
    )
    assert serial == str(creds["hospital"].certificate.serial_number)
    cond = token.find("saml:Conditions", NS)
    assert (cond.get("NotBefore"), cond.get("NotOnOrAfter")) == (
        now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        (now + dt.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def test_signing_rules(
    make_params: ParamsFactory, creds: dict[str, Credential], assistant: Clinician
) -> None:
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(SecurityError, match="another organisation"):
        build_transaction_token(
            make_params(now=now, hospital_ura="87654321"), creds["hospital"], now=now
        )
    with pytest.raises(SecurityError, match="authored by its system"):
        build_transaction_token(make_params(now=now, author=assistant), creds["hospital"], now=now)
    with pytest.raises(SecurityError, match="holder's own"):
        build_transaction_token(make_params(now=now), creds["assistant"], now=now)
    personal = build_transaction_token(
        make_params(now=now, author=assistant), creds["assistant"], now=now
    )
    assert (
        personal.findtext("saml:Subject/saml:NameID", namespaces=NS)
        == f"{assistant.uzi_number}:{assistant.role_code}"
    )


def test_mandate_token_rules(
    mandate: Mandate, creds: dict[str, Credential], assistant: Clinician, pki: DevPki
) -> None:
    root = parse_xml(mandate.token_xml or b"")
    assert (
        root.findtext("saml:Subject/saml:NameID", namespaces=NS)
        == f"urn:IIroot:2.16.528.1.1007.3.3:IIext:{pki.hospital_ura}"
    )
    assert root.findtext("saml:Issuer", namespaces=NS).endswith(mandate.mandating.uzi_number)
    with pytest.raises(SecurityError, match="own pass"):
        build_mandate_token(mandate, creds["assistant"], now=mandate.valid_from)
    with pytest.raises(SecurityError, match="own pass"):
        build_mandate_token(
            dataclasses.replace(mandate, mandating=assistant),
            creds["hospital"],
            now=mandate.valid_from,
        )


def test_envelope_structure_and_round_trip(
    make_params: ParamsFactory, creds: dict[str, Credential], trust: TrustStore, mandate: Mandate
) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    params = make_params(now=now)
    body = build_query(params)
    token = build_transaction_token(params, creds["hospital"], now=now)
    envelope = secure_envelope(body, transaction_token=token, mandate_token=mandate.token_xml)
    root = parse_xml(envelope)
    security = root.find("soap:Header/wsse:Security", NS)
    assert security.get(q(SOAP, "mustUnderstand")) == "1"
    assert security.get(q(SOAP, "actor")) == "http://www.aortarelease.nl/actor/zim"
    assert len(security.findall("saml:Assertion", NS)) == 2
    assert etree.QName(root.find("soap:Body", NS)[0]).localname == "QURX_IN990111NL"
    assert token.getparent() is None and body.getparent() is None  # copied, not moved
    result = EnvelopeVerifier(trust).verify(envelope, client_identity=creds["hospital"].identity)
    assert result.params == params
    assert result.transaction.signer_uzi == creds["hospital"].identity.uzi_number
    assert result.mandate is not None and result.mandate.signer_uzi == mandate.mandating.uzi_number


def test_personal_route_with_mandate(
    make_params: ParamsFactory,
    creds: dict[str, Credential],
    trust: TrustStore,
    assistant: Clinician,
    specialist: Clinician,
    pki_now: dt.datetime,
) -> None:
    now = dt.datetime.now(dt.UTC)
    m = Mandate(
        "m-assistant",
        specialist,
        assistant.uzi_number,
        frozenset({"x"}),
        pki_now - dt.timedelta(days=1),
        pki_now + dt.timedelta(days=1),
    )
    token = build_mandate_token(m, creds["specialist"], now=pki_now)
    params = make_params(now=now, author=assistant)
    env = secure_query(params, creds["assistant"], mandate_token=token, now=now)
    result = EnvelopeVerifier(trust).verify(env, client_identity=None)
    assert result.transaction.name_id == f"{assistant.uzi_number}:{assistant.role_code}"
    # the specialist acting for themselves needs no mandate
    own = make_params(now=now, author=specialist)
    env = secure_query(own, creds["specialist"], mandate_token=None, now=now)
    assert EnvelopeVerifier(trust).verify(env, client_identity=None).mandate is None


def test_issuer_serial_only_key_info(
    make_params: ParamsFactory, creds: dict[str, Credential], pki: DevPki, mandate: Mandate
) -> None:
    profile = TokenProfile(key_info=KeyInfoStyle.STR_ISSUER_SERIAL)
    now = dt.datetime.now(dt.UTC)
    env = secure_query(
        make_params(now=now),
        creds["hospital"],
        mandate_token=mandate.token_xml,
        now=now,
        profile=profile,
    )
    assert b"X509Certificate" not in env.split(b"<saml:Assertion")[1]
    store = pki.trust_store()
    from prefetch.security.errors import RejectReason, TokenRejected

    with pytest.raises(TokenRejected) as info:
        EnvelopeVerifier(store, profile=profile).verify(env, client_identity=None)
    assert info.value.reason is RejectReason.UNTRUSTED_SIGNER
    store.add_known(creds["hospital"].certificate)
    EnvelopeVerifier(store, profile=profile).verify(env, client_identity=None)


XMLSEC1 = shutil.which("xmlsec1")


def _xmlsec1(pki: DevPki, token: bytes, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "token.xml"
    path.write_bytes(token)
    return subprocess.run(
        [
            XMLSEC1 or "xmlsec1",
            "--verify",
            "--id-attr:ID",
            ASSERTION_ID,
            "--trusted-pem",
            str(pki.root_ca),
            "--untrusted-pem",
            str(pki.issuing_ca),
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.tools
@pytest.mark.skipif(XMLSEC1 is None, reason="xmlsec1 not installed (apt-get install xmlsec1)")
def test_xmlsec1_verifies_tokens_independently(
    make_params: ParamsFactory,
    creds: dict[str, Credential],
    pki: DevPki,
    mandate: Mandate,
    tmp_path: Path,
) -> None:
    now = dt.datetime.now(dt.UTC)
    token = etree.tostring(
        build_transaction_token(make_params(now=now), creds["hospital"], now=now)
    )
    ok = _xmlsec1(pki, token, tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "OK" in ok.stdout + ok.stderr
    assert _xmlsec1(pki, mandate.token_xml or b"", tmp_path).returncode == 0
    tampered = token.replace(b"111222333", b"111222345")
    assert _xmlsec1(pki, tampered, tmp_path).returncode != 0
    foreign_params = make_params(now=now, author_system_uzi=creds["foreign"].identity.uzi_number)
    foreign = etree.tostring(build_transaction_token(foreign_params, creds["foreign"], now=now))
    assert _xmlsec1(pki, foreign, tmp_path).returncode != 0


def test_signed_query_from_dev_pki(
    make_params: ParamsFactory,
    pki: DevPki,
    trust: TrustStore,
    creds: dict[str, Credential],
    specialist: Clinician,
) -> None:
    from sec_helpers import PASSPHRASE

    from prefetch.errors import MandateError
    from prefetch.security.devsign import signed_query_from_dev_pki

    now = dt.datetime.now(dt.UTC)
    envelope = signed_query_from_dev_pki(make_params(now=now), pki.directory, PASSPHRASE, now=now)
    result = EnvelopeVerifier(trust).verify(envelope, client_identity=creds["hospital"].identity)
    assert result.mandate is not None and result.mandate.signer_uzi == specialist.uzi_number
    other = dataclasses.replace(specialist, uzi_number="999999990")
    with pytest.raises(MandateError, match="registered mandate"):
        signed_query_from_dev_pki(
            make_params(now=now, overseer=other), pki.directory, PASSPHRASE, now=now
        )
