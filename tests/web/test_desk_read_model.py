"""The worklist and patient read models on both backends (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

from desk_helpers import DAY, DESK_NOW, seed_day
from sqlalchemy import Engine

from prefetch.web.labels import Status
from prefetch.web.patient import PatientQuery
from prefetch.web.worklist import Slot, WorklistQuery


def test_worklist_and_patient_view(migrated_engine: Engine) -> None:
    day = seed_day(migrated_engine, patients=12)
    slots = {"P1": [Slot(dt.datetime(2026, 11, 24, 8, 30, tzinfo=dt.UTC), "CARD")]}
    query = WorklistQuery(migrated_engine)
    assert query.days(DAY) == [DAY]
    worklist = query.worklist(DAY, poli=None, status=None, slots=slots)
    assert worklist.total == 12
    assert worklist.counts[Status.FETCHED] == 2
    assert worklist.counts[Status.PENDING] == 5  # P6 and the four extra patients
    assert worklist.rows[0].patient_local_id == "P1"  # the only one with a time comes first
    assert worklist.rows[0].time == "09:30"  # Amsterdam time
    assert worklist.run is not None
    assert worklist.run.state == "bezig"
    failed = query.worklist(DAY, poli="INT", status=Status.FAILED, slots={})
    assert [r.patient_local_id for r in failed.rows] == ["P5"]
    view = PatientQuery(migrated_engine).view(day.items["P1"], now=DESK_NOW)
    assert view is not None
    assert [g.name for g in view.groups] == ["OMEPRAZOL 20MG CAPSULE", "METOPROLOL 50MG TABLET"]
    assert len(view.groups[1].earlier) == 1
    assert view.data_age == "23 uur"
    partial = PatientQuery(migrated_engine).view(day.items["P7"], now=DESK_NOW)
    assert partial is not None
    assert partial.silent_pharmacies == ["Apotheek De Brug"]
