"""FHIR API benchmark: one patient with 50 dispenses, the EPD's search over real HTTP.

    python bench/fhir_api.py [--dispenses 50] [--requests 200] [--postgres-url URL]

Stores 50 simulator dispenses (4 pharmacies, magistral and structured dosages) for one
patient, serves the router with uvicorn on loopback, and times
`GET /fhir/MedicationDispense?patient.identifier=...|<BSN>&_include=MedicationDispense:medication`
(100 resources: 50 dispenses + 50 administration agreements, plus the medications) from a
keep-alive client, after a warm-up. Each request also writes its audit row. SQLite in a
temporary file; PostgreSQL too when reachable. Target: median under 100 ms.
Writes bench/results/fhir_api.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import socket
import statistics
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import requests
import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine, make_url

from prefetch.domain.dispense import DispenseProvenance
from prefetch.lspsim.dispgen import PharmacyRef, make_dispense, random_prescriber
from prefetch.store._support import Sessions
from prefetch.store.api_tokens import ApiTokens
from prefetch.store.db import make_engine, upgrade
from prefetch.store.dispenses import upsert_dispenses
from prefetch.web.fhir_api import fhir_router

BSN = "999900444"
NOW = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)
DEFAULT_PG = os.environ.get(
    "PREFETCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def seed(engine: Engine, count: int) -> str:
    rng = random.Random(12)
    pharmacies = [
        PharmacyRef(
            ura=f"000{6370 + i}",
            dispense_root=f"2.16.528.1.1007.3.3.{6370 + i}.3",
            pharmacist_uzi=None,
        )
        for i in range(4)
    ]
    pairs = []
    for serial in range(count):
        pharmacy = pharmacies[serial % len(pharmacies)]
        day = NOW.date() - dt.timedelta(days=rng.randrange(365))
        dispense = make_dispense(rng, pharmacy, random_prescriber(rng), day, serial)
        prov = DispenseProvenance(
            pharmacy_ura=pharmacy.ura,
            pharmacy_name=f"Apotheek {serial % len(pharmacies)}",
            source_application_id="10011427",
            source_system_uzi="000277280",
            batch_message_id="2.16.840.1.113883.2.4.6.6.1^b1",
            item_message_id=f"2.16.840.1.113883.2.4.6.6.1001142{serial % 4}^i1",
            query_id="2.16.528.1.1007.3.3.12345678.2^q1",
            fetched_at=NOW,
            run_id="bench",
            responsible_uzi="123456782",
            responsible_name="Dr. A. van Arts",
        )
        pairs.append((dispense, prov))
    with Sessions(engine).write() as session:
        upsert_dispenses(session, BSN, pairs)
    token = ApiTokens(engine).create("bench", now=NOW)
    assert token is not None
    return token


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(url: str, count: int, requests_n: int) -> dict[str, Any]:
    engine = make_engine(url)
    upgrade(url)
    token = seed(engine, count)
    app = FastAPI()
    app.include_router(fhir_router(engine))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {token}"
    params = {
        "patient.identifier": f"http://fhir.nl/fhir/NamingSystem/bsn|{BSN}",
        "_include": "MedicationDispense:medication",
    }
    endpoint = f"http://127.0.0.1:{port}/fhir/MedicationDispense"
    times = []
    try:
        for i in range(requests_n + 10):
            t0 = time.perf_counter()
            answer = session.get(endpoint, params=params, timeout=10)
            elapsed = time.perf_counter() - t0
            answer.raise_for_status()
            if i >= 10:  # warm-up
                times.append(elapsed * 1000)
        bundle = answer.json()
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        engine.dispose()
    times.sort()
    return {
        "dispenses": count,
        "matches": bundle["total"],
        "entries": len(bundle["entry"]),
        "bytes": len(answer.content),
        "requests": requests_n,
        "median_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
        "max_ms": round(times[-1], 2),
    }


def postgres_schema(base: str) -> tuple[str, str] | None:
    dsn = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(dsn, connect_timeout=3, autocommit=True) as conn:
            schema = "bench_fhir_" + uuid.uuid4().hex[:12]
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.Error:
        return None
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dispenses", type=int, default=50)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = measure(f"sqlite:///{tmp}/bench.db", args.dispenses, args.requests)
    pg = postgres_schema(args.postgres_url)
    if pg is not None:
        url, schema = pg
        try:
            results["postgresql"] = measure(url, args.dispenses, args.requests)
        finally:
            dsn = make_url(args.postgres_url).set(drivername="postgresql")
            with psycopg.connect(dsn.render_as_string(hide_password=False), autocommit=True) as c:
                c.execute(f'DROP SCHEMA "{schema}" CASCADE')
    for backend, r in results.items():
        print(
            f"{backend:>10}: {r['dispenses']} dispenses -> {r['matches']} matches, "
            f"{r['entries']} entries, {r['bytes'] // 1024} KiB; median {r['median_ms']} ms, "
            f"p95 {r['p95_ms']} ms, max {r['max_ms']} ms over {r['requests']} requests"
        )
    out = Path(__file__).parent / "results" / "fhir_api.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
