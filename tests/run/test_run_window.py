"""The run of a schedule's day, on the real store (SQLite and PostgreSQL) with a fake clock:
the window's "not before" (wait, or refuse), and a day whose run already finished is not
run again unless asked (`again`) or the appointments bring someone new."""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from prefetch.clock import FakeClock
from prefetch.demo.setup import demo_schedule, ensure_mandate, ensure_pki
from prefetch.domain.bsn import Bsn
from prefetch.domain.localtime import AMSTERDAM
from prefetch.domain.people import Appointment, AppointmentStatus, Patient
from prefetch.domain.run import EngineConfig, RunKind, RunState
from prefetch.domain.schedule import Schedule
from prefetch.domain.timing import window_opens
from prefetch.lsp.fake import FakeLspGateway
from prefetch.run_day import RunRequest, RunServices, WindowNotOpenError, run_schedule_day
from prefetch.store.dispenses import DispenseRepository
from prefetch.store.locks import SqlLeaderLock
from prefetch.store.mandates import MandateRepository
from prefetch.store.runs import RunRepository
from prefetch.throttle import Throttle, ThrottleConfig

BSNS = ["123456782", "111222333", "010000008"]
# The clinic day after tomorrow: the fake times (its eve, 18:00-23:00) lie ahead of the real
# time at which the dev PKI and the mandate (valid from an hour before) are made. With
# tomorrow's day the eve was today, and from 18:00 UTC on its 18:00 came before the
# mandate's start: "mandate is expired or not yet valid", every evening.
DAY = dt.datetime.now(AMSTERDAM).date() + dt.timedelta(days=2)
ON_THE_EVE = DAY - dt.timedelta(days=1)


def at_local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=AMSTERDAM).astimezone(dt.UTC)


@pytest.fixture(scope="module")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("window-pki")
    ensure_pki(directory, key_size=2048)
    return directory


@dataclasses.dataclass
class Day:
    schedule: Schedule
    services: RunServices
    clock: FakeClock
    gateway: FakeLspGateway
    runs: RunRepository

    def request(self, appointments: list[Appointment], **kw: object) -> RunRequest:
        return RunRequest(self.schedule, DAY, appointments, **kw)  # type: ignore[arg-type]


def appointments(bsns: list[str]) -> list[Appointment]:
    return [
        Appointment(
            id=f"A{n}",
            patient=Patient(local_id=f"P{n}", bsn=Bsn(bsn), bsn_verified=True),
            clinic="CARD",
            start=dt.datetime.combine(DAY, dt.time(9, n), tzinfo=AMSTERDAM),
            appointment_type="NP",
            status=AppointmentStatus.BOOKED,
        )
        for n, bsn in enumerate(bsns)
    ]


@pytest.fixture
def day(migrated_engine: Engine, pki_dir: Path) -> Day:
    pki, passphrase = ensure_pki(pki_dir, key_size=2048)
    schedule = dataclasses.replace(
        demo_schedule(pki),
        clinics=frozenset({"CARD"}),
        run_at=dt.time(19, 30),
        run_from=dt.time(19, 0),
        run_until=dt.time(23, 0),
    )
    clock = FakeClock(at_local(ON_THE_EVE, 18, 0))
    mandates = MandateRepository(migrated_engine)
    registry = types.SimpleNamespace(mandates=mandates)  # the part of `Stores` it uses
    ensure_mandate(registry, pki, passphrase, schedule, dt.datetime.now(dt.UTC))  # type: ignore[arg-type]
    gateway = FakeLspGateway()
    runs = RunRepository(migrated_engine)
    locks = SqlLeaderLock(migrated_engine, clock=clock)
    services = RunServices(
        runs=runs,
        dispenses=DispenseRepository(migrated_engine),
        mandates=mandates,
        gateway=gateway,
        limiter=Throttle(ThrottleConfig(rate_per_second=50, max_in_flight=2), clock),
        trust=pki.trust_store(),
        config=EngineConfig(
            hospital_ura=pki.hospital_ura,
            hospital_name=pki.hospital_name,
            application_id="10008890",
            system_uzi=pki.hospital.uzi_number or "",
            idle_poll_seconds=0.01,
            workers=1,  # one worker: fake time moves only by its own sleeps
        ),
        clock=clock,
        locks=locks,
    )
    return Day(schedule, services, clock, gateway, runs)


def test_the_window_opens_at_run_from_on_the_eve_of_the_clinic_day(day: Day) -> None:
    assert window_opens(day.schedule, DAY) == at_local(ON_THE_EVE, 19, 0)
    across = dataclasses.replace(day.schedule, run_at=dt.time(0, 30), run_from=dt.time(22, 0))
    assert window_opens(across, DAY) == at_local(ON_THE_EVE - dt.timedelta(days=1), 22, 0)
    assert window_opens(dataclasses.replace(day.schedule, run_from=None), DAY) is None


def test_a_start_before_the_window_waits_for_it_then_runs(day: Day) -> None:
    stages: list[str] = []
    result = run_schedule_day(day.services, day.request(appointments(BSNS), on_stage=stages.append))
    assert result.status == "complete"
    assert len(day.gateway.calls) == 3
    # nothing was sent before the window opened: the clock stood at 18:00 until the wait
    record = day.runs.get_run(result.run_id)
    assert record is not None and record.started_at is not None
    assert record.started_at >= at_local(ON_THE_EVE, 19, 0)
    assert any("waiting until the window opens" in s and "19:00" in s for s in stages)


def test_refused_before_the_window_when_told_not_to_wait(day: Day) -> None:
    with pytest.raises(WindowNotOpenError, match=r"opens at .* 19:00"):
        run_schedule_day(day.services, day.request(appointments(BSNS), before_window="refuse"))
    assert day.gateway.calls == []
    assert day.runs.find_run(day.schedule.id, DAY, RunKind.SCHEDULED) is None
    assert day.clock.now() == at_local(ON_THE_EVE, 18, 0)
    # inside the window nothing waits and nothing is refused
    day.clock.advance(3600)
    result = run_schedule_day(day.services, day.request(appointments(BSNS), before_window="refuse"))
    assert result.status == "complete"
    assert day.clock.now() < at_local(ON_THE_EVE, 19, 1)


def test_a_desk_refetch_ignores_the_window(day: Day) -> None:
    result = run_schedule_day(
        day.services,
        day.request(appointments(BSNS[:1]), kind=RunKind.MANUAL, fresh_for=dt.timedelta(0)),
    )
    assert result.status == "complete"
    assert day.clock.now() < at_local(ON_THE_EVE, 18, 1)


def test_a_finished_day_is_not_run_again_unless_asked_or_someone_new_comes(day: Day) -> None:
    day.clock.advance(3600)  # 19:00, the window is open
    first = run_schedule_day(day.services, day.request(appointments(BSNS[:2])))
    assert first.status == "complete" and len(day.gateway.calls) == 2
    record = day.runs.get_run(first.run_id)
    assert record is not None and record.finished_at is not None
    late = run_schedule_day(day.services, day.request(appointments(BSNS[:2])))
    assert late.status == "already_ran"
    assert late.run_id == first.run_id and late.already_ran == record.finished_at
    assert len(day.gateway.calls) == 2  # nothing sent
    # a later export with a new patient: the run takes them in and queries only them
    extended = run_schedule_day(day.services, day.request(appointments(BSNS)))
    assert extended.already_ran is None and extended.status == "complete"
    assert extended.run_id == first.run_id
    assert [p.bsn.value for p in day.gateway.calls[2:]] == [BSNS[2]]
    again_run = run_schedule_day(day.services, day.request(appointments(BSNS), again=True))
    assert again_run.already_ran is None and again_run.run_id != first.run_id
    again_record = day.runs.get_run(again_run.run_id)
    assert again_record is not None and again_record.kind is RunKind.MANUAL
    assert again_record.state is RunState.FINISHED
    # all three were fetched minutes ago: fresh, so nobody is queried twice
    assert again_run.to_query == 0 and len(day.gateway.calls) == 3
