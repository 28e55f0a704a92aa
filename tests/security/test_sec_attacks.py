"""One row per attack: each is refused, each with its own documented reason.

Rows of kind "tls" go through the client-certificate check the simulator does after the TLS
handshake; rows of kind "envelope" go through `EnvelopeVerifier`. A valid request is built
for every row and then attacked, so a row can only pass if the specific check refuses it.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree
from sec_helpers import BSN_B, ParamsFactory, self_signed

from prefetch.domain.people import Clinician, Mandate
from prefetch.hl7v3.query import build_query
from prefetch.hl7v3.xmlparse import parse_xml
from prefetch.security.errors import (
    REASON_DESCRIPTIONS,
    CertificateRejected,
    CertReason,
    RejectReason,
    TokenRejected,
)
from prefetch.security.keys import Credential
from prefetch.security.saml import DS, SAML, SOAP, WSSE, TokenProfile
from prefetch.security.tls import check_client_certificate
from prefetch.security.tokens import build_mandate_token, build_transaction_token
from prefetch.security.trust import TrustStore
from prefetch.security.wssec import EnvelopeVerifier, fault_code, secure_envelope

NS = {"saml": SAML, "ds": DS, "wsse": WSSE, "soap": SOAP}


@dataclass
class World:
    """Everything a row needs to build a request and attack it."""

    now: dt.datetime
    creds: dict[str, Credential]
    trust: TrustStore
    make_params: ParamsFactory
    mandate: Mandate
    specialist: Clinician
    assistant: Clinician

    def envelope(
        self,
        *,
        signer: str = "hospital",
        body_changes: dict[str, object] | None = None,
        token_changes: dict[str, object] | None = None,
        mandate_token: bytes | str | None = "default",
        validity: dt.timedelta = dt.timedelta(minutes=5),
        profile: TokenProfile | None = None,
    ) -> bytes:
        params = self.make_params(now=self.now)
        token_params = dataclasses.replace(params, **(token_changes or {}))
        body_params = dataclasses.replace(params, **(body_changes or {}))
        token = build_transaction_token(
            token_params,
            self.creds[signer],
            now=self.now,
            validity=validity,
            **({"profile": profile} if profile else {}),
        )
        chosen = self.mandate.token_xml if mandate_token == "default" else mandate_token
        assert not isinstance(chosen, str)
        return secure_envelope(
            build_query(body_params), transaction_token=token, mandate_token=chosen
        )

    def mandate_by(
        self,
        signer: str,
        clinician: Clinician,
        *,
        mandatee: str | None = None,
        until: dt.timedelta = dt.timedelta(days=30),
    ) -> bytes:
        m = Mandate(
            "m-x",
            clinician,
            mandatee or self.creds["hospital"].identity.uzi_number,
            frozenset({"s"}),
            self.now - dt.timedelta(days=60),
            self.now + until,
        )
        return build_mandate_token(m, self.creds[signer], now=self.now - dt.timedelta(days=60))


def _edit(envelope: bytes, change: Callable[[etree._Element], None]) -> bytes:
    root = parse_xml(envelope)
    change(root)
    return etree.tostring(root)


def _tx(root: etree._Element) -> etree._Element:
    return root.find("soap:Header/wsse:Security/saml:Assertion", NS)


def _tamper_digest(root: etree._Element) -> None:
    el = _tx(root).find("ds:Signature/ds:SignedInfo/ds:Reference/ds:DigestValue", NS)
    el.text = "A" + el.text[1:] if el.text[0] != "A" else "B" + el.text[1:]


def _tamper_token_bsn(root: etree._Element) -> None:
    for value in _tx(root).iter(f"{{{SAML}}}AttributeValue"):
        if value.text == "111222333":
            value.text = BSN_B


def _wrap(root: etree._Element) -> None:
    """Forge a token for another patient, hide the signed original inside it (Advice)."""
    original = _tx(root)
    forged = copy.deepcopy(original)
    for value in forged.iter(f"{{{SAML}}}AttributeValue"):
        if value.text == "111222333":
            value.text = BSN_B
    advice = etree.SubElement(forged, f"{{{SAML}}}Advice")
    advice.append(copy.deepcopy(original))
    forged.set("ID", "_forged")
    original.addprevious(forged)
    original.getparent().remove(original)


Row = tuple[str, str, Callable[[World], object]]


def _tls(label: str) -> Callable[[World], object]:
    def run(w: World) -> object:
        if label == "none":
            return check_client_certificate(None, w.trust, w.now)
        if label == "self-signed":
            cert = self_signed(w.creds["foreign"].private_key, w.now)
        else:
            cert = w.creds[label].certificate
        return check_client_certificate(cert.public_bytes(Encoding.DER), w.trust, w.now)

    return run


def _verify(
    build: Callable[[World], bytes],
    *,
    at: dt.timedelta = dt.timedelta(0),
    client: str | None = "hospital",
    twice: bool = False,
) -> Callable[[World], object]:
    def run(w: World) -> object:
        verifier = EnvelopeVerifier(w.trust)
        envelope = build(w)
        identity = w.creds[client].identity if client else None
        if twice:
            verifier.verify(envelope, client_identity=identity, now=w.now + at)
        return verifier.verify(envelope, client_identity=identity, now=w.now + at)

    return run


ATTACKS: list[Row] = [
    ("no client certificate", CertReason.MISSING.value, _tls("none")),
    ("expired client certificate", CertReason.EXPIRED.value, _tls("expired")),
    ("revoked client certificate", CertReason.REVOKED.value, _tls("revoked")),
    ("client certificate from a foreign CA", CertReason.UNTRUSTED.value, _tls("foreign")),
    ("self-signed client certificate", CertReason.SELF_SIGNED.value, _tls("self-signed")),
    ("tampered digest", "bad_signature", _verify(lambda w: _edit(w.envelope(), _tamper_digest))),
    (
        "tampered BSN in the signed token",
        "digest_mismatch",
        _verify(lambda w: _edit(w.envelope(), _tamper_token_bsn)),
    ),
    (
        "token for another patient",
        "bsn_mismatch",
        _verify(
            lambda w: w.envelope(body_changes={"bsn": w.make_params(now=w.now, bsn=BSN_B).bsn})
        ),
    ),
    (
        "token for another message",
        "message_mismatch",
        _verify(
            lambda w: w.envelope(token_changes={"message_id": w.make_params(now=w.now).message_id})
        ),
    ),
    (
        "replay outside the window",
        "expired_token",
        _verify(lambda w: w.envelope(), at=dt.timedelta(minutes=6)),
    ),
    (
        "token from the future",
        "not_yet_valid",
        _verify(lambda w: w.envelope(), at=-dt.timedelta(minutes=2)),
    ),
    ("replay inside the window", "replayed", _verify(lambda w: w.envelope(), twice=True)),
    (
        "window longer than allowed",
        "validity_too_long",
        _verify(lambda w: w.envelope(validity=dt.timedelta(hours=2))),
    ),
    ("missing mandate", "mandate_missing", _verify(lambda w: w.envelope(mandate_token=None))),
    (
        "mandate by another clinician",
        "mandate_wrong_issuer",
        _verify(lambda w: w.envelope(mandate_token=w.mandate_by("assistant", w.assistant))),
    ),
    (
        "expired mandate",
        "mandate_expired",
        _verify(
            lambda w: w.envelope(
                mandate_token=w.mandate_by("specialist", w.specialist, until=-dt.timedelta(days=1))
            )
        ),
    ),
    (
        "mandate for someone else",
        "mandate_wrong_mandatee",
        _verify(
            lambda w: w.envelope(
                mandate_token=w.mandate_by(
                    "specialist", w.specialist, mandatee=w.assistant.uzi_number
                )
            )
        ),
    ),
    ("wrapped signature", "wrapped_signature", _verify(lambda w: _edit(w.envelope(), _wrap))),
    (
        "token signed under a foreign CA",
        "untrusted_signer",
        _verify(
            lambda w: w.envelope(
                signer="foreign",
                body_changes={"author_system_uzi": w.creds["foreign"].identity.uzi_number},
                token_changes={"author_system_uzi": w.creds["foreign"].identity.uzi_number},
            )
        ),
    ),
    (
        "token signed with a revoked certificate",
        "revoked_signer",
        _verify(
            lambda w: w.envelope(
                signer="revoked",
                body_changes={"author_system_uzi": w.creds["revoked"].identity.uzi_number},
                token_changes={"author_system_uzi": w.creds["revoked"].identity.uzi_number},
            )
        ),
    ),
    (
        "token signed with an expired certificate",
        "signer_cert_invalid",
        _verify(
            lambda w: w.envelope(
                signer="expired",
                body_changes={"author_system_uzi": w.creds["expired"].identity.uzi_number},
                token_changes={"author_system_uzi": w.creds["expired"].identity.uzi_number},
            )
        ),
    ),
    (
        "token for another audience",
        "wrong_audience",
        _verify(lambda w: w.envelope(profile=TokenProfile(audience="urn:IIroot:1.2.3:IIext:9"))),
    ),
    (
        "message from another organisation",
        "issuer_mismatch",
        _verify(lambda w: w.envelope(body_changes={"hospital_ura": "87654321"})),
    ),
    (
        "message authored by another system",
        "author_mismatch",
        _verify(lambda w: w.envelope(body_changes={"author_system_uzi": "900000999"})),
    ),
    (
        "token held by another TLS client",
        "holder_mismatch",
        _verify(lambda w: w.envelope(), client="revoked"),
    ),
    (
        "no WS-Security header",
        "token_missing",
        _verify(lambda w: _edit(w.envelope(), lambda r: r.find("soap:Header", NS).clear())),
    ),
    ("not XML at all", "malformed", _verify(lambda w: b"<soap:Envelope")),
    (
        "two mandate tokens",
        "mandate_unexpected",
        _verify(
            lambda w: _edit(
                w.envelope(),
                lambda r: r.find("soap:Header/wsse:Security", NS).append(
                    parse_xml(w.mandate_by("specialist", w.specialist))
                ),
            )
        ),
    ),
]


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


def test_valid_request_passes(world: World) -> None:
    """The baseline every row starts from is accepted."""
    result = _verify(lambda w: w.envelope())(world)
    assert result is not None


@pytest.mark.parametrize(("attack", "reason", "run"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_is_refused_with_its_own_reason(
    world: World, attack: str, reason: str, run: Callable[[World], object]
) -> None:
    with pytest.raises((TokenRejected, CertificateRejected)) as info:
        run(world)
    assert info.value.reason.value == reason, attack
    text = str(info.value)
    assert "111222333" not in text and BSN_B not in text  # no BSN in error messages
    if isinstance(info.value, TokenRejected):
        assert info.value.description == REASON_DESCRIPTIONS[info.value.reason]
        assert fault_code(info.value.reason).startswith("wsse:")


def test_every_row_has_a_distinct_reason() -> None:
    reasons = [reason for _, reason, _ in ATTACKS]
    assert len(reasons) == len(set(reasons))
    documented = {r.value for r in RejectReason} | {r.value for r in CertReason}
    assert set(reasons) <= documented
    assert set(REASON_DESCRIPTIONS) == set(RejectReason)


def _move_signature(root: etree._Element) -> None:
    tx = _tx(root)
    tx.append(tx.find("ds:Signature", NS))


def _duplicate_token(root: etree._Element) -> None:
    tx = _tx(root)
    tx.addnext(copy.deepcopy(tx))


def _token_into_body(root: etree._Element) -> None:
    """Move the signed token into the Body and leave an unsigned copy in the header."""
    tx = _tx(root)
    forged = copy.deepcopy(tx)
    forged.remove(forged.find("ds:Signature", NS))
    root.find("soap:Body", NS)[0].append(tx)
    root.find("soap:Header/wsse:Security", NS).insert(0, forged)


def _signature_of_other_token(root: etree._Element) -> None:
    """Graft the mandate's signature onto the transactietoken (reference to another ID)."""
    tx = _tx(root)
    mandate = root.findall("soap:Header/wsse:Security/saml:Assertion", NS)[1]
    tx.replace(tx.find("ds:Signature", NS), copy.deepcopy(mandate.find("ds:Signature", NS)))


def _second_security_header(root: etree._Element) -> None:
    header = root.find("soap:Header", NS)
    header.append(copy.deepcopy(header[0]))


def _strip_signature(root: etree._Element) -> None:
    tx = _tx(root)
    tx.remove(tx.find("ds:Signature", NS))


@pytest.mark.parametrize(
    "change",
    [
        _wrap,
        _move_signature,
        _duplicate_token,
        _token_into_body,
        _signature_of_other_token,
        _second_security_header,
        _strip_signature,
    ],
)
def test_moved_duplicated_and_wrapped_signatures(
    world: World, change: Callable[[etree._Element], None]
) -> None:
    envelope = _edit(world.envelope(), change)
    with pytest.raises(TokenRejected) as info:
        EnvelopeVerifier(world.trust).verify(envelope, client_identity=None, now=world.now)
    assert info.value.reason is RejectReason.WRAPPED_SIGNATURE


def test_claims_come_only_from_the_signed_xml(world: World) -> None:
    """A comment inserted in the signed BSN is excluded by C14N, yet must not change claims."""

    def comment(root: etree._Element) -> None:
        for value in _tx(root).iter(f"{{{SAML}}}AttributeValue"):
            if value.text == "111222333":
                value.text = "111"
                value.append(etree.Comment("x"))
                value[-1].tail = "222333"

    envelope = _edit(world.envelope(), comment)
    result = EnvelopeVerifier(world.trust).verify(envelope, client_identity=None, now=world.now)
    assert result.transaction.single("urn:oid:2.16.840.1.113883.2.4.6.3") == "111222333"


def test_replay_memory_forgets_closed_windows(world: World) -> None:
    verifier = EnvelopeVerifier(world.trust)
    for _ in range(3):
        verifier.verify(world.envelope(), client_identity=None, now=world.now)
    assert len(verifier._seen) == 3
    later = dataclasses.replace(world, now=world.now + dt.timedelta(minutes=10))
    verifier.verify(later.envelope(), client_identity=None, now=later.now)
    assert len(verifier._seen) == 1


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(digits=st.text(alphabet="0123456789", min_size=8, max_size=8))
def test_any_other_bsn_in_the_signed_token_is_refused(world: World, digits: str) -> None:
    """Property: replacing the token's BSN by any other valid BSN never verifies."""
    from prefetch.domain.bsn import Bsn, passes_eleven_check

    check = next((d for d in "0123456789" if passes_eleven_check(digits + d)), None)
    assume(check is not None and digits + check != "111222333")
    other = Bsn(digits + (check or ""))
    envelope = world.envelope()
    root = parse_xml(envelope)
    for value in _tx(root).iter(f"{{{SAML}}}AttributeValue"):
        if value.text == "111222333":
            value.text = other.value
    with pytest.raises(TokenRejected) as info:
        EnvelopeVerifier(world.trust).verify(
            etree.tostring(root), client_identity=None, now=world.now
        )
    assert info.value.reason is RejectReason.DIGEST_MISMATCH


def test_every_audience_restriction_must_name_the_lsp() -> None:
    import dataclasses as dc

    from prefetch.security.saml import DEFAULT_PROFILE, TokenInfo

    lsp = DEFAULT_PROFILE.audience
    now = dt.datetime.now(dt.UTC)
    base = TokenInfo("_a", "i", now, "", now, now, (lsp,), (), None, 1, "u", "r", "S", ((lsp,),))
    assert base.intended_for(lsp)
    assert not dc.replace(base, audience_restrictions=((lsp,), ("urn:other",))).intended_for(lsp)
    assert not dc.replace(base, audience_restrictions=()).intended_for(lsp)
    assert dc.replace(base, audience_restrictions=(("urn:other", lsp),)).intended_for(lsp)
