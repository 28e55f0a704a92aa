"""The run use case against the real store (SQLite and PostgreSQL) and a scripted gateway."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from samples import DAY, NOW, OVERSEER, mandate, schedule
from sqlalchemy.engine import Engine

from prefetch.clock import FakeClock
from prefetch.domain.bsn import Bsn
from prefetch.domain.coded import Code, Identifier
from prefetch.domain.dispense import Dispense, Product
from prefetch.domain.outcome import Outcome, OutcomeKind, SourceAnswer, SourceStatus
from prefetch.domain.people import Appointment, AppointmentStatus, Patient
from prefetch.domain.run import EngineConfig, RunState, run_deadline
from prefetch.engine import Prefetcher
from prefetch.errors import StoreUnavailableError
from prefetch.hl7v3.params import QueryParams
from prefetch.lsp.fake import FakeLspGateway
from prefetch.ports import LspReply
from prefetch.store.audit import AuditLog
from prefetch.store.dispenses import DispenseRepository
from prefetch.store.records import RecordResult
from prefetch.store.runs import RunRepository
from prefetch.throttle import Throttle, ThrottleConfig

SCHEDULE = schedule(frozenset({"CARD", "INT"}))
MANDATE = mandate(b"<mandate/>")
BSNS = ["123456782", "111222333", "010000008", "010000021", "010000033"]
CONFIG = EngineConfig(
    hospital_ura="00000099",
    hospital_name="Ziekenhuis Test",
    application_id="12345",
    system_uzi="000000123",
    max_attempts=3,
    backoff_base=dt.timedelta(seconds=1),
    workers=2,
    idle_poll_seconds=0.01,
)


def dispense(ext: str) -> Dispense:
    return Dispense(
        id=Identifier("2.16.528.1.1007.3.3.1234567.3", ext),
        dispensed_on=dt.date(2026, 10, 1),
        product=Product(code=Code("16778685", "2.16.840.1.113883.2.4.4.8", "PARACETAMOL 500MG")),
    )


def records(*exts: str) -> Outcome:
    return Outcome(
        OutcomeKind.RECORDS,
        sources=(
            SourceAnswer(
                organization_ura="00063703",
                organization_name="Apotheek",
                application_id="10011427",
                system_uzi="000277280",
                message_id="2.16.840.1.113883.2.4.6.6^1",
                status=SourceStatus.OK,
                dispenses=tuple(dispense(e) for e in exts),
            ),
        ),
    )


def appointment(n: int, bsn: str | None, clinic: str = "CARD", **kw: object) -> Appointment:
    patient = Patient(local_id=f"P{n}", bsn=Bsn(bsn) if bsn else None, bsn_verified=True)
    day = kw.get("day", dt.date(2026, 11, 24))
    start = dt.datetime.combine(day, dt.time(9, n), tzinfo=dt.UTC)  # type: ignore[arg-type]
    return Appointment(
        id=f"A{n}-{clinic}",
        patient=patient,
        clinic=clinic,
        start=start,
        appointment_type=str(kw.get("typ", "NP")),
        status=kw.get("status", AppointmentStatus.BOOKED),
    )  # type: ignore[arg-type]


def Clock() -> FakeClock:
    return FakeClock(NOW)


def make(engine: Engine, gateway: FakeLspGateway, clock: FakeClock) -> Prefetcher:
    throttle = Throttle(ThrottleConfig(rate_per_second=50, max_in_flight=2))
    return Prefetcher(
        runs=RunRepository(engine),
        dispenses=DispenseRepository(engine),
        gateway=gateway,
        limiter=throttle,
        config=CONFIG,
        clock=clock,
    )


@pytest.fixture
def day() -> list[Appointment]:
    return [
        appointment(1, BSNS[0]),
        appointment(1, BSNS[0], clinic="INT"),
        appointment(2, BSNS[1]),
        appointment(3, BSNS[2]),
        appointment(4, None),
        appointment(5, BSNS[3], typ="TEL"),
        appointment(6, BSNS[4]),
    ]


def test_run_end_to_end_and_rerun_adds_no_duplicates(
    migrated_engine: Engine, day: list[Appointment]
) -> None:
    gateway = FakeLspGateway(
        {
            BSNS[0]: [records("d1", "d2")],
            BSNS[1]: [records("d3")],
            BSNS[4]: [Outcome(OutcomeKind.NO_RECORDS)],
        }
    )
    clock = Clock()
    engine = make(migrated_engine, gateway, clock)
    prepared = engine.prepare(SCHEDULE, DAY, day, mandate=MANDATE)
    assert prepared.created and prepared.planned == 6 and prepared.to_query == 4
    report = engine.execute(prepared.run_id, SCHEDULE, MANDATE, clinic_day=DAY)
    assert report.stopped is None
    summary = report.summary
    assert summary.by_outcome == {"records": 2, "no_records": 1, "no_registrations": 1}
    assert summary.by_skip_reason == {"no_bsn": 1, "appointment_type_excluded": 1}
    assert gateway.calls_for(BSNS[0]) == 1  # two clinics, one query
    assert all(token == b"<mandate/>" for token in gateway.mandate_tokens)
    stored = DispenseRepository(migrated_engine)
    assert stored.count() == 3
    provenance = stored.for_patient(BSNS[0])[0].provenance
    assert provenance.responsible_uzi == OVERSEER.uzi_number
    assert provenance.run_id == prepared.run_id
    audit = AuditLog(migrated_engine).for_patient(BSNS[0])
    assert [e.event_type for e in audit] == ["lsp_query", "lsp_query_answer"]
    assert [e.outcome for e in audit] == ["sent", "records"]
    assert audit[0].authorisation_basis == "m1"
    # Same run again: a resume, nothing queried twice.
    again = engine.prepare(SCHEDULE, DAY, day, mandate=MANDATE)
    assert not again.created
    assert len(gateway.calls) == 4
    # A manual re-fetch of everybody adds no dispense row.
    manual = engine.prepare(
        SCHEDULE, DAY, day, mandate=MANDATE, kind="manual", fresh_for=dt.timedelta(0)
    )
    engine.execute(manual.run_id, SCHEDULE, MANDATE, clinic_day=DAY)
    assert len(gateway.calls) == 8
    assert stored.count() == 3


def test_transient_retried_then_final(migrated_engine: Engine, day: list[Appointment]) -> None:
    transient = Outcome(OutcomeKind.TRANSIENT, code="QABRTITI")
    gateway = FakeLspGateway({BSNS[0]: [transient, transient, records("d1")], BSNS[1]: [transient]})
    clock = Clock()
    engine = make(migrated_engine, gateway, clock)
    prepared = engine.prepare(SCHEDULE, DAY, day, mandate=MANDATE)
    report = engine.execute(prepared.run_id, SCHEDULE, MANDATE, clinic_day=DAY)
    assert gateway.calls_for(BSNS[0]) == 3
    assert gateway.calls_for(BSNS[1]) == CONFIG.max_attempts
    items = {i.patient_local_id: i for i in RunRepository(migrated_engine).items(prepared.run_id)}
    assert items["P1"].outcome_kind == "records"
    assert items["P2"].state.value == "failed"
    assert "gave up after 3 attempts: QABRTITI" in (items["P2"].outcome_detail or "")
    assert report.summary.by_state.get("failed") == 1


def test_protocol_bug_stops_the_run(migrated_engine: Engine, day: list[Appointment]) -> None:
    bug = Outcome(OutcomeKind.FAILED, code="SYN105", detail="required element missing")
    gateway = FakeLspGateway({b: [bug] for b in BSNS})
    engine = make(migrated_engine, gateway, Clock())
    engine.config = CONFIG  # workers=2: at most two items can be in flight when it stops
    prepared = engine.prepare(SCHEDULE, DAY, day, mandate=MANDATE)
    report = engine.execute(prepared.run_id, SCHEDULE, MANDATE, clinic_day=DAY)
    assert report.stopped is not None
    assert len(gateway.calls) <= 2
    assert report.summary.by_state.get("pending", 0) >= 2


def test_no_mandate_skips_everyone(migrated_engine: Engine, day: list[Appointment]) -> None:
    gateway = FakeLspGateway()
    engine = make(migrated_engine, gateway, Clock())
    prepared = engine.prepare(SCHEDULE, DAY, day, mandate=None)
    assert prepared.to_query == 0
    report = engine.execute(prepared.run_id, SCHEDULE, None, clinic_day=DAY)
    assert gateway.calls == []
    assert report.summary.by_skip_reason["mandate_missing"] == 4


def test_partial_answer_keeps_what_came_and_asks_again(
    migrated_engine: Engine, day: list[Appointment]
) -> None:
    def partial(ext: str) -> Outcome:
        return Outcome(
            OutcomeKind.RECORDS, sources=records(ext).sources, failed_sources=("URA 00011111",)
        )

    gateway = FakeLspGateway(
        {BSNS[0]: [partial("d1"), records("d1", "d2")], BSNS[1]: [partial("e1")]}
    )
    engine = make(migrated_engine, gateway, Clock())
    prepared = engine.prepare(SCHEDULE, DAY, day, mandate=MANDATE)
    engine.execute(prepared.run_id, SCHEDULE, MANDATE, clinic_day=DAY)
    assert gateway.calls_for(BSNS[0]) == 2
    assert gateway.calls_for(BSNS[1]) == CONFIG.max_attempts
    items = {i.patient_local_id: i for i in RunRepository(migrated_engine).items(prepared.run_id)}
    assert items["P1"].outcome_kind == "records"
    assert items["P1"].outcome_detail is None
    assert items["P2"].outcome_kind == "records"  # on the last attempt, what came is final
    assert "no data from URA 00011111" in (items["P2"].outcome_detail or "")
    stored = DispenseRepository(migrated_engine)
    assert {s.dispense.key[1] for s in stored.for_patient(BSNS[0])} == {"d1", "d2"}
    assert {s.dispense.key[1] for s in stored.for_patient(BSNS[1])} == {"e1"}


class FlakyStore(RunRepository):
    """The real store, but the first `failures` writes of an outcome find it locked."""

    def __init__(self, engine: Engine, failures: int) -> None:
        super().__init__(engine)
        self.failures = failures

    def record_outcome(self, *args: object, **kwargs: object) -> RecordResult:  # type: ignore[override]
        if self.failures > 0:
            self.failures -= 1
            raise StoreUnavailableError("database unavailable or busy")
        return super().record_outcome(*args, **kwargs)  # type: ignore[arg-type]


def test_short_database_outage_is_ridden_out(
    migrated_engine: Engine, day: list[Appointment]
) -> None:
    gateway = FakeLspGateway({BSNS[0]: [records("d1")]})
    clock = Clock()
    runs = FlakyStore(migrated_engine, failures=3)
    engine = Prefetcher(
        runs=runs,
        dispenses=DispenseRepository(migrated_engine),
        gateway=gateway,
        limiter=Throttle(ThrottleConfig(50, 2)),
        config=CONFIG,
        clock=clock,
    )
    prepared = engine.prepare(SCHEDULE, DAY, day, mandate=MANDATE)
    report = engine.execute(prepared.run_id, SCHEDULE, MANDATE, clinic_day=DAY)
    assert report.stopped is None
    assert len(gateway.calls) == 4  # nothing asked twice
    assert report.summary.by_state == {"done": 4, "skipped": 2}


def test_a_bug_stops_the_run_instead_of_finishing_it(
    migrated_engine: Engine, day: list[Appointment]
) -> None:
    class Broken(FakeLspGateway):
        def query(self, params: QueryParams, *, mandate_token: bytes | None) -> LspReply:
            raise ValueError("bug")

    engine = make(migrated_engine, Broken(), Clock())
    prepared = engine.prepare(SCHEDULE, DAY, day, mandate=MANDATE)
    report = engine.execute(prepared.run_id, SCHEDULE, MANDATE, clinic_day=DAY)
    assert report.stopped == "internal error (ValueError)"
    run = RunRepository(migrated_engine).get_run(prepared.run_id)
    assert run is not None
    assert run.state.value == "running"  # resumable, not "finished" with items lost


def test_crash_mid_run_resumes_without_loss(
    migrated_engine: Engine, day: list[Appointment]
) -> None:
    """A worker died holding an item (claimed, never recorded): the next start gives it
    back to the queue; every patient is queried once, nothing is lost."""
    gateway = FakeLspGateway({BSNS[0]: [records("d1")], BSNS[1]: [records("d2")]})
    clock = Clock()
    first = make(migrated_engine, gateway, clock)
    prepared = first.prepare(SCHEDULE, DAY, day, mandate=MANDATE)
    runs = RunRepository(migrated_engine)
    runs.start_run(prepared.run_id, clock.now())
    held = runs.claim_next(prepared.run_id, "crashed-worker", clock.now())
    assert held is not None
    clock.advance(20)  # longer than the lease (15 s), never renewed: the worker is gone
    report = make(migrated_engine, gateway, clock).execute(
        prepared.run_id, SCHEDULE, MANDATE, clinic_day=DAY
    )
    assert report.stopped is None
    assert report.summary.by_state == {"done": 4, "skipped": 2}
    assert sorted(p.bsn.value for p in gateway.calls) == sorted(
        [BSNS[0], BSNS[1], BSNS[2], BSNS[4]]
    )
    assert DispenseRepository(migrated_engine).count() == 2


def test_a_restart_holding_the_run_lock_reclaims_at_once(
    migrated_engine: Engine, day: list[Appointment]
) -> None:
    gateway = FakeLspGateway()
    clock = Clock()
    first = make(migrated_engine, gateway, clock)
    prepared = first.prepare(SCHEDULE, DAY, day, mandate=MANDATE)
    runs = RunRepository(migrated_engine)
    runs.start_run(prepared.run_id, clock.now())
    assert runs.claim_next(prepared.run_id, "killed", clock.now()) is not None
    report = make(migrated_engine, gateway, clock).execute(
        prepared.run_id, SCHEDULE, MANDATE, clinic_day=DAY, exclusive=True
    )
    assert report.reclaimed == 1
    assert report.summary.by_state == {"done": 4, "skipped": 2}
    assert clock.now() - NOW < dt.timedelta(seconds=15)  # no wait for the lease


def test_a_run_past_its_window_ends_incomplete_with_counts(
    migrated_engine: Engine, day: list[Appointment]
) -> None:
    gateway = FakeLspGateway()
    clock = Clock()
    engine = make(migrated_engine, gateway, clock)
    prepared = engine.prepare(SCHEDULE, DAY, day, mandate=MANDATE)
    report = engine.execute(
        prepared.run_id, SCHEDULE, MANDATE, clinic_day=DAY, deadline=clock.now()
    )
    assert report.incomplete
    assert report.stopped is None
    assert gateway.calls == []
    assert report.summary.by_state == {"pending": 4, "skipped": 2}
    record = RunRepository(migrated_engine).get_run(prepared.run_id)
    assert record is not None
    assert record.state is RunState.INCOMPLETE
    assert record.counts is not None
    assert record.counts["by_state"] == {"pending": 4, "skipped": 2}
    # The next start resumes it.
    again = engine.execute(prepared.run_id, SCHEDULE, MANDATE, clinic_day=DAY)
    assert not again.incomplete
    assert again.summary.by_state == {"done": 4, "skipped": 2}


def test_the_window_closes_at_run_until_amsterdam_time() -> None:
    # Runs at 19:00 the evening before, must be done by 06:00 on the clinic day.
    end = run_deadline(dt.time(19, 0), dt.time(6, 0), DAY, 1)
    assert end == dt.datetime(2026, 11, 24, 5, 0, tzinfo=dt.UTC)  # 06:00 CET
    assert run_deadline(dt.time(19, 0), dt.time(23, 0), DAY, 1) == dt.datetime(
        2026, 11, 23, 22, 0, tzinfo=dt.UTC
    )
    assert run_deadline(dt.time(19, 0), None, DAY, 1) is None


def test_schedule_fresh_hours_zero_requeries_a_patient_fetched_an_hour_ago(
    migrated_engine: Engine,
) -> None:
    # [run] fresh_hours (CONFIG.fresh_for, 12 h) would skip the patient; the schedule's 0 wins.
    gateway = FakeLspGateway({BSNS[0]: [records("d1"), records("d1")]})
    clock = Clock()
    engine = make(migrated_engine, gateway, clock)
    # fetched an hour ago for the next clinic day (the same night's query would make the
    # later schedule's a `duplicate` instead: see the test below)
    later = DAY + dt.timedelta(days=1)
    first = engine.prepare(SCHEDULE, later, [appointment(1, BSNS[0], day=later)], mandate=MANDATE)
    engine.execute(first.run_id, SCHEDULE, MANDATE, clinic_day=later)
    assert gateway.calls_for(BSNS[0]) == 1
    clock.advance(3600)
    both = dataclasses.replace(MANDATE, schedules=frozenset({"card-default", "card-eager"}))
    default = dataclasses.replace(SCHEDULE, id="card-default")
    default_run = engine.prepare(default, DAY, [appointment(1, BSNS[0])], mandate=both)
    assert engine.runs.summary(default_run.run_id).by_skip_reason == {"fresh": 1}  # 12 h default
    eager = dataclasses.replace(SCHEDULE, id="card-eager", fresh_hours=0)
    again = engine.prepare(eager, DAY, [appointment(1, BSNS[0])], mandate=both)
    assert (again.planned, again.to_query) == (1, 1)
    engine.execute(again.run_id, eager, both, clinic_day=DAY)
    assert gateway.calls_for(BSNS[0]) == 2


def test_overlapping_schedules_query_a_patient_once_the_second_points_at_the_first(
    migrated_engine: Engine,
) -> None:
    gateway = FakeLspGateway({BSNS[0]: [records("d1")], BSNS[1]: [records("d2")]})
    engine = make(migrated_engine, gateway, Clock())
    both = dataclasses.replace(MANDATE, schedules=frozenset({"card", "int"}))
    card = dataclasses.replace(SCHEDULE, id="card")
    internal = dataclasses.replace(SCHEDULE, id="int")
    first = engine.prepare(card, DAY, [appointment(1, BSNS[0])], mandate=both)
    day = [appointment(1, BSNS[0], "INT"), appointment(2, BSNS[1], "INT")]
    second = engine.prepare(internal, DAY, day, mandate=both)
    assert (first.to_query, second.to_query) == (1, 1)
    assert engine.runs.summary(second.run_id).by_skip_reason == {"duplicate": 1}
    engine.execute(first.run_id, card, both, clinic_day=DAY)
    engine.execute(second.run_id, internal, both, clinic_day=DAY)
    assert (gateway.calls_for(BSNS[0]), gateway.calls_for(BSNS[1])) == (1, 1)
    # a forced re-fetch (fresh_for given, as the desk's) is not a duplicate
    forced = engine.prepare(
        internal, DAY, day[:1], mandate=both, kind="manual", fresh_for=dt.timedelta(0)
    )
    assert forced.to_query == 1


@pytest.mark.parametrize(("look_back_days", "expected_days"), [(30, 30), (None, 365)])
def test_schedule_look_back_days_sets_the_query_window(
    migrated_engine: Engine, look_back_days: int | None, expected_days: int
) -> None:
    # None: the settings' default ([lsp] look_back_days, EngineConfig.look_back_days).
    gateway = FakeLspGateway({BSNS[0]: [records("d1")]})
    engine = make(migrated_engine, gateway, Clock())
    sched = dataclasses.replace(SCHEDULE, look_back_days=look_back_days)
    prepared = engine.prepare(sched, DAY, [appointment(1, BSNS[0])], mandate=MANDATE)
    engine.execute(prepared.run_id, sched, MANDATE, clinic_day=DAY)
    [params] = gateway.calls
    assert params.look_back_from == DAY - dt.timedelta(days=expected_days)
