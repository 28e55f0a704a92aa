"""RunRepository contract: runs, the work queue, outcomes, retries, summaries."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine
from store_samples import BSN_A, T0, audit, dispense, items, provenance, run_workers

from prefetch.domain.outcome import OutcomeKind
from prefetch.errors import InvalidValueError, StopError
from prefetch.store.audit import AuditLog
from prefetch.store.records import ItemState, NewItem, RunKind, RunState
from prefetch.store.repositories import DispenseRepository, RunRepository

DAY = dt.date(2026, 11, 21)
LATER = T0 + dt.timedelta(minutes=5)


@pytest.fixture
def runs(migrated_engine: Engine) -> RunRepository:
    return RunRepository(migrated_engine)


def _create(runs: RunRepository, n: int = 3, *, skipped: int = 0, run_id: str = "r1") -> None:
    assert runs.create_run(run_id, "cardiologie", DAY, "scheduled", T0, items(n, skipped=skipped))


def test_create_run_stores_the_run_and_its_items(runs: RunRepository) -> None:
    _create(runs, 3, skipped=2)
    run = runs.get_run("r1")
    assert run is not None
    assert (run.state, run.kind, run.clinic_day, run.created_at) == (
        RunState.PLANNED,
        RunKind.SCHEDULED,
        DAY,
        T0,
    )
    assert runs.find_run("cardiologie", DAY, RunKind.SCHEDULED) == run
    assert runs.find_run("cardiologie", DAY, "manual") is None
    stored = runs.items("r1")
    assert [i.patient_local_id for i in stored] == ["p0000", "p0001", "p0002", "s0000", "s0001"]
    assert [i.state for i in stored] == [ItemState.PENDING] * 3 + [ItemState.SKIPPED] * 2
    assert stored[3].skip_reason == "no_bsn"
    assert stored[3].clinics == ("CARD", "INT")
    assert stored[0].bsn == BSN_A
    assert BSN_A not in repr(stored[0])


def test_create_run_twice_is_a_resume_that_changes_nothing(runs: RunRepository) -> None:
    _create(runs, 3)
    claimed = runs.claim_next("r1", "w1", LATER)
    assert claimed is not None
    before = runs.items("r1")
    assert not runs.create_run("r1", "cardiologie", DAY, "scheduled", LATER, items(5))
    # Same schedule, day and kind under another id: the same run, also a resume.
    assert not runs.create_run("r2", "cardiologie", DAY, "scheduled", LATER, items(5))
    assert runs.items("r1") == before
    assert runs.get_run("r2") is None
    # Another kind is another run.
    assert runs.create_run("r3", "cardiologie", DAY, RunKind.MANUAL, LATER, items(1))


def test_one_item_per_patient(runs: RunRepository) -> None:
    twice = [NewItem("p1", BSN_A, ("CARD",)), NewItem("p1", BSN_A, ("INT",))]
    with pytest.raises(InvalidValueError):
        runs.create_run("r1", "cardiologie", DAY, "scheduled", T0, twice)
    assert runs.get_run("r1") is None


def test_run_state_transitions(runs: RunRepository) -> None:
    _create(runs, 2, skipped=1)
    runs.start_run("r1", LATER)
    runs.start_run("r1", LATER + dt.timedelta(hours=1))  # resume: stays running, same start
    run = runs.get_run("r1")
    assert run is not None
    assert (run.state, run.started_at) == (RunState.RUNNING, LATER)
    summary = runs.finish_run("r1", LATER + dt.timedelta(hours=2))
    run = runs.get_run("r1")
    assert run is not None
    assert run.state is RunState.FINISHED
    assert run.counts is not None
    assert run.counts["by_state"] == {"pending": 2, "skipped": 1} == dict(summary.by_state)
    with pytest.raises(StopError):
        runs.start_run("r1", LATER)
    with pytest.raises(StopError):
        runs.start_run("nope", LATER)


def test_claim_next_takes_pending_items_in_order_once(runs: RunRepository) -> None:
    _create(runs, 2, skipped=1)
    first = runs.claim_next("r1", "w1", LATER)
    second = runs.claim_next("r1", "w2", LATER)
    assert first is not None
    assert second is not None
    assert (first.patient_local_id, second.patient_local_id) == ("p0000", "p0001")
    assert (first.attempts, first.claimed_by, first.claimed_at) == (1, "w1", LATER)
    assert runs.claim_next("r1", "w3", LATER) is None  # skipped items are never claimed
    assert [i.state for i in runs.items("r1")][:2] == [ItemState.IN_FLIGHT] * 2


def test_retry_wait_items_are_claimed_only_when_due(runs: RunRepository) -> None:
    _create(runs, 1)
    claimed = runs.claim_next("r1", "w1", T0)
    assert claimed is not None
    due = T0 + dt.timedelta(minutes=10)
    runs.record_retry(claimed.id, code="OVERLOAD", next_attempt_at=due, audit=audit())
    item = runs.items("r1")[0]
    assert (item.state, item.outcome_kind, item.outcome_code) == (
        ItemState.RETRY_WAIT,
        "transient",
        "OVERLOAD",
    )
    assert runs.claim_next("r1", "w1", due - dt.timedelta(seconds=1)) is None
    again = runs.claim_next("r1", "w2", due)
    assert again is not None
    assert (again.id, again.attempts) == (claimed.id, 2)


def test_reclaim_takes_back_expired_leases_only(runs: RunRepository) -> None:
    _create(runs, 2)
    old = runs.claim_next("r1", "crashed", T0, lease=dt.timedelta(seconds=15))
    fresh = runs.claim_next("r1", "alive", LATER, lease=dt.timedelta(seconds=15))
    assert old is not None
    assert fresh is not None
    # The send time of the reclaimed query: it may still be at the LSP.
    assert runs.reclaim_expired("r1", T0 + dt.timedelta(minutes=1), max_attempts=3) == [T0]
    states = {i.id: i.state for i in runs.items("r1")}
    assert states == {old.id: ItemState.RETRY_WAIT, fresh.id: ItemState.IN_FLIGHT}
    again = runs.claim_next("r1", "w3", LATER)
    assert again is not None
    assert (again.id, again.attempts) == (old.id, 2)  # the lost attempt stays counted


def test_a_heartbeat_keeps_the_lease(runs: RunRepository) -> None:
    _create(runs, 1)
    held = runs.claim_next("r1", "w1", T0, lease=dt.timedelta(seconds=15))
    assert held is not None
    assert runs.extend_leases("w1", [held.id], LATER + dt.timedelta(seconds=15)) == 1
    assert runs.extend_leases("someone-else", [held.id], LATER) == 0
    assert runs.reclaim_expired("r1", LATER, max_attempts=3) == []
    assert runs.next_due_at("r1", LATER) == LATER + dt.timedelta(seconds=15)


def test_reclaim_everything_and_the_last_attempt_fails(runs: RunRepository) -> None:
    _create(runs, 2)
    first = runs.claim_next("r1", "w1", T0, lease=dt.timedelta(hours=1))
    assert first is not None
    runs.record_retry(first.id, code="OVERLOAD", next_attempt_at=T0, audit=audit())
    runs.claim_next("r1", "w1", T0, lease=dt.timedelta(hours=1))  # attempt 2 of first
    runs.claim_next("r1", "w1", T0, lease=dt.timedelta(hours=1))  # attempt 1 of second
    assert len(runs.reclaim_expired("r1", T0, max_attempts=2, everything=True)) == 2
    by_id = {i.id: i for i in runs.items("r1")}
    assert by_id[first.id].state is ItemState.FAILED
    assert by_id[first.id].outcome_code == "LOST_IN_FLIGHT"
    assert [i.state for i in by_id.values() if i.id != first.id] == [ItemState.RETRY_WAIT]


def test_the_claim_writes_the_sent_audit_row_in_its_transaction(
    runs: RunRepository, migrated_engine: Engine
) -> None:
    _create(runs, 2)
    log = AuditLog(migrated_engine)

    def refuse(_item: object) -> object:
        raise StopError("audit refused")

    with pytest.raises(StopError):
        runs.claim_next("r1", "w1", T0, sent=refuse)  # type: ignore[arg-type]
    assert {i.state for i in runs.items("r1")} == {ItemState.PENDING}  # nothing claimed
    claimed = runs.claim_next("r1", "w1", T0, sent=lambda item: audit(item.bsn))
    assert claimed is not None
    assert len(log.for_patient(claimed.bsn)) == 1


def test_an_answer_after_the_lease_was_lost_is_audited_but_not_recorded(
    runs: RunRepository, migrated_engine: Engine
) -> None:
    _create(runs, 1)
    held = runs.claim_next("r1", "slow", T0, lease=dt.timedelta(seconds=15))
    assert held is not None
    runs.reclaim_expired("r1", LATER, max_attempts=3)
    result = runs.record_outcome(
        held.id,
        outcome_kind=OutcomeKind.NO_RECORDS,
        outcome_code=None,
        detail=None,
        dispenses=[],
        audit=audit(held.bsn),
        worker_id="slow",
    )
    assert result.lease_lost
    assert runs.items("r1")[0].state is ItemState.RETRY_WAIT
    assert len(AuditLog(migrated_engine).for_patient(held.bsn)) == 1
    assert runs.next_due_at("r1", LATER) == LATER


def test_record_outcome_stores_item_dispenses_and_audit(
    runs: RunRepository, migrated_engine: Engine
) -> None:
    _create(runs, 2)
    claimed = runs.claim_next("r1", "w1", T0)
    assert claimed is not None
    pairs = [(dispense("d1"), provenance()), (dispense("d2"), provenance())]
    event = audit(claimed.bsn, at=LATER)
    result = runs.record_outcome(
        claimed.id,
        outcome_kind=OutcomeKind.RECORDS,
        outcome_code="OK",
        detail=None,
        dispenses=pairs,
        audit=event,
    )
    assert (result.inserted, result.updated) == (2, 0)
    item = runs.items("r1")[0]
    assert (item.state, item.outcome_kind, item.dispense_count, item.updated_at) == (
        ItemState.DONE,
        "records",
        2,
        LATER,
    )
    assert DispenseRepository(migrated_engine).count() == 2
    assert AuditLog(migrated_engine).for_patient(claimed.bsn) == [event]

    other = runs.claim_next("r1", "w1", T0)
    assert other is not None
    runs.record_outcome(
        other.id,
        outcome_kind=OutcomeKind.FAILED,
        outcome_code="UNKNOWN",
        detail="gave up",
        dispenses=[],
        audit=audit(other.bsn),
    )
    summary = runs.summary("r1")
    assert summary.total == 2
    assert dict(summary.by_state) == {"done": 1, "failed": 1}
    assert dict(summary.by_outcome) == {"records": 1, "failed": 1}
    assert summary.count(ItemState.FAILED) == 1
    assert summary.dispenses == 2


def test_record_outcome_refuses_what_it_cannot_record(runs: RunRepository) -> None:
    _create(runs, 1, skipped=1)
    pending, skipped = runs.items("r1")
    with pytest.raises(InvalidValueError):
        runs.record_outcome(
            pending.id,
            outcome_kind=OutcomeKind.TRANSIENT,
            outcome_code=None,
            detail=None,
            dispenses=[],
            audit=audit(),
        )
    with pytest.raises(StopError):
        runs.record_outcome(
            skipped.id,
            outcome_kind=OutcomeKind.NO_RECORDS,
            outcome_code=None,
            detail=None,
            dispenses=[],
            audit=audit(None),
        )
    with pytest.raises(StopError):
        runs.record_retry(10_000, code=None, next_attempt_at=T0, audit=audit())


def test_summary_counts_skip_reasons(runs: RunRepository) -> None:
    run_items = [
        NewItem("a", None, ("CARD",), "no_bsn"),
        NewItem("b", None, ("CARD",), "no_bsn"),
        NewItem("c", BSN_A, ("CARD",), "consent_refused"),
        NewItem("d", BSN_A, ("CARD",)),
    ]
    assert runs.create_run("r1", "s", DAY, "manual", T0, run_items)
    summary = runs.summary("r1")
    assert dict(summary.by_skip_reason) == {"no_bsn": 2, "consent_refused": 1}
    assert dict(summary.by_state) == {"skipped": 3, "pending": 1}
    assert runs.summary("unknown").total == 0


def test_claim_next_never_hands_one_item_to_two_workers(
    database_url: str, migrated_engine: Engine
) -> None:
    n_items, n_workers = 60, 4
    assert RunRepository(migrated_engine).create_run(
        "r1", "s", DAY, "scheduled", T0, items(n_items)
    )
    claimed: list[list[int]] = [[] for _ in range(n_workers)]

    def work(k: int, engine: Engine) -> None:
        repo = RunRepository(engine)
        while (item := repo.claim_next("r1", f"w{k}", T0)) is not None:
            claimed[k].append(item.id)

    run_workers(database_url, n_workers, work)
    everything = [i for per_worker in claimed for i in per_worker]
    assert len(everything) == n_items
    assert len(set(everything)) == n_items
    holders = {i.id: i.claimed_by for i in RunRepository(migrated_engine).items("r1")}
    for k, ids in enumerate(claimed):
        assert all(holders[i] == f"w{k}" for i in ids)


def test_new_item_needs_a_valid_bsn_unless_skipped() -> None:
    with pytest.raises(InvalidValueError) as info:
        NewItem("p1", "123456789", ("CARD",))
    assert "123456789" not in str(info.value)
    with pytest.raises(InvalidValueError):
        NewItem("p1", None, ("CARD",))
    assert NewItem("p1", "123456789", ("CARD",), skip_reason="bsn_invalid").bsn == "123456789"


def test_due_retries_come_before_pending_items(runs: RunRepository) -> None:
    _create(runs, 2)
    first = runs.claim_next("r1", "w1", T0)
    assert first is not None
    runs.record_retry(first.id, code="OVERLOAD", next_attempt_at=LATER, audit=audit())
    assert runs.next_due_at("r1", T0) == T0  # the pending item
    claimed = runs.claim_next("r1", "w2", LATER)
    assert claimed is not None
    assert claimed.id == first.id  # the due retry before the pending item
    again = runs.claim_next("r1", "w2", LATER)
    assert again is not None
    assert again.id != first.id
    assert runs.next_due_at("r1", LATER) == LATER + dt.timedelta(seconds=15)  # leases
