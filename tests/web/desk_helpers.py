"""A clinic day in the real store for the desk tests: runs, items, outcomes, dispenses."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Engine

from prefetch.domain import oids
from prefetch.domain.coded import Code, Identifier, Quantity
from prefetch.domain.dispense import Dispense, DispenseProvenance, Dosage, Product
from prefetch.domain.outcome import OutcomeKind
from prefetch.store.desk_users import DeskRole, DeskUserRepository
from prefetch.store.records import AuditAction, AuditEvent, NewItem
from prefetch.store.runs import RunRepository

NOW = dt.datetime(2026, 11, 23, 18, 0, tzinfo=dt.UTC)
DAY = dt.date(2026, 11, 24)
DESK_NOW = NOW + dt.timedelta(hours=23, minutes=5)  # the desk's clock: the morning after
PASSWORD = "correct horse battery"


def valid_bsns() -> list[str]:
    """Nine-digit numbers that pass the 11-check, in order."""
    out = []
    for n in range(100000000, 100100000):
        digits = f"{n:09d}"
        total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True))
        if (total - int(digits[8])) % 11 == 0:
            out.append(digits)
        if len(out) == 600:
            break
    return out


BSNS = valid_bsns()


def dispense(n: int, product: str, name: str, on: dt.date, dose: str) -> Dispense:
    return Dispense(
        id=Identifier("2.16.840.1.113883.2.4.6.6.1.1", f"d{n}"),
        dispensed_on=on,
        quantity=Quantity(Decimal(30), "1"),
        product=Product(Code(product, oids.ZI_NUMBER, name)),
        dosages=(Dosage(text=dose),),
    )


def provenance(run_id: str, pharmacy: str, at: dt.datetime) -> DispenseProvenance:
    return DispenseProvenance(
        pharmacy_ura="01234567",
        pharmacy_name=pharmacy,
        source_application_id="1",
        source_system_uzi="000000111",
        batch_message_id="b^1",
        item_message_id="m^1",
        query_id="q^1",
        fetched_at=at,
        run_id=run_id,
        responsible_uzi="900000011",
        responsible_name="Dr. A. de Vries",
    )


def audit(bsn: str, at: dt.datetime, outcome: str) -> AuditEvent:
    return AuditEvent(
        event_id=f"q{bsn}{outcome}",
        event_type="lsp_query",
        action=AuditAction.EXECUTE,
        occurred_at=at,
        user_id="000000123",
        source_system="prefetch/app-1",
        outcome=outcome,
        user_role="system",
        responsible_user_id="900000011",
        patient_bsn=bsn,
        authorisation_basis="m1",
    )


@dataclass(frozen=True, slots=True)
class SeededDay:
    run_id: str
    items: dict[str, int]  # patient local id -> item id


def seed_day(engine: Engine, *, patients: int = 8, run_id: str = "card:2026-11-24") -> SeededDay:
    """P1 records (3 dispenses, 2 medicines), P2 no records, P3 not registered, P4 skipped
    (consent), P5 failed, P6 pending, P7 partial answer, P8 no BSN; more are pending."""
    runs = RunRepository(engine)
    new = [
        NewItem("P1", BSNS[0], ("CARD",)),
        NewItem("P2", BSNS[1], ("CARD",)),
        NewItem("P3", BSNS[2], ("INT",)),
        NewItem("P4", BSNS[3], ("CARD",), skip_reason="consent_refused"),
        NewItem("P5", BSNS[4], ("INT",)),
        NewItem("P6", BSNS[5], ("CARD", "INT")),
        NewItem("P7", BSNS[6], ("CARD",)),
        NewItem("P8", None, ("INT",), skip_reason="no_bsn"),
    ] + [NewItem(f"X{n:04d}", BSNS[10 + n], ("CARD",)) for n in range(patients - 8)]
    runs.create_run(run_id, "card", DAY, "scheduled", NOW, new)
    runs.start_run(run_id, NOW)
    at = NOW + dt.timedelta(minutes=5)
    outcomes = {
        "P1": (OutcomeKind.RECORDS, None, None),
        "P2": (OutcomeKind.NO_RECORDS, None, None),
        "P3": (OutcomeKind.NO_REGISTRATIONS, "KEY204", None),
        "P5": (OutcomeKind.FAILED, "TRANSPORT", "gave up after 4 attempts: TRANSPORT"),
        "P7": (OutcomeKind.RECORDS, None, "partial answer: no data from Apotheek De Brug"),
    }
    claimed_all = []
    while (claimed := runs.claim_next(run_id, "w", at)) is not None:
        claimed_all.append(claimed)
    for claimed in claimed_all:
        if claimed.patient_local_id not in outcomes:
            continue
        kind, code, detail = outcomes[claimed.patient_local_id]
        pairs = []
        if claimed.patient_local_id == "P1":
            pairs = [
                (
                    dispense(
                        1,
                        "12345678",
                        "METOPROLOL 50MG TABLET",
                        DAY - dt.timedelta(days=90),
                        "1 maal per dag 1 tablet",
                    ),
                    provenance(run_id, "Apotheek Centrum", at),
                ),
                (
                    dispense(
                        2,
                        "12345678",
                        "METOPROLOL 50MG TABLET",
                        DAY - dt.timedelta(days=30),
                        "1 maal per dag 1 tablet",
                    ),
                    provenance(run_id, "Apotheek Centrum", at),
                ),
                (
                    dispense(
                        3,
                        "87654321",
                        "OMEPRAZOL 20MG CAPSULE",
                        DAY - dt.timedelta(days=10),
                        "1 maal per dag 1 capsule",
                    ),
                    provenance(run_id, "Apotheek Noord", at),
                ),
            ]
        if claimed.patient_local_id == "P7":
            pairs = [
                (
                    dispense(
                        7,
                        "11112222",
                        "PARACETAMOL 500MG TABLET",
                        DAY - dt.timedelta(days=3),
                        "zo nodig 1 tablet",
                    ),
                    provenance(run_id, "Apotheek West", at),
                )
            ]
        runs.record_outcome(
            claimed.id,
            outcome_kind=kind,
            outcome_code=code,
            detail=detail,
            dispenses=pairs,
            audit=audit(claimed.bsn, at, kind.value),
        )
    # the rest goes back to the queue, due now (as after a restart)
    runs.reclaim_expired(run_id, at, max_attempts=99, everything=True)
    with_ids = {i.patient_local_id: i.id for i in runs.items(run_id)}
    return SeededDay(run_id, with_ids)


def add_user(engine: Engine, name: str, role: DeskRole, *, mandate_id: str | None = "m1") -> None:
    DeskUserRepository(engine).add(
        name,
        display_name=name.title(),
        role=role,
        password=PASSWORD,
        mandate_id=mandate_id,
        now=NOW,
    )
