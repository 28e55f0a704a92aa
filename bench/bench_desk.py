"""Desk benchmark: worklist and patient page latency for a clinic day of 500 patients.

    python bench/bench_desk.py [--patients 500] [--dispenses 8] [--requests 50]

A fresh SQLite file gets one finished run of N patients (70 % with ~D dispenses each,
the rest no records, not registered or skipped) and an assistant account. The desk is
served by uvicorn on loopback as `prefetch desk` serves it and is asked over HTTP with a
signed-in session: the whole worklist (N rows), the worklist filtered to one poli and one
status, and patient pages (each view writes its audit row). Prints median and p95 in ms
and writes `bench/results/bench_desk.json`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import re
import socket
import statistics
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path

import requests
import uvicorn
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST

from prefetch.domain import oids
from prefetch.domain.bsn import passes_eleven_check
from prefetch.domain.coded import Code, Identifier, Quantity
from prefetch.domain.dispense import Dispense, DispenseProvenance, Dosage, Product
from prefetch.domain.outcome import OutcomeKind
from prefetch.store.db import make_engine, upgrade
from prefetch.store.desk_users import DeskUserRepository, use_hasher
from prefetch.store.records import AuditAction, AuditEvent, NewItem
from prefetch.store.runs import RunRepository
from prefetch.web.app import create_app
from prefetch.web.auth import AuthConfig

NOW = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)
DAY = dt.date(2026, 11, 24)
CLINICS = ("CARD", "INT", "LONG", "NEUR", "REUM")
PASSWORD = "bench password 123"


def bsns(n: int) -> list[str]:
    out = []
    candidate = 100000000
    while len(out) < n:
        digits = f"{candidate:09d}"
        if passes_eleven_check(digits):
            out.append(digits)
        candidate += 1
    return out


def seed(url: str, patients: int, per_patient: int) -> None:
    engine = make_engine(url)
    runs = RunRepository(engine)
    numbers = bsns(patients)
    items = [
        NewItem(
            f"P{n:06d}",
            numbers[n],
            (CLINICS[n % len(CLINICS)],),
            skip_reason="bsn_unverified" if n % 10 == 9 else None,
        )
        for n in range(patients)
    ]
    runs.create_run("bench:day", "bench", DAY, "scheduled", NOW, items)
    runs.start_run("bench:day", NOW)
    at = NOW + dt.timedelta(minutes=1)
    while (claimed := runs.claim_next("bench:day", "w", at)) is not None:
        n = int(claimed.patient_local_id[1:])
        kind = OutcomeKind.RECORDS if n % 10 < 7 else OutcomeKind.NO_RECORDS
        if n % 10 == 8:
            kind = OutcomeKind.NO_REGISTRATIONS
        pairs = []
        if kind is OutcomeKind.RECORDS:
            prov = DispenseProvenance(
                "01234567",
                "Apotheek",
                "1",
                "000000111",
                "b^1",
                "m^1",
                f"q^{n}",
                at,
                "bench:day",
                "900000011",
                "Dr. Bench",
            )
            for k in range(per_patient):
                dispense = Dispense(
                    id=Identifier("2.16.528.1.1007.3.3.1234567.3", f"{n}-{k}"),
                    dispensed_on=DAY - dt.timedelta(days=10 * k + 1),
                    quantity=Quantity(Decimal(30), "1"),
                    product=Product(Code(f"{1000 + k % 4}", oids.ZI_NUMBER, f"MIDDEL {k % 4}")),
                    dosages=(Dosage(text="1 maal per dag 1 tablet"),),
                )
                pairs.append((dispense, prov))
        audit = AuditEvent(
            event_id=f"bench-{n}",
            event_type="lsp_query",
            action=AuditAction.EXECUTE,
            occurred_at=at,
            user_id="000000111",
            source_system="bench",
            outcome=kind.value,
            patient_bsn=claimed.bsn,
        )
        runs.record_outcome(
            claimed.id,
            outcome_kind=kind,
            outcome_code=None,
            detail=None,
            dispenses=pairs,
            audit=audit,
        )
    runs.finish_run("bench:day", at)
    use_hasher(PasswordHasher.from_parameters(CHEAPEST))  # sign-in is not what is measured
    DeskUserRepository(engine).add(
        "bench",
        display_name="Bench",
        role="assistant",
        password=PASSWORD,
        mandate_id=None,
        now=NOW,
    )
    engine.dispose()


def timed(session: requests.Session, url: str, count: int) -> list[float]:
    out = []
    for _ in range(count):
        start = time.perf_counter()
        answer = session.get(url, timeout=30)
        out.append((time.perf_counter() - start) * 1000)
        answer.raise_for_status()
    return out


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 2),
        "n": len(ordered),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--dispenses", type=int, default=8)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'desk.db'}"
        upgrade(url)
        seed(url, args.patients, args.dispenses)
        engine = make_engine(url)
        app = create_app(
            engine,
            auth=AuthConfig(secret=b"bench secret"),
            clock=lambda: NOW + dt.timedelta(hours=14),
        )
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none"
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        session = requests.Session()
        page = session.get(f"{base}/aanmelden", timeout=30).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        session.post(
            f"{base}/aanmelden",
            data={"gebruikersnaam": "bench", "wachtwoord": PASSWORD, "csrf_token": token[1]},
            timeout=30,
        ).raise_for_status()
        worklist = session.get(f"{base}/werklijst?dag={DAY}", timeout=30).text
        ids = re.findall(r'href="/patienten/(\d+)"', worklist)
        assert len(ids) == args.patients, len(ids)
        results = {
            "worklist_all": summary(timed(session, f"{base}/werklijst?dag={DAY}", args.requests)),
            "worklist_filtered": summary(
                timed(
                    session, f"{base}/werklijst?dag={DAY}&poli=CARD&status=opgehaald", args.requests
                )
            ),
        }
        patient_samples: list[float] = []
        for item in ids[: args.requests]:
            patient_samples += timed(session, f"{base}/patienten/{item}", 1)
        results["patient_page"] = summary(patient_samples)
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
    report = {
        "benchmark": "bench_desk",
        "patients": args.patients,
        "dispenses_per_fetched_patient": args.dispenses,
        "backend": "sqlite",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "results": results,
    }
    for name, figures in results.items():
        print(f"{name:18s} median {figures['median_ms']:7.1f} ms   p95 {figures['p95_ms']:7.1f} ms")
    out = Path(__file__).parent / "results" / "bench_desk.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
