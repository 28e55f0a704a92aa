"""Builders for store tests: dispenses, provenance, audit events, run items."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Callable
from decimal import Decimal

from sqlalchemy.engine import Engine

from prefetch.domain import oids
from prefetch.domain.coded import Code, CodedValue, Identifier, Quantity, QuantityRange, Timing
from prefetch.domain.dispense import Dispense, DispenseProvenance, Dosage, Party, Product
from prefetch.store.db import make_engine
from prefetch.store.records import AuditAction, AuditEvent, NewItem

# Valid BSNs (11-check) from the public test range.
BSN_A = "999990019"
BSN_B = "999990020"
BSN_C = "999990032"
T0 = dt.datetime(2026, 11, 20, 18, 0, tzinfo=dt.UTC)
DISPENSE_ROOT = "2.16.840.1.113883.2.4.3.33.1.4.1.272.3"

_event_ids = itertools.count(1)


def dispense(
    ext: str | None = "d1",
    *,
    product: str = "16778685",
    day: dt.date | None = dt.date(2026, 10, 9),
    root: str = DISPENSE_ROOT,
) -> Dispense:
    return Dispense(
        id=Identifier(root, ext),
        status="completed",
        dispensed_on=day,
        quantity=Quantity(
            Decimal("30"), "1", translations=(CodedValue(Decimal(30), Code("245", oids.GSTD_UNIT)),)
        ),
        expected_use=Quantity(Decimal("15"), "d"),
        product=Product(
            code=Code(
                product,
                oids.ZI_NUMBER,
                "PARACETAMOL 500MG",
                translations=(Code("2194430", oids.HPK),),
            )
        ),
        dosages=(
            Dosage(
                text="2 maal per dag 1 tablet",
                timing=(Timing("PIVL", period=Quantity(Decimal("0.5"), "d")),),
                dose=QuantityRange(center=Quantity(Decimal(1), "1")),
            ),
        ),
        responsible=Party(
            ids=(Identifier(oids.UZI_PERSON, "000153903"),),
            organization_ids=(Identifier(oids.URA, "00063703"),),
            organization_name="Apotheek Kuinre",
        ),
    )


def provenance(
    fetched_at: dt.datetime = T0,
    *,
    query: str = "q1",
    run_id: str | None = "r1",
    pharmacy: str = "Apotheek Kuinre",
) -> DispenseProvenance:
    return DispenseProvenance(
        pharmacy_ura="00063703",
        pharmacy_name=pharmacy,
        source_application_id="10011427",
        source_system_uzi="000277280",
        batch_message_id="2.16.840.1.113883.2.4.6.6.1^b1",
        item_message_id="2.16.528.1.1007.3.3.63703.1^i1",
        query_id=f"2.16.528.1^{query}",
        fetched_at=fetched_at,
        run_id=run_id,
        responsible_uzi="000018389",
        responsible_name="Dr. A. Cardioloog",
    )


def audit(
    bsn: str | None = BSN_A,
    *,
    at: dt.datetime = T0,
    event_id: str | None = None,
    event_type: str = "lsp_query",
    outcome: str = "records",
) -> AuditEvent:
    return AuditEvent(
        event_id=event_id or f"ev-{next(_event_ids)}",
        event_type=event_type,
        action=AuditAction.EXECUTE,
        occurred_at=at,
        user_id="000143554",
        user_role="30.000",
        responsible_user_id="000018389",
        patient_bsn=bsn,
        object_detail={"query_id": "2.16.528.1^q1", "dispenses": 2},
        authorisation_basis="mandate-1",
        source_system="prefetch@test",
        outcome=outcome,
    )


def items(n: int, *, skipped: int = 0) -> list[NewItem]:
    bsns = [BSN_A, BSN_B, BSN_C]
    out = [NewItem(f"p{i:04d}", bsns[i % 3], ("CARD",)) for i in range(n)]
    out += [
        NewItem(f"s{i:04d}", None, ("CARD", "INT"), skip_reason="no_bsn") for i in range(skipped)
    ]
    return out


def run_workers(database_url: str, n_workers: int, work: Callable[[int, Engine], None]) -> None:
    """Run `work(k, engine)` in `n_workers` threads, each on its own engine (one per
    "machine"), released together by a barrier; re-raise the first error of any worker."""
    engines = [make_engine(database_url) for _ in range(n_workers)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_workers)

    def run(k: int) -> None:
        try:
            barrier.wait()
            work(k, engines[k])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n_workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for engine in engines:
        engine.dispose()
    if errors:
        raise errors[0]
