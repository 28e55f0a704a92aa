"""One row per attack: each is refused, each with its own documented reason.

Rows of kind "tls" go through the client-certificate check the simulator does after the TLS
handshake (test_sec_tls_handshake.py runs the same refusals through a real handshake with the
simulator); rows of kind "envelope" go through `EnvelopeVerifier`. A valid request is built
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
from prefetch.errors import MessageError, SecurityError
from prefetch.hl7v3.query import build_query
from prefetch.hl7v3.xmlparse import parse_xml
from prefetch.security.errors import (
    REASON_DESCRIPTIONS,
    REQUEST_REASON_DESCRIPTIONS,
    CertificateRejected,
    CertReason,
    RejectReason,
    RequestReason,
    RequestRejected,
    TokenRejected,
)
from prefetch.security.keys import Credential
from prefetch.security.saml import DS, SAML, SOAP, WSSE, TokenProfile
from prefetch.security.tls import check_client_certificate
from prefetch.security.tokens import build_mandate_token, build_transaction_token
from prefetch.security.trust import TrustStore
from prefetch.security.wssec import EnvelopeVerifier, fault_code, secure_envelope

NS = {"saml": SAML, "ds": DS, "wsse": WSSE, "soap": SOAP}
HL7 = "urn:hl7-org:v3"


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

    def forged(self, role: str = "01.099") -> Clinician:
        """The specialist claiming a role their UZI certificate does not carry."""
        return dataclasses.replace(self.specialist, role_code=role)

    def acting(
        self,
        signer: str,
        *,
        author: Clinician,
        overseer: Clinician,
        mandate_token: bytes | None = None,
    ) -> bytes:
        """An envelope authored by a person (their own pass signs) for `overseer`."""
        who = {"author": author, "overseer": overseer, "author_system_uzi": None}
        return self.envelope(
            signer=signer, body_changes=who, token_changes=who, mandate_token=mandate_token
        )

    def for_overseer(self, overseer: Clinician, mandate_token: bytes) -> bytes:
        """A server-route envelope (the hospital system authors) for `overseer`."""
        return self.envelope(
            body_changes={"overseer": overseer},
            token_changes={"overseer": overseer},
            mandate_token=mandate_token,
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


def _patient_id(root: etree._Element) -> etree._Element:
    found = root.find(
        "soap:Body/*/hl7:ControlActProcess/hl7:queryByParameter/hl7:patientID",
        {**NS, "hl7": HL7},
    )
    assert found is not None
    return found


def _second_patient_id(root: etree._Element) -> None:
    """The token's patient first, another patient second (parse_query reads the first)."""
    first = _patient_id(root)
    second = copy.deepcopy(first)
    second[0].set("extension", BSN_B)
    first.addnext(second)


def _padded_bsn(root: etree._Element) -> None:
    value = _patient_id(root)[0]
    value.set("extension", f" {value.get('extension')} ")


def _second_bsn_value(root: etree._Element) -> None:
    first = _patient_id(root)
    extra = copy.deepcopy(first[0])
    extra.set("extension", BSN_B)
    first.append(extra)


def _no_patient_id(root: etree._Element) -> None:
    first = _patient_id(root)
    first.getparent().remove(first)


def _unreadable_query(root: etree._Element) -> None:
    """A patientID that is fine, but no queryId: parse_query cannot read the body."""
    qbp = _patient_id(root).getparent()
    qbp.remove(qbp.find("hl7:queryId", {"hl7": HL7}))


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


# When on, `_verify` hands the verifier the tree the simulator parsed (`parsed=`), as
# `LspService` does; an envelope the parser refuses never reaches the verifier there, so it
# is then verified from its bytes.
_FROM_TREE = {"on": False}


def _tree(envelope: bytes) -> etree._Element | None:
    if not _FROM_TREE["on"]:
        return None
    try:
        return parse_xml(envelope)
    except MessageError:
        return None


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
            verifier.verify(
                envelope, client_identity=identity, now=w.now + at, parsed=_tree(envelope)
            )
        return verifier.verify(
            envelope, client_identity=identity, now=w.now + at, parsed=_tree(envelope)
        )

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
    (
        "assistant acts as responsible clinician without a mandate",
        "overseer_not_clinician",
        _verify(
            lambda w: w.acting("assistant", author=w.assistant, overseer=w.assistant),
            client="assistant",
        ),
    ),
    (
        "specialist claims another role without a mandate",
        "overseer_role_mismatch",
        _verify(
            lambda w: w.acting("specialist", author=w.specialist, overseer=w.forged()),
            client="specialist",
        ),
    ),
    (
        "assistant mandates the system as overseer (N card)",
        "mandate_signer_not_clinician",
        _verify(lambda w: w.for_overseer(w.assistant, w.mandate_by("assistant", w.assistant))),
    ),
    (
        "specialist mandate with a forged role in mandate and body",
        "mandate_role_mismatch",
        _verify(lambda w: w.for_overseer(w.forged(), w.mandate_by("specialist", w.forged()))),
    ),
    (
        "second patientID with another BSN in the body",
        "bad_request",
        _verify(lambda w: _edit(w.envelope(), _second_patient_id)),
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
    with pytest.raises((TokenRejected, CertificateRejected, RequestRejected)) as info:
        run(world)
    assert info.value.reason.value == reason, attack
    text = str(info.value)
    assert "111222333" not in text and BSN_B not in text  # no BSN in error messages
    if isinstance(info.value, TokenRejected):
        assert info.value.description == REASON_DESCRIPTIONS[info.value.reason]
        assert fault_code(info.value.reason).startswith("wsse:")
    if isinstance(info.value, RequestRejected):
        assert not isinstance(info.value, SecurityError)  # a request problem, not a token one
        assert info.value.description == REQUEST_REASON_DESCRIPTIONS[info.value.reason]


@pytest.mark.parametrize(("attack", "reason", "run"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_is_refused_alike_from_the_parsed_tree(
    world: World,
    attack: str,
    reason: str,
    run: Callable[[World], object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The simulator passes its parsed tree to the verifier: every row is still refused."""
    monkeypatch.setitem(_FROM_TREE, "on", True)
    with pytest.raises((TokenRejected, CertificateRejected, RequestRejected)) as info:
        run(world)
    assert info.value.reason.value == reason, attack


def test_every_row_has_a_distinct_reason() -> None:
    reasons = [reason for _, reason, _ in ATTACKS]
    assert len(reasons) == len(set(reasons))
    documented = (
        {r.value for r in RejectReason}
        | {r.value for r in CertReason}
        | {RequestReason.BAD_REQUEST.value}
    )
    assert set(reasons) <= documented
    assert set(REASON_DESCRIPTIONS) == set(RejectReason)
    assert set(REQUEST_REASON_DESCRIPTIONS) == set(RequestReason)


@pytest.mark.parametrize(
    "change",
    [_second_patient_id, _padded_bsn, _second_bsn_value, _no_patient_id, _unreadable_query],
)
def test_unreadable_or_ambiguous_body_is_a_bad_request_not_a_token_failure(
    world: World, change: Callable[[etree._Element], None]
) -> None:
    envelope = _edit(world.envelope(), change)
    with pytest.raises(RequestRejected) as info:
        EnvelopeVerifier(world.trust).verify(envelope, client_identity=None, now=world.now)
    assert info.value.reason is RequestReason.BAD_REQUEST
    assert isinstance(info.value, MessageError) and not isinstance(info.value, SecurityError)
    assert "111222333" not in str(info.value) and BSN_B not in str(info.value)


def test_clinician_acting_in_their_own_role_needs_no_mandate(world: World) -> None:
    envelope = world.acting("specialist", author=world.specialist, overseer=world.specialist)
    result = EnvelopeVerifier(world.trust).verify(
        envelope, client_identity=world.creds["specialist"].identity, now=world.now
    )
    assert result.mandate is None
    assert result.transaction.signer_card_type == "Z"
    assert result.transaction.signer_role == world.specialist.role_code


def test_assistant_queries_under_a_specialist_mandate(world: World) -> None:
    mandate = world.mandate_by("specialist", world.specialist, mandatee=world.assistant.uzi_number)
    envelope = world.acting(
        "assistant", author=world.assistant, overseer=world.specialist, mandate_token=mandate
    )
    result = EnvelopeVerifier(world.trust).verify(
        envelope, client_identity=world.creds["assistant"].identity, now=world.now
    )
    assert result.mandate is not None
    assert (result.mandate.signer_card_type, result.mandate.signer_role) == ("Z", "01.015")


def test_genuine_mandate_with_a_forged_overseer_role_in_the_body(world: World) -> None:
    envelope = world.for_overseer(world.forged(), world.mandate_by("specialist", world.specialist))
    with pytest.raises(TokenRejected) as info:
        EnvelopeVerifier(world.trust).verify(envelope, client_identity=None, now=world.now)
    assert info.value.reason is RejectReason.MANDATE_WRONG_ISSUER


def test_assistant_acting_as_overseer_under_own_mandate_as_author(world: World) -> None:
    """Author assistant, overseer assistant, a mandate the assistant signed for themself."""
    mandate = world.mandate_by("assistant", world.assistant, mandatee=world.assistant.uzi_number)
    envelope = world.acting(
        "assistant", author=world.assistant, overseer=world.assistant, mandate_token=mandate
    )
    with pytest.raises(TokenRejected) as info:
        EnvelopeVerifier(world.trust).verify(
            envelope, client_identity=world.creds["assistant"].identity, now=world.now
        )
    assert info.value.reason is RejectReason.MANDATE_SIGNER_NOT_CLINICIAN


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
