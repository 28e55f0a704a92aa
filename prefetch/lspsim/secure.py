"""Secure mode wiring: mutual TLS and token verification from a (dev) PKI.

The simulator presents the PKI's `simulator` certificate, requires a client certificate
chaining to the PKI's CA bundle (CRLs checked in the handshake), checks the client's UZI
identity against the trust store, and verifies the WS-Security tokens of every query
with `prefetch.security.verify.EnvelopeVerifier`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from prefetch.lspsim.server import TlsConfig
from prefetch.security.pki import DevPki, create_dev_pki
from prefetch.security.tls import server_ssl_context
from prefetch.security.verify import EnvelopeVerifier

PKI_SUBDIR = "pki"


def secure_from_dev_pki(
    pki: DevPki,
    passphrase: bytes,
    *,
    now: Callable[[], dt.datetime] | None = None,
    skew: dt.timedelta = dt.timedelta(seconds=30),
) -> tuple[TlsConfig, EnvelopeVerifier]:
    """The TLS configuration and token verifier for a simulator serving `pki`'s clients."""
    credential = pki.simulator.load(passphrase)
    context = server_ssl_context(credential, pki.ca_bundle, crl_file=pki.crl_bundle)
    trust = pki.trust_store()
    if now is None:
        verifier = EnvelopeVerifier(trust, skew=skew)
    else:
        verifier = EnvelopeVerifier(trust, skew=skew, clock=now)
    return TlsConfig(context=context, trust=trust), verifier


def load_or_create_dev_pki(directory: Path, passphrase: bytes, *, key_size: int = 4096) -> DevPki:
    """The dev PKI in `directory`, generated first when the directory is new or empty."""
    if (directory / "manifest.json").is_file():
        return DevPki.load(directory)
    return create_dev_pki(directory, passphrase=passphrase, key_size=key_size)
