"""The re-fetch seam's refusals, before anything is planned or sent."""

from __future__ import annotations

import datetime as dt

from samples import schedule

from prefetch.errors import MandateError
from prefetch.run_day import RunRequest, RunResult
from prefetch.store.tables import RunItemRow, RunRow
from prefetch.web.seams import Refetcher

ITEM = RunItemRow(
    id=7, run_id="card:2026-11-24", patient_local_id="P1", bsn="111222333", clinics=["CARD"]
)
RUN = RunRow(id="card:2026-11-24", schedule_id="card", clinic_day=dt.date(2026, 11, 24))


def _never(_request: RunRequest) -> RunResult:
    raise AssertionError("nothing may run")


def test_unknown_schedule_is_refused() -> None:
    refetch = Refetcher(schedules=lambda _id: None, appointments=lambda *_: [], run=_never)
    result = refetch(ITEM, RUN)
    assert not result.ok
    assert result.message == "Opnieuw ophalen kan niet: schema 'card' is niet bekend."


def test_no_valid_mandate_is_refused_with_plain_words() -> None:
    seen: list[RunRequest] = []

    def refused(request: RunRequest) -> RunResult:
        seen.append(request)
        raise MandateError("mandate expired", mandate_id="m1")

    refetch = Refetcher(schedules=lambda _id: schedule(), appointments=lambda *_: [], run=refused)
    result = refetch(ITEM, RUN)
    assert result.message == "Opnieuw ophalen kan niet: geen geldig mandaat."
    # without the appointment in the source, the run knows the patient as the item did
    (appointment,) = seen[0].appointments
    assert appointment.patient.local_id == "P1"
    assert appointment.patient.bsn is not None
    assert appointment.clinic == "CARD"
    assert seen[0].fresh_for == dt.timedelta(0)


def test_no_bsn_is_refused() -> None:
    no_bsn = RunItemRow(id=8, run_id=RUN.id, patient_local_id="P8", bsn=None, clinics=["INT"])
    refetch = Refetcher(schedules=lambda _id: schedule(), appointments=lambda *_: [], run=_never)
    assert refetch(no_bsn, RUN).message == "Opnieuw ophalen kan niet: geen BSN bekend."
