"""The TLS rows of the attack table through a real handshake with the simulator.

`test_sec_attacks.py` calls `check_client_certificate` directly; here the same refusals go
through `SimulatorServer` in secure mode (`secure_from_dev_pki`): the client gets no answer
and the simulator counts a TLS failure in `/_sim/stats`. A secured query whose HL7 body the
LSP would refuse is answered as a client error, not counted as a signature failure.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from lxml import etree
from sec_helpers import BSN_B, PASSPHRASE, self_signed

from prefetch.hl7v3.soap import unwrap
from prefetch.hl7v3.xmlparse import parse_xml
from prefetch.lspsim.driver import SOAP_HEADERS, SignedQueries
from prefetch.lspsim.profiles import BUILTIN
from prefetch.lspsim.secure import secure_from_dev_pki
from prefetch.lspsim.server import SimulatorServer
from prefetch.lspsim.world import World
from prefetch.security.keys import Credential
from prefetch.security.pki import DevPki
from prefetch.security.tls import mtls_session

HL7 = "urn:hl7-org:v3"


@pytest.fixture(scope="module")
def sim_world() -> World:
    return World.generate(4711, 8, reference_date=dt.date(2026, 11, 20))


@pytest.fixture
def sim(sim_world: World, pki: DevPki) -> Iterator[SimulatorServer]:
    tls, verifier = secure_from_dev_pki(pki, PASSPHRASE)
    with SimulatorServer(sim_world, BUILTIN["ideal"], tls=tls, verifier=verifier) as server:
        yield server


def _stats(sim: SimulatorServer, pki: DevPki, creds: dict[str, Credential]) -> dict[str, object]:
    """`GET /_sim/stats` over mutual TLS as the hospital."""
    with mtls_session(creds["hospital"], pki.ca_bundle) as http:
        response = http.get(sim.stats_url, timeout=5)
    assert response.status_code == 200
    data: dict[str, object] = response.json()
    return data


def _tls_failures(sim: SimulatorServer, pki: DevPki, creds: dict[str, Credential]) -> int:
    value = _stats(sim, pki, creds)["tls_failures"]
    assert isinstance(value, int)
    return value


def _no_client_certificate(pki: DevPki, creds: dict[str, Credential]) -> requests.Session:
    session = requests.Session()
    session.verify = str(pki.ca_bundle)
    return session


def _presenting(label: str) -> Callable[[DevPki, dict[str, Credential]], requests.Session]:
    def make(pki: DevPki, creds: dict[str, Credential]) -> requests.Session:
        return mtls_session(creds[label], pki.ca_bundle)

    return make


def _self_signed(pki: DevPki, creds: dict[str, Credential]) -> requests.Session:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = self_signed(key, dt.datetime.now(dt.UTC))
    return mtls_session(Credential.from_key(key, cert), pki.ca_bundle)


@pytest.mark.parametrize(
    "client",
    [
        _no_client_certificate,
        _presenting("expired"),
        _presenting("revoked"),
        _presenting("foreign"),
        _self_signed,
    ],
    ids=["no-certificate", "expired", "revoked", "foreign-ca", "self-signed"],
)
def test_refused_client_gets_no_answer_and_is_counted(
    sim: SimulatorServer,
    pki: DevPki,
    creds: dict[str, Credential],
    client: Callable[[DevPki, dict[str, Credential]], requests.Session],
) -> None:
    before = _tls_failures(sim, pki, creds)
    queries = SignedQueries(pki, PASSPHRASE)
    body = queries.envelope(queries.params(sim.world.patients[0].bsn))
    with client(pki, creds) as http, pytest.raises(requests.ConnectionError):
        http.post(sim.url, data=body, headers=SOAP_HEADERS, timeout=10)
    deadline = time.monotonic() + 5  # the server may count after the client gave up
    while _tls_failures(sim, pki, creds) < before + 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _tls_failures(sim, pki, creds) == before + 1
    stats = _stats(sim, pki, creds)
    assert stats["queries_received"] == 0 and stats["signature_failures"] == 0


def test_the_hospital_is_answered(
    sim: SimulatorServer, pki: DevPki, creds: dict[str, Credential]
) -> None:
    queries = SignedQueries(pki, PASSPHRASE)
    body = queries.envelope(queries.params(sim.world.patients[0].bsn))
    with queries.session() as http:
        response = http.post(sim.url, data=body, headers=SOAP_HEADERS, timeout=10)
    assert response.status_code == 200
    stats = _stats(sim, pki, creds)
    assert stats["tls_failures"] == 0 and stats["signature_failures"] == 0


def _second_patient_id(envelope: bytes) -> bytes:
    root = parse_xml(envelope)
    first = next(root.iter(f"{{{HL7}}}patientID"))
    second = etree.fromstring(etree.tostring(first))
    second[0].set("extension", BSN_B)
    first.addnext(second)
    return etree.tostring(root)


def test_unreadable_body_is_a_bad_request_not_a_signature_failure(
    sim: SimulatorServer, pki: DevPki, creds: dict[str, Credential]
) -> None:
    queries = SignedQueries(pki, PASSPHRASE)
    patient = next(p for p in sim.world.patients if p.bsn.value != BSN_B)
    body = _second_patient_id(queries.envelope(queries.params(patient.bsn)))
    with queries.session() as http:
        response = http.post(sim.url, data=body, headers=SOAP_HEADERS, timeout=10)
    assert response.status_code == 500
    fault = unwrap(parse_xml(response.content))
    assert getattr(fault, "code", "").endswith("Client")
    assert str(getattr(fault, "reason", "")).startswith("bad_request")
    stats = _stats(sim, pki, creds)
    assert stats["signature_failures"] == 0
    assert stats["signature_failure_reasons"] == {}
