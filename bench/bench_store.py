"""Store benchmark: record 1,000 outcomes with ~10 dispenses each, then record them again.

    python bench/bench_store.py [--outcomes 1000] [--dispenses 10] [--postgres-url URL]

Runs on a fresh SQLite file and, if reachable, on PostgreSQL (a throwaway schema that is
dropped afterwards). The first pass inserts every dispense; the second pass (a manual run
over the same patients, a later fetch) updates every one. Each outcome is one
`record_outcome` call: dispenses, item state and audit row in one transaction. The
claim of each item (`claim_next`) is timed separately.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import psycopg
from sqlalchemy import make_url

from prefetch.domain import oids
from prefetch.domain.bsn import passes_eleven_check
from prefetch.domain.coded import Code, Identifier, Quantity
from prefetch.domain.dispense import Dispense, DispenseProvenance, Dosage, Party, Product
from prefetch.domain.outcome import OutcomeKind
from prefetch.store.db import make_engine, upgrade
from prefetch.store.records import AuditAction, AuditEvent, NewItem
from prefetch.store.repositories import DispenseRepository, RunRepository

T0 = dt.datetime(2026, 11, 20, 18, 0, tzinfo=dt.UTC)
DEFAULT_PG = os.environ.get(
    "PREFETCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def synthetic_bsns(n: int) -> list[str]:
    out, candidate = [], 100_000_000
    while len(out) < n:
        candidate += 1
        if passes_eleven_check(str(candidate)):
            out.append(str(candidate))
    return out


def dispenses_for(
    patient: int, per_patient: int, fetched_at: dt.datetime, query: str
) -> list[tuple[Dispense, DispenseProvenance]]:
    prov = DispenseProvenance(
        pharmacy_ura="00063703",
        pharmacy_name="Apotheek Kuinre",
        source_application_id="10011427",
        source_system_uzi="000277280",
        batch_message_id=f"2.16.840.1.113883.2.4.6.6.1^{query}",
        item_message_id=f"2.16.528.1.1007.3.3.63703.1^{query}",
        query_id=f"2.16.528.1^{query}",
        fetched_at=fetched_at,
        run_id=None,
        responsible_uzi="000018389",
        responsible_name="Dr. A. Cardioloog",
    )
    out = []
    for k in range(per_patient):
        d = Dispense(
            id=Identifier("2.16.840.1.113883.2.4.3.33.1.4.1.272.3", f"p{patient}-d{k}"),
            status="completed",
            dispensed_on=dt.date(2026, 1, 1) + dt.timedelta(days=k),
            quantity=Quantity(Decimal(30), "1"),
            expected_use=Quantity(Decimal(15), "d"),
            product=Product(code=Code(str(16_000_000 + k), oids.ZI_NUMBER, f"PRODUCT {k}")),
            dosages=(Dosage(text="2 maal per dag 1 tablet"),),
            responsible=Party(
                ids=(Identifier(oids.UZI_PERSON, "000153903"),),
                organization_ids=(Identifier(oids.URA, "00063703"),),
            ),
        )
        out.append((d, prov))
    return out


def one_pass(
    runs: RunRepository,
    run_id: str,
    kind: str,
    bsns: list[str],
    per_patient: int,
    fetched_at: dt.datetime,
) -> tuple[float, float, int, int]:
    items = [NewItem(f"pat{i:05d}", bsn, ("CARD",)) for i, bsn in enumerate(bsns)]
    assert runs.create_run(run_id, "bench", dt.date(2026, 11, 21), kind, fetched_at, items)
    claim_s = record_s = 0.0
    inserted = updated = 0
    for i in range(len(bsns)):
        t = time.perf_counter()
        claimed = runs.claim_next(run_id, "bench", fetched_at)
        claim_s += time.perf_counter() - t
        assert claimed is not None
        pairs = dispenses_for(i, per_patient, fetched_at, f"{run_id}-{i}")
        event = AuditEvent(
            event_id=f"{run_id}-{i}",
            event_type="lsp_query",
            action=AuditAction.EXECUTE,
            occurred_at=fetched_at,
            user_id="000143554",
            source_system="bench",
            outcome="records",
            patient_bsn=claimed.bsn,
            responsible_user_id="000018389",
            object_detail={"query_id": f"{run_id}-{i}", "dispenses": len(pairs)},
        )
        t = time.perf_counter()
        result = runs.record_outcome(
            claimed.id,
            outcome_kind=OutcomeKind.RECORDS,
            outcome_code="OK",
            detail=None,
            dispenses=pairs,
            audit=event,
        )
        record_s += time.perf_counter() - t
        inserted += result.inserted
        updated += result.updated
    return claim_s, record_s, inserted, updated


def bench(name: str, url: str, outcomes: int, per_patient: int) -> None:
    upgrade(url)
    engine = make_engine(url)
    try:
        runs = RunRepository(engine)
        bsns = synthetic_bsns(outcomes)
        for label, run_id, kind, at in (
            ("insert", "first", "scheduled", T0),
            ("update", "again", "manual", T0 + dt.timedelta(days=1)),
        ):
            claim_s, record_s, ins, upd = one_pass(runs, run_id, kind, bsns, per_patient, at)
            print(
                f"{name:10} {label:6} {outcomes} outcomes x {per_patient} dispenses: "
                f"record {record_s:6.2f} s ({record_s / outcomes * 1000:5.2f} ms/outcome), "
                f"claim {claim_s:5.2f} s; inserted {ins}, updated {upd}"
            )
        print(f"{name:10} rows: {DispenseRepository(engine).count()} dispenses")
    finally:
        engine.dispose()


@contextmanager
def postgres_schema(base_url: str) -> Iterator[str | None]:
    dsn = make_url(base_url).set(drivername="postgresql").render_as_string(hide_password=False)
    schema = "prefetch_bench_" + uuid.uuid4().hex[:12]
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.Error as exc:
        print(f"postgresql skipped: {type(exc).__name__}")
        yield None
        return
    try:
        url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outcomes", type=int, default=1000)
    parser.add_argument("--dispenses", type=int, default=10)
    parser.add_argument("--postgres-url", default=DEFAULT_PG)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench("sqlite", f"sqlite:///{tmp}/bench.db", args.outcomes, args.dispenses)
    if not args.no_postgres:
        with postgres_schema(args.postgres_url) as url:
            if url is not None:
                bench("postgresql", url, args.outcomes, args.dispenses)


if __name__ == "__main__":
    main()
