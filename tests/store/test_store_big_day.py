"""Big days: run items written in chunks from a stream, the last fetch of many patients
in a few queries, and the set-based dispense upsert's edge cases."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from store_samples import BSN_A, BSN_B, BSN_C, T0, audit, dispense, provenance

from prefetch.domain.outcome import OutcomeKind
from prefetch.errors import InvalidValueError
from prefetch.store._support import Sessions
from prefetch.store.dispenses import upsert_dispenses
from prefetch.store.records import ItemState, NewItem
from prefetch.store.repositories import DispenseRepository, RunRepository

DAY = dt.date(2026, 11, 21)
MANY = 4_500  # more than two INSERT chunks of run items


def stream(n: int, *, then: NewItem | None = None) -> Iterator[NewItem]:
    for i in range(n):
        if i % 7 == 0:
            yield NewItem(f"p{i:05d}", None, ("CARD",), skip_reason="no_bsn")
        else:
            yield NewItem(f"p{i:05d}", BSN_A, ("CARD",))
    if then is not None:
        yield then


def test_a_run_is_created_from_a_stream_of_many_items(migrated_engine: Engine) -> None:
    runs = RunRepository(migrated_engine)
    assert runs.create_run("r1", "s", DAY, "scheduled", T0, stream(MANY))
    items = runs.items("r1")
    assert [i.patient_local_id for i in items] == [f"p{i:05d}" for i in range(MANY)]
    skipped = sum(1 for i in range(MANY) if i % 7 == 0)
    assert runs.summary("r1").by_state == {"skipped": skipped, "pending": MANY - skipped}


def test_a_patient_twice_in_a_late_chunk_writes_nothing(migrated_engine: Engine) -> None:
    runs = RunRepository(migrated_engine)
    with pytest.raises(InvalidValueError):
        runs.create_run(
            "r1", "s", DAY, "scheduled", T0, stream(MANY, then=NewItem("p00001", None, ()))
        )
    assert runs.get_run("r1") is None
    assert runs.find_run("s", DAY, "scheduled") is None


def test_extending_from_a_stream_adds_and_withdraws_across_chunks(migrated_engine: Engine) -> None:
    runs = RunRepository(migrated_engine)
    assert runs.create_run("r1", "s", DAY, "scheduled", T0, stream(MANY))
    claimed = runs.claim_next("r1", "w1", T0)  # p00001: in flight, not withdrawn
    assert claimed is not None and claimed.patient_local_id == "p00001"
    later = T0 + dt.timedelta(hours=1)

    def export() -> Iterator[NewItem]:
        for item in stream(MANY + 10):
            if item.patient_local_id in {"p00001", "p00002", "p04000", "p04502"}:
                yield dataclasses.replace(item, skip_reason="cancelled")
            else:
                yield item

    # p00002 and p04000 are withdrawn; p04502 is new (and skipped as cancelled).
    assert runs.extend_run("r1", export(), later) == (10, 2)
    by_id = {i.patient_local_id: i for i in runs.items("r1")}
    assert by_id["p00001"].state is ItemState.IN_FLIGHT
    assert (by_id["p04000"].state, by_id["p04000"].skip_reason) == (ItemState.SKIPPED, "cancelled")
    assert by_id["p04000"].updated_at == later
    assert by_id["p04502"].skip_reason == "cancelled"
    assert len(by_id) == MANY + 10


def test_last_fetched_at_many_agrees_with_one_at_a_time(migrated_engine: Engine) -> None:
    runs, store = RunRepository(migrated_engine), DispenseRepository(migrated_engine)
    with Sessions(migrated_engine).write() as session:
        upsert_dispenses(session, BSN_A, [(dispense("a1"), provenance(T0))])
        upsert_dispenses(session, BSN_B, [(dispense("b1"), provenance(T0))])
    # BSN_B later answered "no records" through a run; BSN_C only failed.
    assert runs.create_run("r1", "s", DAY, "scheduled", T0, [NewItem("p1", BSN_B, ("CARD",))])
    assert runs.create_run("r2", "s2", DAY, "scheduled", T0, [NewItem("p1", BSN_C, ("CARD",))])
    later = T0 + dt.timedelta(hours=2)
    for run_id, kind in (("r1", OutcomeKind.NO_RECORDS), ("r2", OutcomeKind.FAILED)):
        claimed = runs.claim_next(run_id, "w1", T0)
        assert claimed is not None
        runs.record_outcome(
            claimed.id,
            outcome_kind=kind,
            outcome_code=None,
            detail=None,
            dispenses=[],
            audit=audit(claimed.bsn, at=later),
        )
    # More BSNs than one IN list, the known ones in different chunks.
    others = [f"{n:09d}" for n in range(200_000_000, 200_001_200)]
    asked = [others[0], BSN_A, *others[1:700], BSN_B, *others[700:], BSN_C]
    found = store.last_fetched_at_many(asked)
    assert found == {BSN_A: T0, BSN_B: later}
    assert all(store.last_fetched_at(b) == found.get(b) for b in (BSN_A, BSN_B, BSN_C))
    assert store.last_fetched_at_many([]) == {}


def test_upsert_of_rows_without_optional_values(migrated_engine: Engine) -> None:
    """Columns that are empty in every row (a whole array of NULLs on PostgreSQL) and text
    outside ASCII round-trip; counts stay right when some rows are older."""
    store = DispenseRepository(migrated_engine)
    bare = [dataclasses.replace(dispense(f"n{i}", day=None), product=None) for i in range(3)]
    prov = dataclasses.replace(provenance(T0, run_id=None), pharmacy_name="Apotheek Zoë 't Hoen")
    prov = dataclasses.replace(prov, batch_message_id=None, item_message_id=None)
    sessions = Sessions(migrated_engine)
    with sessions.write() as session:
        result = upsert_dispenses(session, BSN_A, [(d, prov) for d in bare])
    assert (result.inserted, result.updated) == (3, 0)
    stored = store.for_patient(BSN_A)
    assert {s.dispense for s in stored} == set(bare)
    assert all(s.provenance == prov for s in stored)
    newer = dataclasses.replace(prov, fetched_at=T0 + dt.timedelta(hours=1))
    older = dataclasses.replace(prov, fetched_at=T0 - dt.timedelta(hours=1))
    with sessions.write() as session:
        pairs = [(bare[0], newer), (bare[1], older), (dispense("n9"), older)]
        result = upsert_dispenses(session, BSN_A, pairs)
    assert (result.inserted, result.updated) == (1, 1)  # n1 is older: left alone, not counted
    first = {s.dispense.key: s.first_fetched_at for s in store.for_patient(BSN_A)}
    assert first[bare[0].key] == T0 and first[dispense("n9").key] == T0 - dt.timedelta(hours=1)
