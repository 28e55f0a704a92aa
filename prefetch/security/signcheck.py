"""Signature and signer checks for one SAML assertion (`TokenChecker`).

Claims are read only from what signxml returns as signed (`VerifyResult.signed_xml`), never
from the tree that was received. The signer certificate comes from the signature's KeyInfo
(`X509Certificate`, or `X509IssuerSerial` looked up in the `TrustStore`) and is validated by
the `TrustStore` before the signature is checked. A mandaattoken (the same bytes on every
query under a mandate) is verified once and then cached by the SHA-256 of its serialisation;
time and revocation checks are repeated on every call.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import threading

from cryptography import x509
from lxml import etree
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.exceptions import InvalidCertificate, InvalidDigest, InvalidSignature
from signxml.verifier import SignatureConfiguration, XMLVerifier

from prefetch.errors import XmlSecurityError
from prefetch.hl7v3.xmlparse import make_parser, parse_xml
from prefetch.security.errors import CertificateRejected, CertReason, RejectReason, TokenRejected
from prefetch.security.saml import (
    DEFAULT_PROFILE,
    DS,
    SAML,
    WSSE,
    TokenInfo,
    TokenProfile,
    q,
    read_token,
)
from prefetch.security.trust import Purpose, TrustStore
from prefetch.security.uzi import UziIdentity, uzi_identity

_SIGNATURE_METHODS = frozenset({SignatureMethod.RSA_SHA256})
_DIGESTS = frozenset({DigestAlgorithm.SHA256})
_CERT_REASONS = {
    CertReason.UNTRUSTED: RejectReason.UNTRUSTED_SIGNER,
    CertReason.SELF_SIGNED: RejectReason.UNTRUSTED_SIGNER,
    CertReason.REVOKED: RejectReason.REVOKED_SIGNER,
}
_CACHE_LIMIT = 1024


def _fail(reason: RejectReason, **context: object) -> TokenRejected:
    return TokenRejected(reason, **context)


class TokenChecker:
    """Verifies single assertions against a `TrustStore`. Thread-safe."""

    def __init__(self, trust: TrustStore, *, profile: TokenProfile = DEFAULT_PROFILE) -> None:
        self._trust = trust
        self._profile = profile
        self._lock = threading.Lock()
        self._cache: dict[bytes, tuple[TokenInfo, x509.Certificate]] = {}
        self._certs: dict[str, x509.Certificate] = {}
        self._identities: dict[x509.Certificate, UziIdentity] = {}

    def check_mandate_token(self, token_xml: bytes, *, now: dt.datetime) -> TokenInfo:
        """Signature and signer (non-repudiation key) of a stored mandaattoken."""
        try:
            root = parse_xml(token_xml, max_bytes=256 * 1024)
        except XmlSecurityError:
            raise _fail(RejectReason.MALFORMED, detail="mandate token not parseable") from None
        if root.tag != q(SAML, "Assertion"):
            raise _fail(RejectReason.MALFORMED, detail="mandate token is not an assertion")
        sigs = [c for c in root if c.tag == q(DS, "Signature")]
        if len(sigs) != 1 or sum(1 for _ in root.iter(q(DS, "Signature"))) != 1:
            raise _fail(RejectReason.WRAPPED_SIGNATURE, detail="mandate token signature count")
        return self.verified(root, Purpose.NON_REPUDIATION, now, cache=True)

    def _signer_certificate(self, assertion: etree._Element) -> x509.Certificate:
        sig = assertion.find(q(DS, "Signature"))
        key_info = sig.find(q(DS, "KeyInfo")) if sig is not None else None
        if key_info is None:
            raise _fail(RejectReason.MALFORMED, detail="signature without KeyInfo")
        cert_text = key_info.findtext(f"{q(DS, 'X509Data')}/{q(DS, 'X509Certificate')}")
        serial_el = key_info.find(
            f"{q(WSSE, 'SecurityTokenReference')}/{q(DS, 'X509Data')}/{q(DS, 'X509IssuerSerial')}"
        )
        named: tuple[str, int] | None = None
        if serial_el is not None:
            try:
                named = (
                    serial_el.findtext(q(DS, "X509IssuerName")) or "",
                    int(serial_el.findtext(q(DS, "X509SerialNumber")) or ""),
                )
            except ValueError:
                raise _fail(RejectReason.MALFORMED, detail="bad X509SerialNumber") from None
        if cert_text:
            cert = self._parse_certificate(cert_text)
            if named is not None and named != (cert.issuer.rfc4514_string(), cert.serial_number):
                raise _fail(RejectReason.MALFORMED, detail="KeyInfo names two certificates")
            return cert
        if named is not None:
            found = self._trust.find(*named)
            if found is None:
                raise _fail(RejectReason.UNTRUSTED_SIGNER, detail="unknown signer certificate")
            return found
        raise _fail(RejectReason.MALFORMED, detail="KeyInfo names no certificate")

    def _parse_certificate(self, text: str) -> x509.Certificate:
        """Parse (and remember) a base64 DER certificate from KeyInfo."""
        key = text.strip()
        cert = self._certs.get(key)
        if cert is None:
            try:
                cert = x509.load_der_x509_certificate(base64.b64decode(key))
            except ValueError:
                raise _fail(RejectReason.MALFORMED, detail="bad X509Certificate") from None
            with self._lock:
                if len(self._certs) >= _CACHE_LIMIT:
                    self._certs.clear()
                self._certs[key] = cert
        return cert

    def verified(
        self, assertion: etree._Element, purpose: Purpose, now: dt.datetime, *, cache: bool
    ) -> TokenInfo:
        serialized = etree.tostring(assertion)
        key = hashlib.sha256(serialized).digest() if cache else b""
        cached = self._cache.get(key) if cache else None
        if cached is not None:
            info, cert = cached
            self._check_signer(cert, purpose, now)
            return info
        cert = self._signer_certificate(assertion)
        self._check_signer(cert, purpose, now)
        try:
            result = XMLVerifier().verify(
                serialized,
                x509_cert=cert,
                parser=make_parser(),
                id_attribute="ID",
                expect_config=SignatureConfiguration(
                    location="./",
                    expect_references=1,
                    signature_methods=_SIGNATURE_METHODS,
                    digest_algorithms=_DIGESTS,
                    verification_time=now,
                ),
            )
        except InvalidDigest:
            raise _fail(RejectReason.DIGEST_MISMATCH) from None
        except InvalidCertificate:
            raise _fail(RejectReason.SIGNER_CERT_INVALID) from None
        except InvalidSignature:
            raise _fail(RejectReason.BAD_SIGNATURE) from None
        except Exception:  # signxml raises InvalidInput and lxml errors for odd shapes
            raise _fail(RejectReason.MALFORMED, detail="signature not processable") from None
        signed = result.signed_xml  # type: ignore[union-attr]
        if signed is None or signed.get("ID") != assertion.get("ID"):
            raise _fail(RejectReason.WRAPPED_SIGNATURE, detail="signed node is not the token")
        ident = self._identity(cert)
        try:
            info = read_token(signed, signer=ident)
        except (ValueError, TypeError):
            raise _fail(RejectReason.MALFORMED, detail="assertion content") from None
        if cache:
            with self._lock:
                if len(self._cache) >= _CACHE_LIMIT:
                    self._cache.clear()
                self._cache[key] = (info, cert)
        return info

    def _check_signer(self, cert: x509.Certificate, purpose: Purpose, now: dt.datetime) -> None:
        try:
            self._trust.validate(cert, now=now, purpose=purpose)
        except CertificateRejected as exc:
            reason = _CERT_REASONS.get(exc.reason, RejectReason.SIGNER_CERT_INVALID)
            raise _fail(reason, certificate=exc.reason.value) from None

    def _identity(self, cert: x509.Certificate) -> UziIdentity:
        ident = self._identities.get(cert)
        if ident is None:
            try:
                ident = uzi_identity(cert)
            except CertificateRejected:
                raise _fail(RejectReason.SIGNER_CERT_INVALID, certificate="not_uzi") from None
            with self._lock:
                if len(self._identities) >= _CACHE_LIMIT:
                    self._identities.clear()
                self._identities[cert] = ident
        return ident
