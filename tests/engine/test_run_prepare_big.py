"""Planning a day larger than one chunk: the appointments read once (a generator), the
last fetch looked up per chunk, the items written in chunks, the same decisions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from samples import DAY, NOW, mandate, schedule
from sqlalchemy.engine import Engine

from prefetch.clock import FakeClock
from prefetch.domain.bsn import Bsn, passes_eleven_check
from prefetch.domain.coded import Identifier
from prefetch.domain.dispense import Dispense, DispenseProvenance
from prefetch.domain.people import Appointment, AppointmentStatus, Patient
from prefetch.domain.run import EngineConfig
from prefetch.run_prepare import PLAN_CHUNK, RunPlanner
from prefetch.store._support import Sessions
from prefetch.store.dispenses import DispenseRepository, upsert_dispenses
from prefetch.store.runs import RunRepository

SCHEDULE = schedule(frozenset({"CARD"}))
CONFIG = EngineConfig(
    hospital_ura="00000099",
    hospital_name="Ziekenhuis Test",
    application_id="12345",
    system_uzi="000000123",
)
PATIENTS = PLAN_CHUNK + 500
FRESH = (3, PLAN_CHUNK + 7)  # fetched an hour ago: one in each chunk


def bsns(n: int) -> list[str]:
    out, candidate = [], 100_000_000
    while len(out) < n:
        candidate += 1
        if passes_eleven_check(str(candidate)):
            out.append(str(candidate))
    return out


def day_of(numbers: list[str], *, cancelled: frozenset[int] = frozenset()) -> Iterator[Appointment]:
    start = dt.datetime.combine(DAY, dt.time(8), tzinfo=dt.UTC)
    for n, bsn in enumerate(numbers):
        yield Appointment(
            id=f"A{n}",
            patient=Patient(local_id=f"P{n}", bsn=Bsn(bsn), bsn_verified=True),
            clinic="CARD",
            start=start + dt.timedelta(seconds=n),
            appointment_type="NP",
            status=AppointmentStatus.CANCELLED if n in cancelled else AppointmentStatus.BOOKED,
        )


def fetched(engine: Engine, bsn: str, at: dt.datetime) -> None:
    provenance = DispenseProvenance(
        pharmacy_ura="00063703",
        pharmacy_name="Apotheek",
        source_application_id="10011427",
        source_system_uzi="000277280",
        batch_message_id=None,
        item_message_id=None,
        query_id=f"q-{bsn}",
        fetched_at=at,
        run_id=None,
        responsible_uzi="000018389",
        responsible_name=None,
    )
    with Sessions(engine).write() as session:
        key = Identifier("2.16.528.1.1007.3.3.1234567.3", f"d-{bsn}")
        upsert_dispenses(session, bsn, [(Dispense(id=key), provenance)])


def test_a_day_of_several_chunks_is_planned_from_a_generator(migrated_engine: Engine) -> None:
    numbers = bsns(PATIENTS)
    for n in FRESH:
        fetched(migrated_engine, numbers[n], NOW - dt.timedelta(hours=1))
    runs = RunRepository(migrated_engine)
    planner = RunPlanner(runs, DispenseRepository(migrated_engine), CONFIG, FakeClock(NOW))
    prepared = planner.prepare(SCHEDULE, DAY, day_of(numbers), mandate=mandate(b"<m/>"))
    assert prepared.created
    assert (prepared.planned, prepared.to_query) == (PATIENTS, PATIENTS - len(FRESH))
    items = runs.items(prepared.run_id)
    assert [i.patient_local_id for i in items] == [f"P{n}" for n in range(PATIENTS)]
    assert {i.patient_local_id for i in items if i.skip_reason == "fresh"} == {
        f"P{n}" for n in FRESH
    }
    # The same day again, now with two cancellations (one per chunk): a resume that
    # withdraws them and adds nothing.
    again = planner.prepare(
        SCHEDULE,
        DAY,
        day_of(numbers, cancelled=frozenset({10, PLAN_CHUNK + 10})),
        mandate=mandate(b"<m/>"),
    )
    assert (again.run_id, again.created, again.planned) == (prepared.run_id, False, PATIENTS)
    assert again.to_query == PATIENTS - len(FRESH) - 2
    summary = runs.summary(prepared.run_id)
    assert summary.by_skip_reason == {"fresh": 2, "cancelled": 2}
