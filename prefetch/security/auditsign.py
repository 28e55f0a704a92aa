"""Signatures over audit checkpoints with the hospital's system certificate.

A checkpoint states the audit chain's head (or a purge anchor); it is signed with the
same UZI server certificate that signs the transactietokens (RSA PKCS#1 v1.5, SHA-256),
so that a rewrite of the whole chain by someone with database rights but without the
hospital's key is found. The verifier checks the signature against the certificate
stored with the checkpoint and, when a trust store is given, that certificate against the
UZI trust (token-signing purpose).
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from prefetch.errors import PrefetchError
from prefetch.security.keys import Credential
from prefetch.security.trust import Purpose, TrustStore


@dataclass(frozen=True, slots=True)
class Signed:
    signer: str  # subject of the certificate, for people reading the table
    certificate_pem: str
    signature: str  # base64


def sign_checkpoint(credential: Credential, payload: bytes) -> Signed:
    signature = credential.private_key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
    return Signed(
        signer=credential.certificate.subject.rfc4514_string(),
        certificate_pem=credential.certificate_pem.decode("ascii"),
        signature=base64.b64encode(signature).decode("ascii"),
    )


def checkpoint_signature_problem(
    payload: bytes,
    signed: Signed,
    *,
    trust: TrustStore | None,
    now: dt.datetime,
) -> str | None:
    """None when `signed` is a valid signature over `payload` (by a signer the UZI trust
    accepted at `now`, the checkpoint's time, when `trust` is given); otherwise why not."""
    try:
        certificate = x509.load_pem_x509_certificate(signed.certificate_pem.encode("ascii"))
        signature = base64.b64decode(signed.signature, validate=True)
    except ValueError:
        return "signature or certificate unreadable"
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return "signer key is not RSA"
    try:
        key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return "signature does not verify"
    if trust is not None:
        try:
            trust.validate(certificate, now, Purpose.TOKEN_SIGNING)
        except PrefetchError as exc:
            return f"signer certificate not trusted: {exc}"
    return None
