"""A real server on loopback, plain HTTP (these tests ask for it: no TLS, no tokens)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import pytest
import requests
from lspsim_helpers import (
    REFERENCE_DATE,
    batch_of,
    items_of,
    make_params,
    query_body,
    validate_batch,
)

from prefetch.hl7v3.dispense_read import read_dispense
from prefetch.lspsim.profiles import BUILTIN, Faults, RateLimit
from prefetch.lspsim.server import SimulatorServer
from prefetch.lspsim.world import World

HEADERS = {
    "Content-Type": "text/xml; charset=utf-8",
    "SOAPAction": "urn:hl7-org:v3/QURX_IN990111NL",
}


def test_real_query_gets_the_world_back_over_keep_alive(world: World) -> None:
    since = REFERENCE_DATE - dt.timedelta(days=365)
    with SimulatorServer(world, BUILTIN["ideal"], tls=None) as sim, requests.Session() as http:
        assert sim.url.startswith("http://127.0.0.1:") and sim.url.endswith("/lsp")
        patients = [p for p in world.patients if p.registrations][:15]
        for patient in patients:
            response = http.post(
                sim.url,
                data=query_body(make_params(patient.bsn, since=since)),
                headers=HEADERS,
                timeout=10,
            )
            assert response.status_code == 200
            assert response.headers["Content-Type"].startswith("text/xml")
            batch = batch_of(response.content)
            validate_batch(batch)
            assert len(items_of(batch)) == len(patient.registrations)
            got = [read_dispense(e) for e in batch.iter("{urn:hl7-org:v3}medicationDispenseEvent")]
            assert got == world.dispenses_for(patient.bsn, since)
        stats = http.get(sim.stats_url, timeout=5).json()
        assert stats["queries_received"] == len(patients)
        assert stats["connections"] == 1  # keep-alive: one connection for everything
        assert stats["violations"]["total"] == 0
        assert sum(stats["by_outcome"].values()) == len(patients)
        assert http.post(sim.reset_url, timeout=5).json() == {"reset": True}
        assert http.get(sim.stats_url, timeout=5).json()["queries_received"] == 0
        assert http.get(sim.base_url + "/elsewhere", timeout=5).status_code == 404


def test_too_fast_real_client_gets_503_with_retry_after(world: World) -> None:
    profile = dataclasses.replace(BUILTIN["ideal"], rate=RateLimit(max_rate=2, max_concurrency=4))
    with SimulatorServer(world, profile, tls=None) as sim, requests.Session() as http:
        responses = [
            http.post(sim.url, data=query_body(make_params(p.bsn)), headers=HEADERS, timeout=10)
            for p in world.patients[:10]
        ]
        refused = [r for r in responses if r.status_code == 503]
        assert len(refused) >= 7
        assert all(r.headers["Retry-After"] == "1" for r in refused)
        stats = sim.stats()
        assert stats["refused"]["rate"] == len(refused)
        assert stats["violations"]["rate"] >= len(refused)
        assert stats["peak_rate_per_s"] >= 8


def test_the_query_log_names_every_query_by_the_hash_of_its_bsn(world: World) -> None:
    profile = dataclasses.replace(BUILTIN["ideal"], rate=RateLimit(max_rate=2, max_concurrency=4))
    patients = world.patients[:4]
    with SimulatorServer(world, profile, tls=None) as sim, requests.Session() as http:
        statuses = [
            http.post(
                sim.url, data=query_body(make_params(p.bsn)), headers=HEADERS, timeout=10
            ).status_code
            for p in patients
        ]
        http.post(sim.url, data=b"<not-xml", headers=HEADERS, timeout=10)
        body = http.get(sim.log_url, timeout=5).json()
        queries = body["queries"]
        assert [q["bsn_sha256"] for q in queries] == [
            *(hashlib.sha256(p.bsn.value.encode()).hexdigest() for p in patients),
            None,
        ]
        assert {q["client"] for q in queries} == {"ip:127.0.0.1"}
        # refused queries are logged too, with the outcome the client saw
        refused = ["overload_rate" for s in statuses if s == 503]
        assert [q["outcome"] for q in queries if q["outcome"] == "overload_rate"] == refused
        assert refused and queries[-1]["outcome"] == "bad_request"
        times = [dt.datetime.fromisoformat(q["at"]) for q in queries]
        assert times == sorted(times) and all(t.tzinfo is not None for t in times)
        assert all(p.bsn.value not in str(body) for p in patients)
        assert sim.query_log() == queries
        http.post(sim.reset_url, timeout=5)
        assert http.get(sim.log_url, timeout=5).json() == {"queries": []}


def test_connection_reset_is_a_reset(world: World) -> None:
    profile = dataclasses.replace(BUILTIN["ideal"], faults=Faults(connection_reset=1.0))
    with SimulatorServer(world, profile, tls=None) as sim, requests.Session() as http:
        with pytest.raises(requests.ConnectionError):
            http.post(
                sim.url,
                data=query_body(make_params(world.patients[0].bsn)),
                headers=HEADERS,
                timeout=10,
            )
        assert sim.stats()["by_outcome"] == {"fault_connection_reset": 1, "partial": 0}


def test_stop_is_clean_and_the_port_is_released(world: World) -> None:
    sim = SimulatorServer(world, BUILTIN["ideal"], tls=None).start()
    url = sim.url
    sim.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url.replace("/lsp", "/_sim/stats"), timeout=2)
