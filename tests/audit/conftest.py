"""One small dev PKI per session: the hospital server certificate signs checkpoints."""

from __future__ import annotations

import datetime as dt

import pytest
from audit_helpers import PASSPHRASE

from prefetch.security.keys import Credential
from prefetch.security.pki import DevPki, create_dev_pki


@pytest.fixture(scope="session")
def audit_pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return create_dev_pki(
        tmp_path_factory.mktemp("audit") / "pki", passphrase=PASSPHRASE, key_size=2048, now=now
    )


@pytest.fixture(scope="session")
def hospital(audit_pki: DevPki) -> Credential:
    return audit_pki.hospital.load(PASSPHRASE)
