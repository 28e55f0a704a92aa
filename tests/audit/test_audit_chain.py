"""The audit hash chain on both backends: each single change, removal or insertion and a
rewritten chain are found by `verify_chain`, with the row named."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from audit_helpers import (
    BSN_A,
    BSN_B,
    PASSPHRASE,
    T0,
    as_owner_without_guards,
    event,
    rehash_from,
    rehash_row,
)
from sqlalchemy import Engine, text

from prefetch.security.keys import Credential
from prefetch.security.pki import DevPki
from prefetch.store.audit import AuditLog
from prefetch.store.audit_chain import GENESIS
from prefetch.store.audit_checkpoint import write_checkpoint
from prefetch.store.audit_verify import verify_chain

NOW = dt.datetime.now(dt.UTC)


def _fill(engine: Engine, n: int = 6) -> None:
    log = AuditLog(engine)
    for k in range(n):
        log.append(event(BSN_A if k % 2 else BSN_B, at=T0 + dt.timedelta(minutes=k)))


def test_rows_are_chained_and_verify(migrated_engine: Engine) -> None:
    _fill(migrated_engine)
    with migrated_engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, prev_hash, row_hash FROM audit_log ORDER BY id")
        ).all()
    assert [r.id for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.row_hash for a, b in itertools.pairwise(rows))
    report = verify_chain(migrated_engine)
    assert report.ok, report.summary()
    assert report.rows_checked == 6
    assert "6 rows checked" in report.summary()


@pytest.mark.parametrize(
    ("tamper", "kind", "row"),
    [
        (["UPDATE audit_log SET outcome = 'no_records' WHERE id = 3"], "changed", 3),
        (["UPDATE audit_log SET patient_bsn = NULL WHERE id = 2"], "changed", 2),
        (["DELETE FROM audit_log WHERE id = 4"], "removed", 4),
        (["DELETE FROM audit_log WHERE id = 1"], "removed", 2),
        (
            [
                "UPDATE audit_log SET id = id + 100 WHERE id >= 4",
                "INSERT INTO audit_log (id, event_id, event_type, action_code, occurred_at,"
                " user_id, object_detail, source_system, outcome, prev_hash, row_hash)"
                " SELECT 4, 'forged', event_type, action_code, occurred_at, user_id,"
                " object_detail, source_system, 'records', row_hash, :forged"
                " FROM audit_log WHERE id = 3",
            ],
            "inserted",
            4,
        ),
    ],
    ids=["changed-outcome", "changed-patient", "removed-middle", "removed-first", "inserted"],
)
def test_a_single_tampered_row_is_named(
    migrated_engine: Engine, tamper: list[str], kind: str, row: int
) -> None:
    _fill(migrated_engine)
    forged = "f" * 64
    as_owner_without_guards(migrated_engine, *tamper, forged=forged)
    if kind == "inserted":  # a careful forger gives the new row a correct hash of its own
        rehash_row(migrated_engine, 4)
    report = verify_chain(migrated_engine)
    assert not report.ok
    assert report.problem is not None
    assert (report.problem.kind, report.problem.row_id) == (kind, row), report.summary()
    assert f"row {row}" in report.summary()
    assert BSN_A not in report.summary()


def test_a_changed_row_with_its_hash_recomputed_is_named(migrated_engine: Engine) -> None:
    _fill(migrated_engine)
    as_owner_without_guards(migrated_engine, "UPDATE audit_log SET outcome = 'x' WHERE id = 2")
    rehash_row(migrated_engine, 2)
    report = verify_chain(migrated_engine)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.row_id) == ("changed", 2)


def test_a_rewritten_chain_is_caught_by_the_signed_checkpoint(
    migrated_engine: Engine, hospital: Credential, audit_pki: DevPki
) -> None:
    _fill(migrated_engine)
    write_checkpoint(migrated_engine, hospital, now=NOW)
    _fill(migrated_engine, 2)
    assert verify_chain(migrated_engine, trust=audit_pki.trust_store()).ok
    as_owner_without_guards(migrated_engine, "UPDATE audit_log SET outcome = 'x' WHERE id = 3")
    rehash_from(migrated_engine, 3)  # every link consistent again
    report = verify_chain(migrated_engine)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.row_id) == ("rewritten", 6), report.summary()
    assert "checkpoint 1" in report.summary()


def test_removed_tail_below_a_checkpoint_is_found(
    migrated_engine: Engine, hospital: Credential
) -> None:
    _fill(migrated_engine, 4)
    write_checkpoint(migrated_engine, hospital, now=NOW)
    as_owner_without_guards(migrated_engine, "DELETE FROM audit_log WHERE id >= 3")
    report = verify_chain(migrated_engine)
    assert report.problem is not None
    assert (report.problem.kind, report.problem.row_id) == ("removed", 4)


def test_a_forged_checkpoint_signature_is_refused(
    migrated_engine: Engine, hospital: Credential
) -> None:
    _fill(migrated_engine, 3)
    write_checkpoint(migrated_engine, hospital, now=NOW)
    with migrated_engine.begin() as connection:  # a forger adds a checkpoint of his own
        connection.execute(
            text(
                "INSERT INTO audit_checkpoints (kind, created_at, head_id, head_hash,"
                " rows_removed, signer, certificate_pem, signature)"
                " SELECT kind, created_at, head_id, :h, 0, signer, certificate_pem, signature"
                " FROM audit_checkpoints WHERE id = 1"
            ),
            {"h": "0" * 64},
        )
    report = verify_chain(migrated_engine)
    assert report.problem is not None
    assert report.problem.kind == "checkpoint"
    assert "checkpoint 2: signature does not verify" in report.summary()


def test_an_untrusted_signer_is_refused(
    migrated_engine: Engine, audit_pki: DevPki, hospital: Credential
) -> None:
    _fill(migrated_engine, 2)
    foreign = audit_pki.identity("foreign").load(PASSPHRASE)
    write_checkpoint(migrated_engine, foreign, now=NOW)
    assert verify_chain(migrated_engine).ok  # without trust only the signature is checked
    report = verify_chain(migrated_engine, trust=audit_pki.trust_store())
    assert report.problem is not None
    assert "checkpoint 1: signer certificate not trusted" in report.summary()


def test_quick_walk_starts_at_the_last_checkpoint(
    migrated_engine: Engine, hospital: Credential
) -> None:
    _fill(migrated_engine, 5)
    write_checkpoint(migrated_engine, hospital, now=NOW)
    _fill(migrated_engine, 2)
    report = verify_chain(migrated_engine, quick=True)
    assert report.ok, report.summary()
    assert report.rows_checked == 3  # the signed head and the two after it
    as_owner_without_guards(migrated_engine, "UPDATE audit_log SET outcome = 'x' WHERE id = 7")
    assert verify_chain(migrated_engine, quick=True).problem is not None


def test_concurrent_writers_keep_one_linear_chain(database_url: str) -> None:
    from prefetch.store.db import make_engine, upgrade

    upgrade(database_url)
    import threading

    engines = [make_engine(database_url) for _ in range(4)]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            barrier.wait()
            log = AuditLog(engines[k])
            for _ in range(10):
                log.append(event(BSN_A))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert not errors
        report = verify_chain(engines[0])
        assert report.ok, report.summary()
        assert report.rows_checked == 40
    finally:
        for engine in engines:
            engine.dispose()
