"""The client's send path over real mutual TLS against the simulator in secure mode:
answers come back on one kept-alive connection, every template-made envelope verifies,
and a server certificate that does not verify stops (SecurityError)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lsp_helpers import PASSPHRASE, make_params

from prefetch.domain.outcome import OutcomeKind
from prefetch.errors import OverloadError, SecurityError
from prefetch.lsp.client import LspClient, LspEndpoint
from prefetch.lspsim.profiles import BUILTIN
from prefetch.lspsim.secure import secure_from_dev_pki
from prefetch.lspsim.server import SimulatorServer
from prefetch.lspsim.world import World
from prefetch.security.keys import Credential
from prefetch.security.mandates import register_mandate
from prefetch.security.pki import DevPki
from prefetch.security.tls import mtls_session


@pytest.fixture(scope="module")
def world() -> World:
    return World.generate(4712, 6, reference_date=dt.date(2026, 11, 20))


@pytest.fixture
def sim(world: World, client_pki: DevPki) -> Iterator[SimulatorServer]:
    tls, verifier = secure_from_dev_pki(client_pki, PASSPHRASE)
    with SimulatorServer(world, BUILTIN["ideal"], tls=tls, verifier=verifier) as server:
        yield server


def _mandate_token(pki: DevPki) -> bytes:
    now = dt.datetime.now(dt.UTC)
    mandate = register_mandate(
        pki.specialist.load(PASSPHRASE),
        name=pki.specialist.display_name,
        mandated_id=pki.hospital.uzi_number or "",
        schedules=["s"],
        valid_from=now - dt.timedelta(hours=1),
        valid_until=now + dt.timedelta(days=1),
        now=now,
    )
    assert mandate.token_xml is not None
    return mandate.token_xml


def test_queries_answered_on_one_connection(
    sim: SimulatorServer, client_pki: DevPki, hospital_credential: Credential, world: World
) -> None:
    token = _mandate_token(client_pki)
    session = mtls_session(hospital_credential, client_pki.ca_bundle)
    client = LspClient(
        endpoint=LspEndpoint(sim.url), session=session, credential=hospital_credential
    )
    kinds = []
    for patient in world.patients:
        reply = client.query(make_params(client_pki, patient.bsn.value), mandate_token=token)
        kinds.append(reply.outcome.kind)
    assert OutcomeKind.TRANSIENT not in kinds
    assert OutcomeKind.FAILED not in kinds
    stats = sim.stats()
    assert stats["queries_received"] == len(world.patients)
    assert stats["signature_failures"] == 0
    assert stats["connections"] == 1  # keep-alive: one handshake for the whole run


def _foreign_ca(directory: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Foreign CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = directory / "foreign-ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_server_certificate_that_does_not_verify_stops(
    sim: SimulatorServer, client_pki: DevPki, hospital_credential: Credential, tmp_path: Path
) -> None:
    session = mtls_session(hospital_credential, _foreign_ca(tmp_path))
    client = LspClient(
        endpoint=LspEndpoint(sim.url, connect_timeout=5, read_timeout=5),
        session=session,
        credential=hospital_credential,
    )
    with pytest.raises(SecurityError, match="does not verify"):
        client.query(make_params(client_pki), mandate_token=_mandate_token(client_pki))
    assert sim.stats()["queries_received"] == 0


def _client(
    sim: SimulatorServer, pki: DevPki, credential: Credential, **timeouts: float
) -> LspClient:
    session = mtls_session(credential, pki.ca_bundle)
    endpoint = LspEndpoint(sim.url, **timeouts)
    return LspClient(endpoint=endpoint, session=session, credential=credential)


def test_the_send_time_is_taken_after_the_handshake(
    sim: SimulatorServer, client_pki: DevPki, hospital_credential: Credential, world: World
) -> None:
    """`on_wire` runs when the TLS connection is up and before the query leaves, so a
    slow handshake cannot push a query past its send slot; the answer's latency and its
    deadline count from there (the wait is longer than the whole answer's deadline)."""
    client = _client(sim, client_pki, hospital_credential, connect_timeout=0.15, read_timeout=0.15)
    params = make_params(client_pki, world.patients[0].bsn.value)
    data = client.envelope(params, mandate_token=_mandate_token(client_pki))
    at_gate: list[tuple[int, int]] = []

    def gate() -> None:
        stats = sim.stats()
        at_gate.append((stats["connections"], stats["queries_received"]))
        time.sleep(0.4)

    reply = client.send(params, data, on_wire=gate)
    assert at_gate == [(1, 0)]  # connected, nothing sent yet
    assert reply.outcome.kind is not OutcomeKind.TRANSIENT
    assert sim.stats()["queries_received"] == 1
    assert reply.elapsed_seconds < 0.4  # the wait at the gate is not the LSP's latency


def test_a_refused_gate_sends_nothing(
    sim: SimulatorServer, client_pki: DevPki, hospital_credential: Credential, world: World
) -> None:
    client = _client(sim, client_pki, hospital_credential)
    params = make_params(client_pki, world.patients[0].bsn.value)
    data = client.envelope(params, mandate_token=_mandate_token(client_pki))

    def no_slot() -> None:
        raise OverloadError("no send slot within the time-out", retry_after=1.0)

    with pytest.raises(OverloadError):
        client.send(params, data, on_wire=no_slot)
    assert sim.stats()["queries_received"] == 0
    # the next query goes (the gate is per send) and is answered
    assert client.send(params, data).outcome.kind is not OutcomeKind.TRANSIENT
    assert sim.stats()["queries_received"] == 1
