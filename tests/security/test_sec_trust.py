"""Certificate path validation: chain, validity, key usage, revocation (fail closed)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from sec_helpers import self_signed

from prefetch.security.errors import CertificateRejected, CertReason
from prefetch.security.keys import Credential
from prefetch.security.pki import DevPki
from prefetch.security.trust import Purpose, TrustStore


def _reason(
    trust: TrustStore,
    cert: x509.Certificate | list[x509.Certificate],
    now: dt.datetime,
    purpose: Purpose = Purpose.TLS_CLIENT,
) -> CertReason | None:
    try:
        trust.validate(cert, now=now, purpose=purpose)
    except CertificateRejected as exc:
        return exc.reason
    return None


def test_valid_certificates(
    trust: TrustStore, creds: dict[str, Credential], pki_now: dt.datetime
) -> None:
    assert _reason(trust, creds["hospital"].certificate, pki_now) is None
    assert _reason(trust, creds["hospital"].certificate, pki_now, Purpose.TOKEN_SIGNING) is None
    assert _reason(trust, creds["specialist"].certificate, pki_now, Purpose.NON_REPUDIATION) is None
    assert _reason(trust, creds["simulator"].certificate, pki_now, Purpose.TLS_SERVER) is None


@pytest.mark.parametrize(
    ("label", "purpose", "reason"),
    [
        ("revoked", Purpose.TLS_CLIENT, CertReason.REVOKED),
        ("expired", Purpose.TLS_CLIENT, CertReason.EXPIRED),
        ("foreign", Purpose.TLS_CLIENT, CertReason.UNTRUSTED),
        ("simulator", Purpose.TLS_CLIENT, CertReason.KEY_USAGE),  # serverAuth only
        ("hospital", Purpose.NON_REPUDIATION, CertReason.KEY_USAGE),  # no contentCommitment
        ("specialist", Purpose.TLS_SERVER, CertReason.KEY_USAGE),
    ],
)
def test_refusals(
    trust: TrustStore,
    creds: dict[str, Credential],
    pki_now: dt.datetime,
    label: str,
    purpose: Purpose,
    reason: CertReason,
) -> None:
    assert _reason(trust, creds[label].certificate, pki_now, purpose) is reason


def test_foreign_with_its_own_chain_is_still_untrusted(
    trust: TrustStore, creds: dict[str, Credential], pki_now: dt.datetime
) -> None:
    cred = creds["foreign"]
    assert _reason(trust, [cred.certificate, *cred.chain], pki_now) is CertReason.UNTRUSTED


def test_self_signed_and_anchor_as_leaf(
    trust: TrustStore, key2048: rsa.RSAPrivateKey, pki_now: dt.datetime
) -> None:
    assert _reason(trust, self_signed(key2048, pki_now), pki_now) is CertReason.SELF_SIGNED
    assert _reason(trust, trust.anchors[0], pki_now) is CertReason.UNTRUSTED


def test_time_is_checked_on_every_call_despite_cache(
    trust: TrustStore, creds: dict[str, Credential], pki_now: dt.datetime
) -> None:
    cert = creds["hospital"].certificate
    assert _reason(trust, cert, pki_now) is None
    assert _reason(trust, cert, pki_now - dt.timedelta(days=1)) is CertReason.NOT_YET_VALID
    assert _reason(trust, cert, pki_now + dt.timedelta(days=800)) is CertReason.EXPIRED


def test_crl_missing_or_stale_fails_closed(
    pki: DevPki, creds: dict[str, Credential], pki_now: dt.datetime
) -> None:
    no_crl = TrustStore.from_files([pki.root_ca], [pki.issuing_ca])
    cert = creds["hospital"].certificate
    assert _reason(no_crl, cert, pki_now) is CertReason.CRL_UNAVAILABLE
    lenient = TrustStore.from_files([pki.root_ca], [pki.issuing_ca], require_crl=False)
    assert _reason(lenient, cert, pki_now) is None
    full = pki.trust_store()
    assert _reason(full, cert, pki_now + dt.timedelta(days=366)) is CertReason.CRL_UNAVAILABLE


def test_crl_signed_by_someone_else_is_ignored(
    pki: DevPki, creds: dict[str, Credential], pki_now: dt.datetime
) -> None:
    foreign_crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(creds["hospital"].chain[0].subject)  # claims to be the issuing CA
        .last_update(pki_now)
        .next_update(pki_now + dt.timedelta(days=1))
        .sign(creds["foreign"].private_key, creds["hospital"].certificate.signature_hash_algorithm)  # type: ignore[arg-type]
    )
    store = TrustStore.from_files([pki.root_ca], [pki.issuing_ca], [pki.crls[0]])
    store.add_crl(foreign_crl)
    assert _reason(store, creds["hospital"].certificate, pki_now) is CertReason.CRL_UNAVAILABLE


def test_lookup_by_issuer_serial(trust: TrustStore, creds: dict[str, Credential]) -> None:
    cert = creds["hospital"].certificate
    store = TrustStore(trust.anchors)
    assert store.find(cert.issuer.rfc4514_string(), cert.serial_number) is None
    store.add_known(cert)
    assert store.find(cert.issuer.rfc4514_string(), cert.serial_number) is cert
    with pytest.raises(ValueError, match="anchor"):
        TrustStore([])


def test_path_length_constraint(
    pki: DevPki, creds: dict[str, Credential], key2048: rsa.RSAPrivateKey, pki_now: dt.datetime
) -> None:
    """The issuing CA has pathLen 0: a CA it issued cannot issue trusted leaves."""
    from prefetch.security import certbuild as cb
    from prefetch.security.uzi import CardType

    issuing_cert = x509.load_pem_x509_certificate(pki.issuing_ca.read_bytes())
    # We do not have the issuing CA's key (never stored); build a parallel hierarchy instead.
    root = cb.make_ca(
        "r",
        key2048,
        parent=None,
        not_before=pki_now - dt.timedelta(hours=1),
        not_after=pki_now + dt.timedelta(days=1),
        path_length=0,
    )
    sub = cb.make_ca(
        "s",
        key2048,
        parent=root,
        not_before=pki_now - dt.timedelta(hours=1),
        not_after=pki_now + dt.timedelta(days=1),
        path_length=None,
    )
    leaf = cb.make_uzi_cert(
        cb.UziSubject("x", "o", "900000111", CardType.SERVER, "12345678", "00.000"),
        key2048,
        sub,
        not_before=pki_now - dt.timedelta(hours=1),
        not_after=pki_now + dt.timedelta(days=1),
    )
    crls = [
        cb.make_crl(ca, [], now=pki_now, next_update=pki_now + dt.timedelta(days=1))
        for ca in (root, sub)
    ]
    store = TrustStore([root.cert], [sub.cert], crls)
    assert _reason(store, leaf, pki_now) is CertReason.UNTRUSTED
    direct = cb.make_uzi_cert(
        cb.UziSubject("x", "o", "900000111", CardType.SERVER, "12345678", "00.000"),
        key2048,
        root,
        not_before=pki_now - dt.timedelta(hours=1),
        not_after=pki_now + dt.timedelta(days=1),
    )
    assert _reason(store, direct, pki_now) is None
    assert (
        issuing_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
        == 0
    )
