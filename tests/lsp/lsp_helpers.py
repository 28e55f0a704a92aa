"""A 2048-bit dev PKI and the values a query needs, once per test session."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest

from prefetch.domain.bsn import Bsn
from prefetch.domain.coded import Identifier
from prefetch.domain.people import Clinician
from prefetch.hl7v3.params import QueryParams
from prefetch.security.keys import Credential
from prefetch.security.pki import DevPki, create_dev_pki

PASSPHRASE = b"lsp-client-tests"


@pytest.fixture(scope="session")
def client_pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    directory: Path = tmp_path_factory.mktemp("lsp") / "pki"
    return create_dev_pki(directory, passphrase=PASSPHRASE, key_size=2048)


@pytest.fixture(scope="session")
def hospital_credential(client_pki: DevPki) -> Credential:
    return client_pki.hospital.load(PASSPHRASE)


def make_params(pki: DevPki, bsn: str = "123456782") -> QueryParams:
    spec = pki.specialist
    ura = int(pki.hospital_ura)
    return QueryParams(
        bsn=Bsn(bsn),
        message_id=Identifier(f"2.16.528.1.1007.3.3.{ura}.1", uuid.uuid4().hex),
        query_id=Identifier(f"2.16.528.1.1007.3.3.{ura}.2", uuid.uuid4().hex),
        created_at=dt.datetime.now(dt.UTC),
        overseer=Clinician(
            spec.uzi_number or "", spec.role or "", spec.display_name, pki.hospital_ura
        ),
        hospital_ura=pki.hospital_ura,
        hospital_name=pki.hospital_name,
        sender_application_id="10008890",
        author_system_uzi=pki.hospital.uzi_number,
        look_back_from=dt.date(2025, 11, 24),
    )
