"""The simulator-side caches of `EnvelopeVerifier` refuse what a fresh check refuses.

A mandaattoken is verified once per verifier and then found by the SHA-256 of its bytes;
the transactietoken's signature is checked on every query; the mandate's validity is
checked on every query; a verifier with another trust store checks again (and refuses).
The simulator hands the verifier the tree it parsed (`parsed=`): same limits, same result.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from lxml import etree
from sec_helpers import ParamsFactory
from test_sec_attacks import NS, World, _edit

from prefetch.domain.people import Clinician, Mandate
from prefetch.hl7v3.xmlparse import parse_xml
from prefetch.security import signcheck
from prefetch.security.errors import RejectReason, TokenRejected
from prefetch.security.keys import Credential
from prefetch.security.pki import DevPki
from prefetch.security.trust import TrustStore
from prefetch.security.verify import EnvelopeVerifier


@pytest.fixture
def world(
    creds: dict[str, Credential],
    trust: TrustStore,
    make_params: ParamsFactory,
    mandate: Mandate,
    specialist: Clinician,
    assistant: Clinician,
) -> World:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return World(now, creds, trust, make_params, mandate, specialist, assistant)


@pytest.fixture
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The XML handed to signxml for each signature check, in order."""
    seen: list[bytes] = []
    real = signcheck.XMLVerifier

    class Counting(real):  # type: ignore[misc, valid-type]
        def verify(self, data, **kwargs):  # type: ignore[no-untyped-def]
            seen.append(data)
            return super().verify(data, **kwargs)

    monkeypatch.setattr(signcheck, "XMLVerifier", Counting)
    return seen


def _verify(verifier: EnvelopeVerifier, w: World, envelope: bytes, **kw: object) -> object:
    return verifier.verify(envelope, client_identity=w.creds["hospital"].identity, now=w.now, **kw)


def test_mandate_signature_once_per_verifier_transaction_token_every_query(
    world: World, signature_checks: list[bytes]
) -> None:
    verifier = EnvelopeVerifier(world.trust)
    for _ in range(3):
        _verify(verifier, world, world.envelope())
    # first query: transactietoken + mandaattoken; then only each query's transactietoken
    assert len(signature_checks) == 4
    assert len(set(signature_checks)) == 4


def test_a_changed_mandate_is_checked_again_and_refused(
    world: World, signature_checks: list[bytes]
) -> None:
    verifier = EnvelopeVerifier(world.trust)
    _verify(verifier, world, world.envelope())  # the genuine mandate is now cached

    def change(root: etree._Element) -> None:
        assertions = root.findall("soap:Header/wsse:Security/saml:Assertion", NS)
        mandate = assertions[-1]
        value = mandate.find(".//saml:AttributeValue", NS)
        assert value is not None and value.text
        value.text = value.text + "0"

    with pytest.raises(TokenRejected) as info:
        _verify(verifier, world, _edit(world.envelope(), change))
    assert info.value.reason is RejectReason.DIGEST_MISMATCH
    assert len(signature_checks) == 4  # both tokens of the changed envelope were checked


def test_a_cached_mandate_still_expires(world: World) -> None:
    verifier = EnvelopeVerifier(world.trust)
    token = world.mandate_by("specialist", world.specialist, until=dt.timedelta(days=1))
    _verify(verifier, world, world.envelope(mandate_token=token))
    later = dataclasses.replace(world, now=world.now + dt.timedelta(days=2))
    with pytest.raises(TokenRejected) as info:
        _verify(verifier, later, later.envelope(mandate_token=token))
    assert info.value.reason is RejectReason.MANDATE_EXPIRED


def test_another_trust_store_checks_again_and_refuses(world: World, pki: DevPki) -> None:
    envelope = world.envelope()
    _verify(EnvelopeVerifier(world.trust), world, envelope)
    foreign = TrustStore.from_files([pki.foreign_ca], require_crl=False)
    with pytest.raises(TokenRejected) as info:
        _verify(EnvelopeVerifier(foreign), world, world.envelope())
    assert info.value.reason is RejectReason.UNTRUSTED_SIGNER


def test_the_parsed_tree_is_read_like_the_bytes(world: World) -> None:
    verifier = EnvelopeVerifier(world.trust)
    envelope = world.envelope()
    result = _verify(verifier, world, envelope, parsed=parse_xml(envelope))
    assert result.params.bsn.value == world.make_params(now=world.now).bsn.value  # type: ignore[attr-defined]


def test_the_envelope_size_limit_holds_for_a_parsed_tree(world: World) -> None:
    envelope = world.envelope()
    padded = envelope.replace(b"<soap:Body>", b"<soap:Body>" + b" " * (2 * 1024 * 1024), 1)
    assert padded != envelope
    with pytest.raises(TokenRejected) as info:
        _verify(EnvelopeVerifier(world.trust), world, padded, parsed=parse_xml(padded))
    assert info.value.reason is RejectReason.MALFORMED
    with pytest.raises(TokenRejected) as info:
        _verify(EnvelopeVerifier(world.trust), world, padded)
    assert info.value.reason is RejectReason.MALFORMED


WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"


@pytest.mark.parametrize("attribute", ["ID", "Id", "id", f"{{{WSU}}}Id"])
def test_an_id_used_twice_under_any_id_attribute_is_refused(world: World, attribute: str) -> None:
    """A second element carrying a token's ID (as ID, Id, id or wsu:Id) is a wrapping attempt."""

    def repeat(root: etree._Element) -> None:
        token = root.find("soap:Header/wsse:Security/saml:Assertion", NS)
        payload = root.find("soap:Body", NS)
        assert token is not None and payload is not None
        payload[0].set(attribute, token.get("ID") or "")

    with pytest.raises(TokenRejected) as info:
        _verify(EnvelopeVerifier(world.trust), world, _edit(world.envelope(), repeat))
    assert info.value.reason is RejectReason.WRAPPED_SIGNATURE
    assert info.value.context.get("detail") == "duplicate ID"
