"""Shared fixtures: one 2048-bit dev PKI per test session, credentials, query values."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sec_helpers import BSN_A, PASSPHRASE, ParamsFactory

from prefetch.domain.bsn import Bsn
from prefetch.domain.coded import Identifier
from prefetch.domain.people import Clinician, Mandate
from prefetch.hl7v3.params import QueryParams
from prefetch.security.keys import Credential
from prefetch.security.pki import DevPki, create_dev_pki
from prefetch.security.tokens import build_mandate_token
from prefetch.security.trust import TrustStore


@pytest.fixture(scope="session")
def pki_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory, pki_now: dt.datetime) -> DevPki:
    directory: Path = tmp_path_factory.mktemp("security") / "pki"
    return create_dev_pki(directory, passphrase=PASSPHRASE, key_size=2048, now=pki_now)


@pytest.fixture(scope="session")
def creds(pki: DevPki) -> dict[str, Credential]:
    return {label: ident.load(PASSPHRASE) for label, ident in pki.identities.items()}


@pytest.fixture(scope="session")
def trust(pki: DevPki) -> TrustStore:
    return pki.trust_store()


@pytest.fixture(scope="session")
def specialist(pki: DevPki) -> Clinician:
    ident = pki.specialist
    assert ident.uzi_number and ident.role
    return Clinician(ident.uzi_number, ident.role, ident.display_name, pki.hospital_ura)


@pytest.fixture(scope="session")
def assistant(pki: DevPki) -> Clinician:
    ident = pki.assistant
    assert ident.uzi_number and ident.role
    return Clinician(ident.uzi_number, ident.role, ident.display_name, pki.hospital_ura)


@pytest.fixture(scope="session")
def make_params(pki: DevPki, specialist: Clinician) -> ParamsFactory:
    counter = iter(range(1, 1_000_000))

    def factory(*, now: dt.datetime, bsn: str = BSN_A, **overrides: object) -> QueryParams:
        n = next(counter)
        root = f"2.16.528.1.1007.3.3.{pki.hospital_ura}"
        values: dict[str, object] = {
            "bsn": Bsn.parse(bsn),
            "message_id": Identifier(f"{root}.1", f"msg-{n}"),
            "query_id": Identifier(f"{root}.2", f"qry-{n}"),
            "created_at": now,
            "overseer": specialist,
            "hospital_ura": pki.hospital_ura,
            "hospital_name": pki.hospital_name,
            "sender_application_id": "4242",
            "author_system_uzi": pki.hospital.uzi_number,
        }
        values.update(overrides)
        return QueryParams(**values)  # type: ignore[arg-type]

    return factory


@pytest.fixture(scope="session")
def mandate(
    pki: DevPki, specialist: Clinician, creds: dict[str, Credential], pki_now: dt.datetime
) -> Mandate:
    base = Mandate(
        id="mandate-1",
        mandating=specialist,
        mandated_id=pki.hospital.uzi_number or "",
        schedules=frozenset({"cardiologie"}),
        valid_from=pki_now - dt.timedelta(days=1),
        valid_until=pki_now + dt.timedelta(days=90),
    )
    token = build_mandate_token(base, creds["specialist"], now=pki_now)
    return Mandate(
        id=base.id,
        mandating=base.mandating,
        mandated_id=base.mandated_id,
        schedules=base.schedules,
        valid_from=base.valid_from,
        valid_until=base.valid_until,
        token_xml=token,
    )


@pytest.fixture(scope="session")
def key2048() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)
