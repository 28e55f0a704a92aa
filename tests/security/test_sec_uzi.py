"""UZI identity parsing from certificates."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st
from sec_helpers import self_signed

from prefetch.security import certbuild as cb
from prefetch.security.errors import CertificateRejected, CertReason
from prefetch.security.keys import Credential
from prefetch.security.uzi import (
    CardType,
    decode_ia5,
    encode_ia5,
    format_uzi_value,
    uzi_identity,
)


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=400))
def test_ia5_round_trip(text: str) -> None:
    assert decode_ia5(encode_ia5(text)) == text


@pytest.mark.parametrize("der", [b"", b"\x0c\x01a", b"\x16\x05abc", b"\x16\x81"])
def test_ia5_refuses_other_der(der: bytes) -> None:
    with pytest.raises(ValueError, match=r"IA5String|length"):
        decode_ia5(der)


def test_format_matches_register_example() -> None:
    value = format_uzi_value(
        uzi_number="123456789", card_type=CardType.SERVER, ura="12345678", role="00.000"
    )
    assert value == "2.16.528.1.1003.1.3.5.5.5-1-123456789-S-12345678-00.000-00000000"
    with pytest.raises(ValueError, match="format"):
        format_uzi_value(uzi_number="12", card_type=CardType.SERVER, ura="1", role="x")


def test_identities_of_dev_pki(creds: dict[str, Credential]) -> None:
    server = creds["hospital"].identity
    assert server.card_type is CardType.SERVER and server.is_server
    assert server.role == "00.000" and server.agb == "00000000"
    spec = creds["specialist"].identity
    assert spec.card_type is CardType.ZORGVERLENER and spec.role == "01.015"
    assert spec.agb == "01234567"
    assert creds["assistant"].identity.card_type is CardType.NAMED_EMPLOYEE
    assert spec.certificate_serial == creds["specialist"].certificate.serial_number


def test_certificate_without_uzi_name_is_refused(key2048: rsa.RSAPrivateKey) -> None:
    cert = self_signed(key2048, dt.datetime.now(dt.UTC))
    with pytest.raises(CertificateRejected) as info:
        uzi_identity(cert)
    assert info.value.reason is CertReason.NOT_UZI


def test_serial_number_must_match_uzi_number(
    creds: dict[str, Credential], key2048: rsa.RSAPrivateKey
) -> None:
    now = dt.datetime.now(dt.UTC)
    issuer = cb.Issuer(creds["hospital"].certificate, creds["hospital"].private_key)
    subject = cb.UziSubject("x", "Org", "123456782", CardType.ZORGVERLENER, "12345678", "01.015")
    good = cb.make_uzi_cert(subject, key2048, issuer, not_before=now, not_after=now)
    assert uzi_identity(good).uzi_number == "123456782"
    # forge: a subject serialNumber that differs from the otherName
    bad = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.SERIAL_NUMBER, "999999999")]))
        .issuer_name(good.issuer)
        .public_key(key2048.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now)
        .add_extension(
            good.extensions.get_extension_for_class(x509.SubjectAlternativeName).value,
            critical=False,
        )
        .sign(key2048, good.signature_hash_algorithm)  # type: ignore[arg-type]
    )
    with pytest.raises(CertificateRejected):
        uzi_identity(bad)
