"""The attacks again, on the wire: the LSP simulator over mutual TLS with our verifier.

Every refused query gets HTTP 500 with a SOAP fault whose faultstring is the reason, and no
dispense data; refused TLS clients get no answer at all.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator

import pytest
import requests
from sec_helpers import BSN_B, ParamsFactory
from test_sec_attacks import World, _edit, _tamper_digest, _tamper_token_bsn, _wrap

from prefetch.domain.people import Clinician, Mandate
from prefetch.hl7v3.xmlparse import parse_xml
from prefetch.lspsim.profiles import BUILTIN
from prefetch.lspsim.server import SimulatorServer, TlsConfig
from prefetch.lspsim.world import World as SimWorld
from prefetch.security.keys import Credential
from prefetch.security.pki import DevPki
from prefetch.security.tls import mtls_session, server_ssl_context
from prefetch.security.trust import TrustStore
from prefetch.security.verify import EnvelopeVerifier

HEADERS = {
    "Content-Type": "text/xml; charset=utf-8",
    "SOAPAction": "urn:hl7-org:v3/QURX_IN990111NL",
}

WIRE_ATTACKS: list[tuple[str, Callable[[World], bytes]]] = [
    ("bad_signature", lambda w: _edit(w.envelope(), _tamper_digest)),
    ("digest_mismatch", lambda w: _edit(w.envelope(), _tamper_token_bsn)),
    (
        "bsn_mismatch",
        lambda w: w.envelope(body_changes={"bsn": w.make_params(now=w.now, bsn=BSN_B).bsn}),
    ),
    ("mandate_missing", lambda w: w.envelope(mandate_token=None)),
    (
        "mandate_wrong_issuer",
        lambda w: w.envelope(mandate_token=w.mandate_by("assistant", w.assistant)),
    ),
    ("wrapped_signature", lambda w: _edit(w.envelope(), _wrap)),
    ("expired_token", lambda w: w.envelope(validity=dt.timedelta(seconds=-60))),
]


@pytest.fixture(scope="module")
def sim(pki: DevPki, creds: dict[str, Credential], trust: TrustStore) -> Iterator[SimulatorServer]:
    context = server_ssl_context(creds["simulator"], pki.ca_bundle, crl_file=pki.crl_bundle)
    world = SimWorld.generate(7, 5, reference_date=dt.date(2026, 11, 20))
    with SimulatorServer(
        world, BUILTIN["ideal"], tls=TlsConfig(context, trust), verifier=EnvelopeVerifier(trust)
    ) as server:
        yield server


@pytest.fixture
def world(
    creds: dict[str, Credential],
    trust: TrustStore,
    make_params: ParamsFactory,
    mandate: Mandate,
    specialist: Clinician,
    assistant: Clinician,
) -> World:
    return World(
        dt.datetime.now(dt.UTC).replace(microsecond=0),
        creds,
        trust,
        make_params,
        mandate,
        specialist,
        assistant,
    )


def _faultstring(body: bytes) -> str | None:
    root = parse_xml(body)
    return root.findtext(".//faultstring")


@pytest.mark.parametrize(("reason", "build"), WIRE_ATTACKS, ids=[a[0] for a in WIRE_ATTACKS])
def test_refused_on_the_wire_with_reason_and_no_data(
    sim: SimulatorServer,
    pki: DevPki,
    creds: dict[str, Credential],
    world: World,
    reason: str,
    build: Callable[[World], bytes],
) -> None:
    with mtls_session(creds["hospital"], pki.ca_bundle) as http:
        ok = http.post(
            sim.url.replace("127.0.0.1", "localhost"),
            data=world.envelope(),
            headers=HEADERS,
            timeout=10,
        )
        assert ok.status_code == 200, ok.text[:300]
        refused = http.post(
            sim.url.replace("127.0.0.1", "localhost"),
            data=build(world),
            headers=HEADERS,
            timeout=10,
        )
    assert refused.status_code == 500
    assert _faultstring(refused.content) == reason
    assert b"medicationDispenseEvent" not in refused.content


@pytest.mark.parametrize("label", ["expired", "revoked", "foreign"])
def test_refused_tls_clients_get_nothing(
    sim: SimulatorServer, pki: DevPki, creds: dict[str, Credential], label: str
) -> None:
    before = sim.stats()["tls_failures"]
    with (
        mtls_session(creds[label], pki.ca_bundle) as http,
        pytest.raises(requests.exceptions.ConnectionError),
    ):
        http.post(
            sim.url.replace("127.0.0.1", "localhost"), data=b"<x/>", headers=HEADERS, timeout=10
        )
    deadline = time.monotonic() + 5  # the server counts in its own thread
    while sim.stats()["tls_failures"] == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sim.stats()["tls_failures"] > before
