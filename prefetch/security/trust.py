"""Trust anchors, CRLs and certificate path validation for the UZI hierarchy.

`TrustStore.validate(chain, now=..., purpose=...)` builds a path from the leaf to a configured
anchor (through the supplied chain and the store's known intermediates), checks every
signature, validity period, CA constraints, the leaf's key usage for the purpose, and each
certificate's revocation status on its issuer's CRL. It fails closed: a certificate whose
issuer has no CRL, or whose CRL is stale or badly signed, is refused (`crl_unavailable`).

Path building and signature checks are cached per leaf fingerprint and purpose; time and
revocation checks are repeated on every call (they are dictionary look-ups).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from prefetch.security.errors import CertificateRejected, CertReason

_MAX_DEPTH = 5
_CACHE_LIMIT = 4096


class Purpose(enum.Enum):
    """What a leaf certificate is being used for."""

    TLS_CLIENT = "tls_client"
    TLS_SERVER = "tls_server"
    TOKEN_SIGNING = "token_signing"  # noqa: S105      # transactietoken (authentication / server key)
    NON_REPUDIATION = "non_repudiation"  # mandaattoken (UZI pass non-repudiation key)


@dataclass(frozen=True, slots=True)
class _Path:
    certs: tuple[x509.Certificate, ...]  # leaf first, anchor last
    issuer_keys: tuple[bytes, ...]  # fingerprint of each certificate's issuer (CRL look-up)
    not_before: dt.datetime
    not_after: dt.datetime


@dataclass(frozen=True, slots=True)
class _Crl:
    next_update: dt.datetime
    revoked: frozenset[int]


def load_pem_certificates(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def _is_self_issued(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return bc.ca and ku.key_cert_sign


def _path_lengths_ok(path: list[x509.Certificate]) -> bool:
    """basicConstraints pathLenConstraint: CAs allowed below each CA in the path."""
    for index, ca in enumerate(path[1:], start=1):
        limit = ca.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
        if limit is not None and index - 1 > limit:
            return False
    return True


def _leaf_usage_ok(cert: x509.Certificate, purpose: Purpose) -> bool:
    exts = cert.extensions
    try:
        if exts.get_extension_for_class(x509.BasicConstraints).value.ca:
            return False
    except x509.ExtensionNotFound:
        pass
    try:
        ku = exts.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return False
    try:
        eku: set[x509.ObjectIdentifier] | None = set(
            exts.get_extension_for_class(x509.ExtendedKeyUsage).value
        )
    except x509.ExtensionNotFound:
        eku = None
    if purpose is Purpose.TLS_CLIENT:
        return ku.digital_signature and (eku is None or ExtendedKeyUsageOID.CLIENT_AUTH in eku)
    if purpose is Purpose.TLS_SERVER:
        return (ku.digital_signature or ku.key_encipherment) and (
            eku is None or ExtendedKeyUsageOID.SERVER_AUTH in eku
        )
    if purpose is Purpose.TOKEN_SIGNING:
        return ku.digital_signature or ku.content_commitment
    return ku.content_commitment


class TrustStore:
    """Anchors (self-signed roots), known intermediates and CRLs. Safe to share."""

    def __init__(
        self,
        anchors: Iterable[x509.Certificate],
        intermediates: Iterable[x509.Certificate] = (),
        crls: Iterable[x509.CertificateRevocationList] = (),
        *,
        require_crl: bool = True,
    ) -> None:
        self._anchors = {a.fingerprint(hashes.SHA256()): a for a in anchors}
        if not self._anchors:
            raise ValueError("a trust store needs at least one anchor")
        self._intermediates = list(intermediates)
        self._require_crl = require_crl
        self._crls: dict[bytes, _Crl] = {}  # keyed by issuer fingerprint
        self._paths: dict[tuple[bytes, Purpose], _Path | CertReason] = {}
        self._known: dict[tuple[str, int], x509.Certificate] = {}
        for crl in crls:
            self.add_crl(crl)

    @classmethod
    def from_files(
        cls,
        anchors: Sequence[Path],
        intermediates: Sequence[Path] = (),
        crls: Sequence[Path] = (),
        *,
        require_crl: bool = True,
    ) -> TrustStore:
        return cls(
            [c for p in anchors for c in load_pem_certificates(p)],
            [c for p in intermediates for c in load_pem_certificates(p)],
            [x509.load_pem_x509_crl(p.read_bytes()) for p in crls],
            require_crl=require_crl,
        )

    @property
    def anchors(self) -> tuple[x509.Certificate, ...]:
        return tuple(self._anchors.values())

    def add_crl(self, crl: x509.CertificateRevocationList) -> None:
        """Add or replace the CRL of a known CA; a badly signed CRL is ignored (fail closed)."""
        for ca in (*self._anchors.values(), *self._intermediates):
            if ca.subject == crl.issuer and crl.is_signature_valid(ca.public_key()):  # type: ignore[arg-type]
                next_update = crl.next_update_utc
                if next_update is None:
                    continue
                revoked = frozenset(r.serial_number for r in crl)
                self._crls[ca.fingerprint(hashes.SHA256())] = _Crl(next_update, revoked)
                self._paths.clear()

    def add_known(self, cert: x509.Certificate) -> None:
        """Register an end-entity certificate for look-up by issuer + serial (KeyInfo)."""
        self._known[(cert.issuer.rfc4514_string(), cert.serial_number)] = cert

    def find(self, issuer: str, serial: int) -> x509.Certificate | None:
        return self._known.get((issuer, serial))

    def validate(
        self,
        chain: x509.Certificate | Sequence[x509.Certificate],
        now: dt.datetime,
        purpose: Purpose,
    ) -> x509.Certificate:
        """Validate the leaf (first of `chain`) for `purpose` at `now`; return the leaf.

        Raises CertificateRejected with the reason (untrusted, self_signed, expired,
        not_yet_valid, revoked, crl_unavailable, key_usage).
        """
        certs = [chain] if isinstance(chain, x509.Certificate) else list(chain)
        if not certs:
            raise CertificateRejected(CertReason.MISSING)
        leaf = certs[0]
        key = (leaf.fingerprint(hashes.SHA256()), purpose)
        found = self._paths.get(key)
        if found is None:
            found = self._build(leaf, certs[1:], purpose)
            if len(self._paths) >= _CACHE_LIMIT:
                self._paths.clear()
            self._paths[key] = found
        if isinstance(found, CertReason):
            raise CertificateRejected(found, serial=leaf.serial_number)
        self._check_time_and_revocation(found, now)
        return leaf

    def _build(
        self, leaf: x509.Certificate, extra: list[x509.Certificate], purpose: Purpose
    ) -> _Path | CertReason:
        anchors = list(self._anchors.values())
        if leaf.fingerprint(hashes.SHA256()) in self._anchors:
            return CertReason.UNTRUSTED  # an anchor is never a leaf
        if _is_self_issued(leaf) and _signed_by(leaf, leaf):
            return CertReason.SELF_SIGNED
        pool = extra + self._intermediates
        path = [leaf]
        current = leaf
        while len(path) <= _MAX_DEPTH:
            anchor = next((a for a in anchors if _signed_by(current, a)), None)
            if anchor is not None:
                path.append(anchor)
                break
            parent = next((c for c in pool if c not in path and _signed_by(current, c)), None)
            if parent is None or not _is_ca(parent):
                return CertReason.UNTRUSTED
            path.append(parent)
            current = parent
        else:
            return CertReason.UNTRUSTED
        if not _is_ca(path[-1]) or not _path_lengths_ok(path):
            return CertReason.UNTRUSTED
        if not _leaf_usage_ok(leaf, purpose):
            return CertReason.KEY_USAGE
        return _Path(
            certs=tuple(path),
            issuer_keys=tuple(c.fingerprint(hashes.SHA256()) for c in path[1:]),
            not_before=max(c.not_valid_before_utc for c in path),
            not_after=min(c.not_valid_after_utc for c in path),
        )

    def _check_time_and_revocation(self, path: _Path, now: dt.datetime) -> None:
        leaf = path.certs[0]
        if now < path.not_before:
            raise CertificateRejected(CertReason.NOT_YET_VALID, serial=leaf.serial_number)
        if now > path.not_after:
            raise CertificateRejected(CertReason.EXPIRED, serial=leaf.serial_number)
        for cert, issuer_key in zip(path.certs, path.issuer_keys, strict=False):
            crl = self._crls.get(issuer_key)
            if crl is None or now > crl.next_update:
                if self._require_crl:
                    raise CertificateRejected(CertReason.CRL_UNAVAILABLE, serial=cert.serial_number)
                continue
            if cert.serial_number in crl.revoked:
                raise CertificateRejected(CertReason.REVOKED, serial=cert.serial_number)
