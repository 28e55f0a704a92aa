"""Dispense upsert (idempotent, provenance to the latest fetch) and atomic recording."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from store_samples import BSN_A, BSN_B, T0, audit, dispense, items, provenance, run_workers

from prefetch.domain.outcome import OutcomeKind
from prefetch.errors import StopError
from prefetch.store.audit import AuditLog
from prefetch.store.records import ItemState, NewItem
from prefetch.store.repositories import DispenseRepository, RunRepository
from prefetch.store.tables import DispenseRow

DAY = dt.date(2026, 11, 21)
_runs = itertools.count(1)


def _queued_item(runs: RunRepository, bsn: str = BSN_A) -> int:
    run_id = f"run-{next(_runs)}"
    assert runs.create_run(run_id, run_id, DAY, "scheduled", T0, [NewItem("p1", bsn, ("CARD",))])
    claimed = runs.claim_next(run_id, "w1", T0)
    assert claimed is not None
    return claimed.id


def _record(runs: RunRepository, pairs: list, bsn: str = BSN_A) -> tuple[int, int]:  # type: ignore[type-arg]
    item_id = _queued_item(runs, bsn)
    result = runs.record_outcome(
        item_id,
        outcome_kind=OutcomeKind.RECORDS,
        outcome_code=None,
        detail=None,
        dispenses=pairs,
        audit=audit(bsn),
    )
    return result.inserted, result.updated


def test_same_dispense_twice_is_one_row(migrated_engine: Engine) -> None:
    runs, store = RunRepository(migrated_engine), DispenseRepository(migrated_engine)
    assert _record(runs, [(dispense("d1"), provenance())]) == (1, 0)
    assert _record(runs, [(dispense("d1"), provenance())]) == (0, 1)
    # Twice in one answer (two pharmacy items repeating it) is still one row.
    assert _record(runs, [(dispense("d1"), provenance()), (dispense("d1"), provenance())]) == (0, 1)
    assert store.count() == 1
    # No extension and an empty extension are the same key; another root is another key.
    assert _record(runs, [(dispense(None), provenance())]) == (1, 0)
    assert _record(runs, [(dispense(""), provenance())]) == (0, 1)
    assert _record(runs, [(dispense("d1", root="2.16.528.1.1007.3.3.9.3"), provenance())]) == (1, 0)
    assert store.count() == 3


def test_provenance_moves_to_the_latest_fetch_and_first_fetch_is_kept(
    migrated_engine: Engine,
) -> None:
    runs, store = RunRepository(migrated_engine), DispenseRepository(migrated_engine)
    first, second = T0, T0 + dt.timedelta(days=1)
    _record(runs, [(dispense("d1", product="111"), provenance(first, query="q1", run_id="r1"))])
    _record(
        runs,
        [
            (
                dispense("d1", product="222"),
                provenance(second, query="q2", run_id="r2", pharmacy="Apotheek Nieuw"),
            )
        ],
    )
    [stored] = store.for_patient(BSN_A)
    assert stored.provenance == provenance(
        second, query="q2", run_id="r2", pharmacy="Apotheek Nieuw"
    )
    assert stored.first_fetched_at == first
    assert stored.dispense == dispense("d1", product="222")
    # A late answer from an older fetch does not overwrite the newer one.
    assert _record(runs, [(dispense("d1", product="333"), provenance(first, query="q0"))]) == (0, 0)
    [stored] = store.for_patient(BSN_A)
    assert stored.provenance.query_id.endswith("q2")
    assert stored.dispense.product is not None
    assert stored.dispense.product.code.code == "222"
    with migrated_engine.connect() as connection:
        row = connection.execute(select(DispenseRow.product_code, DispenseRow.run_id)).one()
    assert tuple(row) == ("222", "r2")


def test_for_patient_round_trips_dispense_and_provenance(migrated_engine: Engine) -> None:
    runs, store = RunRepository(migrated_engine), DispenseRepository(migrated_engine)
    old = dispense("d-old", day=dt.date(2025, 1, 1))
    new = dispense("d-new", day=dt.date(2026, 10, 1))
    undated = dispense("d-undated", day=None)
    _record(runs, [(old, provenance()), (undated, provenance()), (new, provenance())])
    _record(runs, [(dispense("other"), provenance())], bsn=BSN_B)
    stored = store.for_patient(BSN_A)
    assert [s.dispense for s in stored] == [new, old, undated]  # newest first, undated last
    assert all(s.provenance == provenance() and s.patient_bsn == BSN_A for s in stored)
    assert BSN_A not in repr(stored[0])
    assert [s.dispense.key for s in store.for_patient(BSN_B)] == [dispense("other").key]


def test_last_fetched_at_counts_answers_without_records(migrated_engine: Engine) -> None:
    runs, store = RunRepository(migrated_engine), DispenseRepository(migrated_engine)
    assert store.last_fetched_at(BSN_A) is None
    _record(runs, [(dispense("d1"), provenance(T0))])
    assert store.last_fetched_at(BSN_A) == T0
    later = T0 + dt.timedelta(hours=3)
    item_id = _queued_item(runs, BSN_A)
    runs.record_outcome(
        item_id,
        outcome_kind=OutcomeKind.NO_RECORDS,
        outcome_code="NF",
        detail=None,
        dispenses=[],
        audit=audit(BSN_A, at=later),
    )
    assert store.last_fetched_at(BSN_A) == later
    # A failed query does not make the data fresh.
    item_id = _queued_item(runs, BSN_A)
    runs.record_outcome(
        item_id,
        outcome_kind=OutcomeKind.FAILED,
        outcome_code=None,
        detail=None,
        dispenses=[],
        audit=audit(BSN_A, at=later + dt.timedelta(hours=1)),
    )
    assert store.last_fetched_at(BSN_A) == later
    assert store.last_fetched_at(BSN_B) is None


def test_a_failing_audit_insert_persists_nothing(migrated_engine: Engine) -> None:
    runs, store = RunRepository(migrated_engine), DispenseRepository(migrated_engine)
    log = AuditLog(migrated_engine)
    assert runs.create_run("r1", "s", DAY, "scheduled", T0, items(1))
    claimed = runs.claim_next("r1", "w1", T0)
    assert claimed is not None
    log.append(audit(event_id="taken"))
    before = runs.items("r1")
    with pytest.raises(StopError) as info:
        runs.record_outcome(
            claimed.id,
            outcome_kind=OutcomeKind.RECORDS,
            outcome_code="OK",
            detail=None,
            dispenses=[(dispense("d1"), provenance()), (dispense("d2"), provenance())],
            audit=audit(claimed.bsn, event_id="taken"),
        )
    assert claimed.bsn not in str(info.value)
    assert store.count() == 0
    assert runs.items("r1") == before
    assert runs.items("r1")[0].state is ItemState.IN_FLIGHT
    assert len(log.recent(10)) == 1
    # The same outcome with a fresh audit event goes through.
    runs.record_outcome(
        claimed.id,
        outcome_kind=OutcomeKind.RECORDS,
        outcome_code="OK",
        detail=None,
        dispenses=[(dispense("d1"), provenance())],
        audit=audit(claimed.bsn),
    )
    assert store.count() == 1


_keys = st.sampled_from(["a", "b", "c", "d", "e"])
_offsets = st.integers(min_value=0, max_value=10_000)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batches=st.lists(st.lists(st.tuples(_keys, _offsets), max_size=6), min_size=1, max_size=4))
def test_upsert_property_one_row_per_id_with_latest_fetch(
    migrated_engine: Engine, batches: list[list[tuple[str, int]]]
) -> None:
    prefix = f"h{next(_runs)}-"  # examples share the database: keep their keys apart
    runs = RunRepository(migrated_engine)
    latest: dict[str, int] = {}
    first: dict[str, int] = {}
    for batch in batches:
        pairs = [
            (dispense(prefix + key), provenance(T0 + dt.timedelta(seconds=off)))
            for key, off in batch
        ]
        _record(runs, pairs)
        for key, off in batch:
            latest[key] = max(latest.get(key, off), off)
        for key in {k for k, _ in batch}:
            first.setdefault(key, min(off for k, off in batch if k == key))
    with migrated_engine.connect() as connection:
        rows = connection.execute(
            select(
                DispenseRow.id_extension, DispenseRow.fetched_at, DispenseRow.first_fetched_at
            ).where(DispenseRow.id_extension.startswith(prefix))
        ).all()
        n_rows = connection.execute(
            select(func.count())
            .select_from(DispenseRow)
            .where(DispenseRow.id_extension.startswith(prefix))
        ).scalar_one()
    assert n_rows == len(latest)
    for ext, fetched_at, first_fetched_at in rows:
        key = ext.removeprefix(prefix)
        assert fetched_at == T0 + dt.timedelta(seconds=latest[key])
        assert first_fetched_at == T0 + dt.timedelta(seconds=first[key])


def test_concurrent_outcomes_with_overlapping_dispenses(
    database_url: str, migrated_engine: Engine
) -> None:
    """Workers on several machines record answers that share dispenses: no deadlock, no
    duplicate, every outcome stored."""
    n_workers, per_worker = 3, 8
    runs = RunRepository(migrated_engine)
    assert runs.create_run("r1", "s", DAY, "scheduled", T0, items(n_workers * per_worker))

    def work(k: int, engine: Engine) -> None:
        repo = RunRepository(engine)
        while (item := repo.claim_next("r1", f"w{k}", T0)) is not None:
            # Shared keys in opposite orders per worker: deadlock bait without sorting.
            keys = [f"shared-{j}" for j in range(6)] + [f"own-{item.id}"]
            if k % 2:
                keys.reverse()
            pairs = [
                (dispense(key), provenance(T0 + dt.timedelta(seconds=item.id))) for key in keys
            ]
            repo.record_outcome(
                item.id,
                outcome_kind=OutcomeKind.RECORDS,
                outcome_code="OK",
                detail=None,
                dispenses=pairs,
                audit=audit(item.bsn),
            )

    run_workers(database_url, n_workers, work)
    summary = runs.summary("r1")
    assert dict(summary.by_state) == {"done": n_workers * per_worker}
    assert DispenseRepository(migrated_engine).count() == 6 + n_workers * per_worker
    with migrated_engine.connect() as connection:
        latest = connection.execute(
            select(func.max(DispenseRow.fetched_at)).where(DispenseRow.id_extension == "shared-0")
        ).scalar_one()
    last_item = max(i.id for i in runs.items("r1"))
    assert latest == T0 + dt.timedelta(seconds=last_item)


def test_a_failing_audit_insert_leaves_a_retry_unrecorded(migrated_engine: Engine) -> None:
    runs = RunRepository(migrated_engine)
    assert runs.create_run("r1", "s", DAY, "scheduled", T0, items(1))
    claimed = runs.claim_next("r1", "w1", T0)
    assert claimed is not None
    AuditLog(migrated_engine).append(audit(event_id="taken"))
    with pytest.raises(StopError):
        runs.record_retry(
            claimed.id,
            code="OVERLOAD",
            next_attempt_at=T0,
            audit=audit(claimed.bsn, event_id="taken"),
        )
    [item] = runs.items("r1")
    assert (item.state, item.outcome_code, item.claimed_by) == (ItemState.IN_FLIGHT, None, "w1")


def test_a_refused_query_does_not_make_the_data_fresh(migrated_engine: Engine) -> None:
    runs, store = RunRepository(migrated_engine), DispenseRepository(migrated_engine)
    item_id = _queued_item(runs, BSN_A)
    runs.record_outcome(
        item_id,
        outcome_kind=OutcomeKind.REFUSED,
        outcome_code="AUTH",
        detail=None,
        dispenses=[],
        audit=audit(BSN_A),
    )
    assert store.last_fetched_at(BSN_A) is None
    item_id = _queued_item(runs, BSN_A)
    runs.record_outcome(
        item_id,
        outcome_kind=OutcomeKind.NO_REGISTRATIONS,
        outcome_code=None,
        detail=None,
        dispenses=[],
        audit=audit(BSN_A, at=T0),
    )
    assert store.last_fetched_at(BSN_A) == T0
