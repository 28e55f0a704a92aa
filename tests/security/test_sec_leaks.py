"""No key material, passphrase or BSN in logs; no key file left unencrypted."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from sec_helpers import BSN_A, PASSPHRASE, ParamsFactory, unencrypted_key_files
from structlog.testing import capture_logs

from prefetch.domain.people import Mandate
from prefetch.security.errors import TokenRejected
from prefetch.security.keys import Credential
from prefetch.security.pki import create_dev_pki
from prefetch.security.tls import client_ssl_context, server_ssl_context
from prefetch.security.trust import TrustStore
from prefetch.security.wssec import EnvelopeVerifier, secure_query


def test_full_cycle_at_debug_level_leaks_nothing(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    make_params: ParamsFactory,
    creds: dict[str, Credential],
    trust: TrustStore,
    mandate: Mandate,
) -> None:
    caplog.set_level(logging.DEBUG)
    now = dt.datetime.now(dt.UTC)
    with capture_logs() as events:
        pki = create_dev_pki(tmp_path / "pki", passphrase=PASSPHRASE, key_size=2048)
        cred = pki.hospital.load(PASSPHRASE)
        client_ssl_context(cred, pki.ca_bundle)
        server_ssl_context(pki.simulator.load(PASSPHRASE), pki.ca_bundle, crl_file=pki.crl_bundle)
        params = make_params(now=now)
        envelope = secure_query(params, creds["hospital"], mandate_token=mandate.token_xml, now=now)
        verifier = EnvelopeVerifier(trust)
        verifier.verify(envelope, client_identity=None, now=now)
        with pytest.raises(TokenRejected):
            verifier.verify(
                envelope.replace(BSN_A.encode(), b"123456782"), client_identity=None, now=now
            )
    logged = caplog.text + " ".join(str(e) for e in events)
    assert BSN_A not in logged
    assert "PRIVATE KEY" not in logged
    assert PASSPHRASE.decode() not in logged
    assert unencrypted_key_files(tmp_path) == []
    assert "key=<hidden>" in repr(cred)


def test_signxml_debug_output_would_carry_the_bsn(
    caplog: pytest.LogCaptureFixture, make_params: ParamsFactory, creds: dict[str, Credential]
) -> None:
    """Why the signxml logger is kept quiet: at DEBUG it prints the signed assertion."""
    logger = logging.getLogger("signxml")
    caplog.set_level(logging.DEBUG)
    logger.setLevel(logging.DEBUG)
    try:
        secure_query(
            make_params(now=dt.datetime.now(dt.UTC)),
            creds["hospital"],
            mandate_token=None,
            now=dt.datetime.now(dt.UTC),
        )
    finally:
        logger.setLevel(logging.WARNING)
    assert BSN_A in caplog.text
