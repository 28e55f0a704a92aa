"""Private keys at rest (PKCS#12, PBES2 AES-256) and in memory (`Credential`).

A key is read from its PKCS#12 file once per process and kept in memory as a
`cryptography` key object; it is never written unencrypted and never shown by `repr`.

Passphrases come from a file (`--passphrase-file`) or from the environment variable
`PREFETCH_PKI_PASSPHRASE`, never from the command line (argv is visible to every user of the
machine through `ps`). `read_passphrase` implements that rule.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from prefetch.errors import ConfigError, SecurityError
from prefetch.security.filemodes import require_private
from prefetch.security.uzi import UziIdentity, uzi_identity

PASSPHRASE_ENV = "PREFETCH_PKI_PASSPHRASE"  # noqa: S105 (a variable name)
MIN_PASSPHRASE_BYTES = 12
PKCS12_KDF_ROUNDS = 100_000


def read_passphrase(
    passphrase_file: Path | None = None, *, env: dict[str, str] | None = None
) -> bytes:
    """The PKI passphrase: first line of `passphrase_file`, else `$PREFETCH_PKI_PASSPHRASE`.

    Raises ConfigError when neither is set, the passphrase is shorter than 12 bytes, or
    the file is accessible by group or others.
    """
    environ = os.environ if env is None else env
    if passphrase_file is not None:
        require_private(passphrase_file, "passphrase file")
        try:
            raw = passphrase_file.read_bytes()
        except OSError as exc:
            raise ConfigError(
                "cannot read passphrase file", path=str(passphrase_file), error=type(exc).__name__
            ) from None
        value = raw.splitlines()[0] if raw.strip() else b""
    elif environ.get(PASSPHRASE_ENV):
        value = environ[PASSPHRASE_ENV].encode("utf-8")
    else:
        raise ConfigError("no PKI passphrase", fix=f"set {PASSPHRASE_ENV} or use a passphrase file")
    value = value.strip()
    if len(value) < MIN_PASSPHRASE_BYTES:
        raise ConfigError("PKI passphrase too short", minimum=MIN_PASSPHRASE_BYTES)
    return value


def pkcs12_bytes(
    name: str,
    key: rsa.RSAPrivateKey,
    cert: x509.Certificate,
    chain: list[x509.Certificate],
    passphrase: bytes,
) -> bytes:
    """Serialise key + certificate + chain as PKCS#12 with PBES2 / AES-256-CBC / SHA-256."""
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(PKCS12_KDF_ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(passphrase)
    )
    return pkcs12.serialize_key_and_certificates(
        name.encode(), key, cert, chain or None, encryption
    )


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to a new file created with mode 0600 (never world-readable, even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class _KeyBox:
    """Holds the private key so that no repr / str / log ever shows it."""

    key: rsa.RSAPrivateKey = field(repr=False)

    def __repr__(self) -> str:
        return "<private key hidden>"


@dataclass(frozen=True)
class Credential:
    """A certificate with its private key (and issuing chain), loaded once.

    `repr(credential)` shows the certificate serial only.
    """

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    _key: _KeyBox = field(repr=False)

    @classmethod
    def load(cls, p12_path: Path, passphrase: bytes) -> Credential:
        """Load a PKCS#12 file; raises SecurityError on a wrong passphrase or a bad file,
        ConfigError when group or others may read it."""
        require_private(p12_path, "PKCS#12 key store")
        try:
            data = p12_path.read_bytes()
        except OSError as exc:
            raise SecurityError(
                "cannot read PKCS#12 file", path=str(p12_path), error=type(exc).__name__
            ) from None
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, passphrase)
        except ValueError:
            raise SecurityError(
                "cannot open PKCS#12 file (wrong passphrase or damaged)", path=str(p12_path)
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey) or cert is None:
            raise SecurityError(
                "PKCS#12 file must hold an RSA key and its certificate", path=str(p12_path)
            )
        return cls.from_key(key, cert, tuple(extra))

    @classmethod
    def from_key(
        cls,
        key: rsa.RSAPrivateKey,
        certificate: x509.Certificate,
        chain: tuple[x509.Certificate, ...] = (),
    ) -> Credential:
        if key.public_key().public_numbers() != certificate.public_key().public_numbers():  # type: ignore[union-attr]
            raise SecurityError(
                "private key does not belong to the certificate", serial=certificate.serial_number
            )
        return cls(certificate=certificate, chain=chain, _key=_KeyBox(key))

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        """The key object, for signing inside `prefetch.security` only."""
        return self._key.key

    @cached_property
    def identity(self) -> UziIdentity:
        """UZI identity of the certificate (raises CertificateRejected if not a UZI cert)."""
        return uzi_identity(self.certificate)

    @cached_property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @cached_property
    def chain_pem(self) -> bytes:
        """Certificate followed by its chain, PEM (what a TLS peer is sent)."""
        parts = [self.certificate_pem]
        parts += [c.public_bytes(serialization.Encoding.PEM) for c in self.chain]
        return b"".join(parts)

    def encrypted_key_pem(self, password: bytes) -> bytes:
        """The key as an encrypted PKCS#8 PEM (for APIs that insist on a key file)."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password),
        )

    def __repr__(self) -> str:
        return f"Credential(serial={self.certificate.serial_number}, key=<hidden>)"
