"""Secure mode: mutual TLS with the dev PKI and token verification on every query."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from lspsim_helpers import REFERENCE_DATE, batch_of, items_of, validate_batch

from prefetch.hl7v3.dispense_read import read_dispense
from prefetch.hl7v3.soap import unwrap
from prefetch.hl7v3.xmlparse import parse_xml
from prefetch.lspsim.driver import SOAP_HEADERS, SignedQueries
from prefetch.lspsim.profiles import BUILTIN, Faults
from prefetch.lspsim.secure import load_or_create_dev_pki, secure_from_dev_pki
from prefetch.lspsim.server import SimulatorServer
from prefetch.lspsim.world import World
from prefetch.security.pki import DevPki
from prefetch.security.tls import mtls_session

PASSPHRASE = b"lspsim test passphrase"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    return load_or_create_dev_pki(
        tmp_path_factory.mktemp("lspsim") / "pki", PASSPHRASE, key_size=2048
    )


@pytest.fixture(scope="module")
def queries(pki: DevPki) -> SignedQueries:
    return SignedQueries(pki, PASSPHRASE)


@pytest.fixture
def sim(world: World, pki: DevPki) -> Iterator[SimulatorServer]:
    tls, verifier = secure_from_dev_pki(pki, PASSPHRASE)
    with SimulatorServer(world, BUILTIN["ideal"], tls=tls, verifier=verifier) as server:
        yield server


def test_signed_query_over_mutual_tls(
    sim: SimulatorServer, queries: SignedQueries, world: World
) -> None:
    assert sim.url.startswith("https://127.0.0.1:")
    since = REFERENCE_DATE - dt.timedelta(days=400)
    with queries.session() as http:
        for patient in [p for p in world.patients if p.registrations][:5]:
            body = queries.envelope(queries.params(patient.bsn, since=since))
            response = http.post(sim.url, data=body, headers=SOAP_HEADERS, timeout=10)
            assert response.status_code == 200
            batch = batch_of(response.content)
            validate_batch(batch)
            assert len(items_of(batch)) == len(patient.registrations)
            got = [read_dispense(e) for e in batch.iter("{urn:hl7-org:v3}medicationDispenseEvent")]
            assert got == world.dispenses_for(patient.bsn, since)
        stats = http.get(sim.stats_url, timeout=5).json()
    assert stats["queries_received"] == 5 and stats["signature_failures"] == 0
    assert stats["clients"][0]["client"].startswith("uzi:")


def test_tampered_and_replayed_tokens_are_refused_with_their_reason(
    sim: SimulatorServer, queries: SignedQueries, world: World
) -> None:
    patient = world.patients[0]
    body = queries.envelope(queries.params(patient.bsn))
    other = world.patients[1].bsn.value.encode()
    tampered = body.replace(patient.bsn.value.encode(), other, 1)  # the token's BSN
    with queries.session() as http:
        assert http.post(sim.url, data=body, headers=SOAP_HEADERS, timeout=10).status_code == 200
        replay = http.post(sim.url, data=body, headers=SOAP_HEADERS, timeout=10)
        altered = http.post(sim.url, data=tampered, headers=SOAP_HEADERS, timeout=10)
    reasons = []
    for response in (replay, altered):
        assert response.status_code == 500
        fault = unwrap(parse_xml(response.content))
        reasons.append(getattr(fault, "reason", None))
    assert reasons[0] == "replayed"
    assert reasons[1] in {"digest_mismatch", "bsn_mismatch"}
    stats = sim.stats()
    assert stats["signature_failures"] == 2
    assert stats["by_outcome"]["signature_failure"] == 2


def test_unsigned_query_is_refused(
    sim: SimulatorServer, queries: SignedQueries, world: World
) -> None:
    from prefetch.hl7v3.query import build_query
    from prefetch.hl7v3.soap import wrap_soap_body

    body = wrap_soap_body(build_query(queries.params(world.patients[0].bsn)))
    with queries.session() as http:
        response = http.post(sim.url, data=body, headers=SOAP_HEADERS, timeout=10)
    assert response.status_code == 500
    assert getattr(unwrap(parse_xml(response.content)), "reason", None) == "token_missing"


def test_client_without_certificate_or_with_a_foreign_one_is_refused(
    sim: SimulatorServer, pki: DevPki
) -> None:
    with requests.Session() as plain, pytest.raises(requests.ConnectionError):
        plain.get(sim.stats_url, timeout=5, verify=str(pki.ca_bundle))
    foreign = pki.identity("foreign").load(PASSPHRASE)
    with mtls_session(foreign, pki.ca_bundle) as http, pytest.raises(requests.ConnectionError):
        http.get(sim.stats_url, timeout=5)
    deadline = time.monotonic() + 5  # the server counts after the client gave up
    while sim.stats()["tls_failures"] < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sim.stats()["tls_failures"] == 2
    assert sim.stats()["queries_received"] == 0


def test_load_or_create_reuses_an_existing_pki(pki: DevPki) -> None:
    again = load_or_create_dev_pki(Path(pki.directory), PASSPHRASE)
    assert again.hospital_ura == pki.hospital_ura


def test_connection_reset_over_tls(world: World, pki: DevPki, queries: SignedQueries) -> None:
    tls, verifier = secure_from_dev_pki(pki, PASSPHRASE)
    profile = dataclasses.replace(BUILTIN["ideal"], faults=Faults(connection_reset=1.0))
    with (
        SimulatorServer(world, profile, tls=tls, verifier=verifier) as sim,
        queries.session() as http,
    ):
        body = queries.envelope(queries.params(world.patients[0].bsn))
        with pytest.raises(requests.ConnectionError):
            http.post(sim.url, data=body, headers=SOAP_HEADERS, timeout=10)
        assert http.get(sim.stats_url, timeout=5).json()["by_outcome"] == {
            "fault_connection_reset": 1,
            "partial": 0,
        }
