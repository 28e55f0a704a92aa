"""Acceptance 5 of issue 9: a later, larger export for a day that already ran adds only its
new patients to that day's run; a patient cancelled since is not queried if not yet sent."""

from __future__ import annotations

from samples import DAY, mandate, schedule
from sqlalchemy.engine import Engine
from test_engine import BSNS, Clock, appointment, make

from prefetch.domain.outcome import Outcome, OutcomeKind
from prefetch.domain.people import AppointmentStatus
from prefetch.lsp.fake import FakeLspGateway
from prefetch.store.runs import RunRepository

SCHEDULE = schedule(frozenset({"CARD"}))
MANDATE = mandate(b"<mandate/>")
NONE = Outcome(OutcomeKind.NO_RECORDS)


def test_larger_export_for_a_finished_day_queries_only_new_patients(
    migrated_engine: Engine,
) -> None:
    gateway = FakeLspGateway({b: [NONE, NONE] for b in BSNS})
    engine = make(migrated_engine, gateway, Clock())
    first = [appointment(1, BSNS[0]), appointment(2, BSNS[1])]
    prepared = engine.prepare(SCHEDULE, DAY, first, mandate=MANDATE)
    engine.execute(prepared.run_id, SCHEDULE, MANDATE, clinic_day=DAY)
    assert [gateway.calls_for(b) for b in BSNS[:2]] == [1, 1]

    larger = [*first, appointment(3, BSNS[2]), appointment(4, BSNS[3])]
    again = engine.prepare(SCHEDULE, DAY, larger, mandate=MANDATE)
    assert again.run_id == prepared.run_id and not again.created and again.planned == 4
    report = engine.execute(again.run_id, SCHEDULE, MANDATE, clinic_day=DAY)
    assert report.stopped is None and report.summary.total == 4
    assert [gateway.calls_for(b) for b in BSNS[:4]] == [1, 1, 1, 1]  # only the new ones

    same = engine.prepare(SCHEDULE, DAY, larger, mandate=MANDATE)  # a third time: nothing new
    engine.execute(same.run_id, SCHEDULE, MANDATE, clinic_day=DAY)
    assert [gateway.calls_for(b) for b in BSNS[:4]] == [1, 1, 1, 1]


def test_cancelled_since_is_not_queried_when_not_yet_sent(migrated_engine: Engine) -> None:
    gateway = FakeLspGateway({b: [NONE] for b in BSNS})
    engine = make(migrated_engine, gateway, Clock())
    day = [appointment(1, BSNS[0]), appointment(2, BSNS[1])]
    prepared = engine.prepare(SCHEDULE, DAY, day, mandate=MANDATE)  # planned, nothing sent
    cancelled = [day[0], appointment(2, BSNS[1], status=AppointmentStatus.CANCELLED)]
    engine.prepare(SCHEDULE, DAY, cancelled, mandate=MANDATE)
    report = engine.execute(prepared.run_id, SCHEDULE, MANDATE, clinic_day=DAY)
    assert gateway.calls_for(BSNS[0]) == 1 and gateway.calls_for(BSNS[1]) == 0
    assert report.summary.by_skip_reason == {"cancelled": 1}
    items = {i.patient_local_id: i for i in RunRepository(migrated_engine).items(prepared.run_id)}
    assert items["P2"].skip_reason == "cancelled"
