"""UZI identity in X.509 certificates (UZI register certificate policy).

A UZI certificate carries its holder's identity in `subjectAltName` as an `otherName` of type
`2.5.5.5` whose value is an IA5String::

    <CA-OID>-<version>-<UZI-nr>-<card type>-<URA>-<role>-<AGB>
    2.16.528.1.1003.1.3.5.5.5-1-123456789-S-12345678-00.000-00000000

Card types: Z (zorgverlener, a BIG-registered professional), N (named employee), M (unnamed
employee), S (server / system). The subject `serialNumber` attribute repeats the UZI number
(for a server certificate: the UZI system number).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from prefetch.security.errors import CertificateRejected, CertReason

UZI_OTHERNAME_OID = x509.ObjectIdentifier("2.5.5.5")
UZI_CA_OID = "2.16.528.1.1003.1.3.5.5.5"  # as in AORTA.md section 4; the dev PKI uses it too

_UZI_VALUE = re.compile(
    r"^(?P<ca>\d+(?:\.\d+)*)-(?P<version>\d+)-(?P<uzi>\d{8,9})-(?P<card>[ZNMS])-"
    r"(?P<ura>\d{8})-(?P<role>\d{2}\.\d{3})-(?P<agb>\d{8})$"
)


class CardType(enum.Enum):
    """UZI pass / certificate type."""

    ZORGVERLENER = "Z"  # BIG-registered care professional
    NAMED_EMPLOYEE = "N"  # named employee (e.g. a pharmacy or poli assistant)
    UNNAMED_EMPLOYEE = "M"
    SERVER = "S"  # server / system certificate

    @property
    def is_person(self) -> bool:
        return self is not CardType.SERVER


@dataclass(frozen=True, slots=True)
class UziIdentity:
    """Who a UZI certificate belongs to, plus which certificate it is."""

    uzi_number: str  # UZI number (person) or UZI system number (server)
    card_type: CardType
    ura: str  # the organisation (URA) the pass belongs to
    role: str  # UZI role code, "00.000" for servers
    agb: str
    ca_oid: str
    version: str
    certificate_serial: int  # X.509 serial of the certificate it came from
    issuer: str  # RFC 4514 issuer name of that certificate

    @property
    def is_server(self) -> bool:
        return self.card_type is CardType.SERVER


def format_uzi_value(
    *,
    uzi_number: str,
    card_type: CardType,
    ura: str,
    role: str,
    agb: str = "00000000",
    ca_oid: str = UZI_CA_OID,
    version: str = "1",
) -> str:
    """The IA5String value of the 2.5.5.5 otherName."""
    value = f"{ca_oid}-{version}-{uzi_number}-{card_type.value}-{ura}-{role}-{agb}"
    if not _UZI_VALUE.match(value):
        raise ValueError("UZI otherName fields do not have the register's format")
    return value


def encode_ia5(text: str) -> bytes:
    """DER encoding of an IA5String (tag 0x16)."""
    data = text.encode("ascii")
    return bytes([0x16]) + _der_length(len(data)) + data


def decode_ia5(der: bytes) -> str:
    """Decode a DER IA5String; raises ValueError on anything else."""
    if len(der) < 2 or der[0] != 0x16:
        raise ValueError("not an IA5String")
    length, offset = _read_der_length(der, 1)
    if offset + length != len(der):
        raise ValueError("IA5String length does not match its content")
    return der[offset:].decode("ascii")


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _read_der_length(der: bytes, pos: int) -> tuple[int, int]:
    first = der[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0 or count > 4 or pos + 1 + count > len(der):
        raise ValueError("bad DER length")
    return int.from_bytes(der[pos + 1 : pos + 1 + count], "big"), pos + 1 + count


def uzi_other_name(value: str) -> x509.OtherName:
    """The subjectAltName entry for a UZI value string."""
    return x509.OtherName(UZI_OTHERNAME_OID, encode_ia5(value))


def uzi_identity(cert: x509.Certificate) -> UziIdentity:
    """Parse the UZI identity from `cert`; raises CertificateRejected(NOT_UZI) if absent.

    Requires exactly one 2.5.5.5 otherName and, when the subject has a serialNumber, that it
    equals the UZI number in the otherName.
    """
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise CertificateRejected(CertReason.NOT_UZI, serial=cert.serial_number) from None
    values = [
        name.value
        for name in san.get_values_for_type(x509.OtherName)
        if name.type_id == UZI_OTHERNAME_OID
    ]
    if len(values) != 1:
        raise CertificateRejected(
            CertReason.NOT_UZI, serial=cert.serial_number, uzi_names=len(values)
        )
    try:
        match = _UZI_VALUE.match(decode_ia5(values[0]))
    except (ValueError, UnicodeDecodeError):
        match = None
    if match is None:
        raise CertificateRejected(CertReason.NOT_UZI, serial=cert.serial_number)
    serials = cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
    if serials and serials[0].value != match["uzi"]:
        raise CertificateRejected(
            CertReason.NOT_UZI,
            serial=cert.serial_number,
            detail="subject serialNumber differs from UZI number",
        )
    return UziIdentity(
        uzi_number=match["uzi"],
        card_type=CardType(match["card"]),
        ura=match["ura"],
        role=match["role"],
        agb=match["agb"],
        ca_oid=match["ca"],
        version=match["version"],
        certificate_serial=cert.serial_number,
        issuer=cert.issuer.rfc4514_string(),
    )
