"""The template path (`EnvelopeTemplates`) makes the tree path's bytes, byte for byte."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree
from sec_helpers import BSN_A, BSN_B, ParamsFactory

from prefetch.domain import oids
from prefetch.domain.coded import Identifier
from prefetch.domain.people import Clinician, Mandate
from prefetch.errors import SecurityError
from prefetch.hl7v3.params import QueryParams
from prefetch.hl7v3.xmlparse import parse_xml
from prefetch.security.envelope_template import COVERED_FIELDS, EnvelopeTemplates
from prefetch.security.errors import RejectReason, TokenRejected
from prefetch.security.keys import Credential
from prefetch.security.pki import DevPki
from prefetch.security.saml import DS, SAML, SOAP, WSSE, KeyInfoStyle, TokenProfile
from prefetch.security.trust import TrustStore
from prefetch.security.wssec import EnvelopeVerifier, secure_query

NS = {"saml": SAML, "ds": DS, "wsse": WSSE, "soap": SOAP}
XMLSEC1 = shutil.which("xmlsec1")


def _both(
    templates: EnvelopeTemplates,
    params: QueryParams,
    mandate_token: bytes | None,
    now: dt.datetime,
    assertion_id: str = "_0123456789abcdef0123456789abcdef",
) -> tuple[bytes, bytes]:
    tree = secure_query(
        params,
        templates.credential,
        mandate_token=mandate_token,
        now=now,
        settings=templates.settings,
        validity=templates.validity,
        profile=templates.profile,
        assertion_id=assertion_id,
    )
    fast = templates.envelope(
        params, mandate_token=mandate_token, now=now, assertion_id=assertion_id
    )
    return tree, fast


def test_covered_fields_are_every_query_field() -> None:
    assert {f.name for f in dataclasses.fields(QueryParams)} == COVERED_FIELDS


@pytest.mark.parametrize("look_back", [True, False])
@pytest.mark.parametrize("with_mandate", [True, False])
def test_template_bytes_equal_tree_bytes(
    make_params: ParamsFactory,
    creds: dict[str, Credential],
    mandate: Mandate,
    look_back: bool,
    with_mandate: bool,
) -> None:
    templates = EnvelopeTemplates(creds["hospital"])
    now = dt.datetime.now(dt.UTC)
    since = dt.date(2025, 3, 1) if look_back else None
    token = mandate.token_xml if with_mandate else None
    # the first query makes the template, the next ones only fill it (other BSN, ids, times)
    for i, bsn in enumerate((BSN_A, BSN_B, BSN_A)):
        params = make_params(now=now + dt.timedelta(seconds=i), bsn=bsn, look_back_from=since)
        tree, fast = _both(templates, params, token, now + dt.timedelta(seconds=7 * i))
        assert fast == tree
        assert etree.tostring(parse_xml(fast), method="c14n", exclusive=True) == etree.tostring(
            parse_xml(tree), method="c14n", exclusive=True
        )
    assert len(templates._templates) == 1


def test_personal_route_and_other_profile(
    make_params: ParamsFactory, creds: dict[str, Credential], assistant: Clinician
) -> None:
    now = dt.datetime.now(dt.UTC)
    profile = TokenProfile(key_info=KeyInfoStyle.STR_ISSUER_SERIAL, patient_attribute="urn:x:p")
    templates = EnvelopeTemplates(
        creds["assistant"], profile=profile, validity=dt.timedelta(minutes=2)
    )
    params = make_params(now=now, author=assistant)
    tree, fast = _both(templates, params, None, now)
    assert fast == tree


def test_values_needing_escapes_take_the_tree_path(
    make_params: ParamsFactory, creds: dict[str, Credential], mandate: Mandate, pki: DevPki
) -> None:
    now = dt.datetime.now(dt.UTC)
    templates = EnvelopeTemplates(creds["hospital"])
    root = f"2.16.528.1.1007.3.3.{pki.hospital_ura}"
    odd = make_params(now=now, message_id=Identifier(f"{root}.1", 'a&b<"c> d'))
    assert templates.prepare(odd, mandate_token=mandate.token_xml, now=now) is None
    tree, fast = _both(templates, odd, mandate.token_xml, now)
    assert fast == tree and b"a&amp;b&lt;" in fast
    # a static value holding a marker: no template, the tree path
    marked = make_params(now=now, hospital_name="Zorg @@now@@ 100%")
    assert templates.prepare(marked, mandate_token=None, now=now) is None
    tree, fast = _both(templates, marked, None, now)
    assert fast == tree


def test_template_keeps_the_signing_rules(
    make_params: ParamsFactory, creds: dict[str, Credential], assistant: Clinician
) -> None:
    now = dt.datetime.now(dt.UTC)
    templates = EnvelopeTemplates(creds["hospital"])
    with pytest.raises(SecurityError, match="another organisation"):
        templates.envelope(
            make_params(now=now, hospital_ura="87654321"), mandate_token=None, now=now
        )
    with pytest.raises(SecurityError, match="authored by its system"):
        templates.envelope(make_params(now=now, author=assistant), mandate_token=None, now=now)


def test_template_envelope_verifies(
    make_params: ParamsFactory, creds: dict[str, Credential], trust: TrustStore, mandate: Mandate
) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    templates = EnvelopeTemplates(creds["hospital"])
    verifier = EnvelopeVerifier(trust)
    for bsn in (BSN_A, BSN_B):
        params = make_params(now=now, bsn=bsn, look_back_from=dt.date(2025, 1, 2))
        env = templates.envelope(params, mandate_token=mandate.token_xml, now=now)
        result = verifier.verify(env, client_identity=creds["hospital"].identity)
        assert result.params == params
        assert result.transaction.single(f"urn:oid:{oids.BSN}") == bsn
    # what was signed is what is sent: one changed value breaks the signature
    params = make_params(now=now, bsn=BSN_A)
    env = templates.envelope(params, mandate_token=mandate.token_xml, now=now)
    tampered = env.replace(BSN_A.encode(), BSN_B.encode())
    with pytest.raises(TokenRejected) as info:
        verifier.verify(tampered, client_identity=creds["hospital"].identity)
    assert info.value.reason in (RejectReason.DIGEST_MISMATCH, RejectReason.BAD_SIGNATURE)


@pytest.mark.tools
@pytest.mark.skipif(XMLSEC1 is None, reason="xmlsec1 not installed (apt-get install xmlsec1)")
def test_template_token_verifies_with_xmlsec1(
    make_params: ParamsFactory,
    creds: dict[str, Credential],
    pki: DevPki,
    mandate: Mandate,
    tmp_path: Path,
) -> None:
    now = dt.datetime.now(dt.UTC)
    templates = EnvelopeTemplates(creds["hospital"])
    templates.envelope(make_params(now=now), mandate_token=mandate.token_xml, now=now)
    env = templates.envelope(
        make_params(now=now, bsn=BSN_B), mandate_token=mandate.token_xml, now=now
    )
    token = parse_xml(env).find("soap:Header/wsse:Security/saml:Assertion", NS)
    assert token is not None
    path = tmp_path / "token.xml"
    for data, ok in (
        (etree.tostring(token), True),
        (etree.tostring(token).replace(BSN_B.encode(), BSN_A.encode()), False),
    ):
        path.write_bytes(data)
        done = subprocess.run(
            [
                XMLSEC1 or "xmlsec1",
                "--verify",
                "--id-attr:ID",
                "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
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
        assert (done.returncode == 0) is ok, done.stderr
