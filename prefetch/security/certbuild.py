"""Certificate and CRL construction for the development PKI (UZI-register shaped).

Pure helpers around `cryptography.x509.CertificateBuilder`; `pki.py` decides what to build
and where it goes.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from prefetch.security.uzi import CardType, format_uzi_value, uzi_other_name


@dataclass(frozen=True, slots=True)
class Issuer:
    """A CA that can sign: its certificate and key."""

    cert: x509.Certificate
    key: rsa.RSAPrivateKey


@dataclass(frozen=True, slots=True)
class UziSubject:
    """Who an end-entity UZI certificate is for."""

    common_name: str
    organisation: str
    uzi_number: str
    card_type: CardType
    ura: str
    role: str
    agb: str = "00000000"


def new_key(key_size: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


def _ski(key: rsa.RSAPrivateKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key.public_key())


def _ca_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_usage(*, signing: bool, non_repudiation: bool, encipherment: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing,
        content_commitment=non_repudiation,
        key_encipherment=encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def make_ca(
    name: str,
    key: rsa.RSAPrivateKey,
    *,
    parent: Issuer | None,
    not_before: dt.datetime,
    not_after: dt.datetime,
    path_length: int | None,
) -> Issuer:
    """A root CA (parent None, self-signed) or an intermediate CA signed by `parent`."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "prefetch development PKI"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    issuer_name = subject if parent is None else parent.cert.subject
    signing_key = key if parent is None else parent.key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(_ca_usage(), critical=True)
        .add_extension(_ski(key), critical=False)
    )
    if parent is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(parent.key.public_key()),
            critical=False,
        )
    return Issuer(cert=builder.sign(signing_key, hashes.SHA256()), key=key)


def make_uzi_cert(
    subject: UziSubject,
    key: rsa.RSAPrivateKey,
    issuer: Issuer,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    dns_names: tuple[str, ...] = (),
) -> x509.Certificate:
    """A UZI end-entity certificate: SAN otherName 2.5.5.5, subject serialNumber = UZI nr."""
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, subject.organisation),
        x509.NameAttribute(NameOID.COMMON_NAME, subject.common_name),
        x509.NameAttribute(NameOID.SERIAL_NUMBER, subject.uzi_number),
    ]
    if subject.card_type.is_person:
        attrs.append(x509.NameAttribute(NameOID.TITLE, subject.role))
    value = format_uzi_value(
        uzi_number=subject.uzi_number,
        card_type=subject.card_type,
        ura=subject.ura,
        role=subject.role,
        agb=subject.agb,
    )
    san: list[x509.GeneralName] = [uzi_other_name(value)]
    san += [x509.DNSName(d) for d in dns_names]
    is_server = subject.card_type is CardType.SERVER
    eku = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if is_server:
        eku.append(ExtendedKeyUsageOID.SERVER_AUTH)
    builder = (
        _leaf_builder(x509.Name(attrs), key, issuer, not_before, not_after)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(
            _leaf_usage(signing=True, non_repudiation=not is_server, encipherment=is_server),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    )
    return builder.sign(issuer.key, hashes.SHA256())


def make_tls_server_cert(
    common_name: str,
    key: rsa.RSAPrivateKey,
    issuer: Issuer,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    dns_names: tuple[str, ...],
    ip_addresses: tuple[str, ...],
) -> x509.Certificate:
    """A plain TLS server certificate (the simulator's, standing in for the LSP's)."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NL"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "prefetch LSP simulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    san: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    san += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    builder = (
        _leaf_builder(name, key, issuer, not_before, not_after)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(
            _leaf_usage(signing=True, non_repudiation=False, encipherment=True), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    )
    return builder.sign(issuer.key, hashes.SHA256())


def _leaf_builder(
    name: x509.Name,
    key: rsa.RSAPrivateKey,
    issuer: Issuer,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_ski(key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )


def make_crl(
    issuer: Issuer, revoked: list[x509.Certificate], *, now: dt.datetime, next_update: dt.datetime
) -> x509.CertificateRevocationList:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(now)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(1), critical=False)
    )
    for cert in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(cert.serial_number)
            .revocation_date(now)
            .build()
        )
    return builder.sign(issuer.key, hashes.SHA256())
