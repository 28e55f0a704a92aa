"""The development PKI: files, modes, certificate shape, key protection."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sec_helpers import PASSPHRASE, unencrypted_key_files

from prefetch.errors import ConfigError, SecurityError
from prefetch.security.keys import Credential
from prefetch.security.pki import DevPki, create_dev_pki
from prefetch.security.uzi import UZI_OTHERNAME_OID, decode_ia5

_UZI_VALUE = re.compile(
    r"^2\.16\.528\.1\.1003\.1\.3\.5\.5\.5-1-(\d{9})-([ZNMS])-(\d{8})-(\d\d\.\d{3})-(\d{8})$"
)
# DER object identifiers inside PKCS#12: PBES2 and AES-256-CBC
_PBES2 = bytes.fromhex("06092a864886f70d01050d")
_AES256_CBC = bytes.fromhex("060960864801650304012a")
_PBE_SHA1_3DES = bytes.fromhex("060a2a864886f70d010c0103")
_PBE_SHA1_RC2_40 = bytes.fromhex("060a2a864886f70d010c0106")


def _cert(pki: DevPki, label: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pki.identity(label).cert.read_bytes())


def test_files_modes_and_manifest(pki: DevPki) -> None:
    assert stat.S_IMODE(pki.directory.stat().st_mode) == 0o700
    for ident in pki.identities.values():
        assert stat.S_IMODE(ident.p12.stat().st_mode) == 0o600
        assert ident.cert.exists()
    manifest = json.loads((pki.directory / "manifest.json").read_text())
    assert manifest["key_size"] == 2048
    assert set(manifest["identities"]) == {
        "hospital",
        "specialist",
        "assistant",
        "simulator",
        "revoked",
        "expired",
        "foreign",
    }
    assert manifest["identities"]["specialist"]["card_type"] == "Z"
    assert manifest["identities"]["assistant"]["card_type"] == "N"
    assert DevPki.load(pki.directory) == pki


def test_no_unencrypted_key_material_and_strong_pkcs12(pki: DevPki) -> None:
    assert unencrypted_key_files(pki.directory) == []
    for ident in pki.identities.values():
        data = ident.p12.read_bytes()
        assert _PBES2 in data and _AES256_CBC in data
        assert _PBE_SHA1_3DES not in data and _PBE_SHA1_RC2_40 not in data


def test_scan_detects_an_unencrypted_key(tmp_path: Path) -> None:
    # Built from parts so that a scan of the repository for key headers stays clean.
    (tmp_path / "oops.pem").write_bytes(b"-----BEGIN " + b"PRIVATE KEY-----\nAAAA\n")
    (tmp_path / "fine.pem").write_bytes(b"-----BEGIN ENCRYPTED " + b"PRIVATE KEY-----\nAAAA\n")
    assert unencrypted_key_files(tmp_path) == [tmp_path / "oops.pem"]


@pytest.mark.parametrize(
    ("label", "card", "role"),
    [("hospital", "S", "00.000"), ("specialist", "Z", "01.015"), ("assistant", "N", "00.000")],
)
def test_uzi_certificate_shape(pki: DevPki, label: str, card: str, role: str) -> None:
    cert = _cert(pki, label)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    values = [
        decode_ia5(n.value)
        for n in san.get_values_for_type(x509.OtherName)
        if n.type_id == UZI_OTHERNAME_OID
    ]
    assert len(values) == 1
    m = _UZI_VALUE.match(values[0])
    assert m is not None
    uzi, card_type, ura, role_code, _agb = m.groups()
    assert (card_type, ura, role_code) == (card, pki.hospital_ura, role)
    assert cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == uzi
    assert uzi == pki.identity(label).uzi_number
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_cert_sign
    assert ku.content_commitment == (card != "S")
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert (ExtendedKeyUsageOID.SERVER_AUTH in eku) == (card == "S")
    assert cert.signature_hash_algorithm is not None
    assert cert.signature_hash_algorithm.name == "sha256"


def test_simulator_certificate_names_localhost(pki: DevPki) -> None:
    cert = _cert(pki, "simulator")
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_ca_chain_and_crl(pki: DevPki, pki_now: dt.datetime) -> None:
    root = x509.load_pem_x509_certificate(pki.root_ca.read_bytes())
    issuing = x509.load_pem_x509_certificate(pki.issuing_ca.read_bytes())
    issuing.verify_directly_issued_by(root)
    _cert(pki, "hospital").verify_directly_issued_by(issuing)
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    crl = x509.load_pem_x509_crl(pki.crls[1].read_bytes())
    assert crl.is_signature_valid(issuing.public_key())  # type: ignore[arg-type]
    revoked = {r.serial_number for r in crl}
    assert revoked == {_cert(pki, "revoked").serial_number}
    assert _cert(pki, "expired").not_valid_after_utc < pki_now


def test_credential_loads_once_and_hides_key(pki: DevPki, creds: dict[str, Credential]) -> None:
    cred = creds["hospital"]
    assert "PRIVATE" not in repr(cred) and "key=<hidden>" in repr(cred)
    assert cred.identity.uzi_number == pki.hospital.uzi_number
    assert len(cred.chain) == 2
    with pytest.raises(SecurityError, match="wrong passphrase"):
        Credential.load(pki.hospital.p12, b"not the passphrase")


def test_directory_must_be_empty_and_key_size_sane(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        create_dev_pki(tmp_path, passphrase=PASSPHRASE, key_size=2048)
    with pytest.raises(ConfigError, match="2048"):
        create_dev_pki(tmp_path / "new", passphrase=PASSPHRASE, key_size=1024)


OPENSSL = shutil.which("openssl")


@pytest.mark.tools
@pytest.mark.skipif(OPENSSL is None, reason="openssl not installed")
def test_openssl_reads_pkcs12_as_pbes2_aes256(pki: DevPki) -> None:
    result = subprocess.run(
        [
            OPENSSL or "openssl",
            "pkcs12",
            "-info",
            "-noout",
            "-in",
            str(pki.hospital.p12),
            "-passin",
            "env:PKCS12_TEST_PASSPHRASE",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "PKCS12_TEST_PASSPHRASE": PASSPHRASE.decode()},
    )
    assert result.returncode == 0, result.stderr
    report = result.stdout + result.stderr
    assert "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC" in report
    assert "PRF hmacWithSHA256" in report
    assert "PRIVATE KEY" not in report  # -noout: nothing dumped
