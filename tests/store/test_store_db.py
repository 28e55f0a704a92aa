"""Engines, migrations and the UTC column type, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import IntegrityError, StatementError

from prefetch.errors import ConfigError, InvalidValueError, StopError
from prefetch.store.db import current_revision, head_revision, make_engine, migrate, upgrade
from prefetch.store.records import NewItem
from prefetch.store.runs import RunRepository
from prefetch.store.tables import Base, RunItemRow, RunRow

HEAD = "0009"
TABLES = {
    "runs",
    "run_items",
    "dispenses",
    "audit_log",
    "audit_checkpoints",
    "mandates",
    "appointment_book",
    "objections",
    "locks",
    "desk_users",
    "send_budget",
    "send_leases",
    "api_tokens",
    "alembic_version",
}
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
BSN = "999990019"


def test_upgrade_from_empty_creates_every_table_and_is_idempotent(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        assert current_revision(engine) is None
        assert upgrade(database_url) == HEAD
        assert set(inspect(engine).get_table_names()) >= TABLES
        assert upgrade(database_url) == HEAD  # second time: nothing to do
        assert current_revision(engine) == HEAD
    finally:
        engine.dispose()


def test_migrated_schema_matches_the_models(migrated_engine: Engine) -> None:
    with migrated_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_head_revision_is_the_newest_migration() -> None:
    assert head_revision() == HEAD


def test_migrations_form_one_chain_with_unique_ids() -> None:
    """Parallel branches each adding "the next" migration must be re-chained when merged."""
    from alembic.script import ScriptDirectory

    from prefetch.store.db import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    files = sorted(Path(script.versions).glob("[0-9]*.py"))
    revisions = list(script.walk_revisions())
    assert len(revisions) == len(files), "a revision id is used by two migration files"
    assert [r.revision for r in reversed(revisions)] == [f.name[:4] for f in files]
    assert len(script.get_heads()) == 1


def test_downgrade_to_base_and_up_again(migrated_engine: Engine) -> None:
    migrate(migrated_engine, "base", down=True)
    assert set(inspect(migrated_engine).get_table_names()) <= {"alembic_version"}
    migrate(migrated_engine)
    assert set(inspect(migrated_engine).get_table_names()) >= TABLES
    assert current_revision(migrated_engine) == HEAD


def test_0002_keeps_data_and_constraints_and_allows_repeated_manual_runs(
    database_url: str,
) -> None:
    upgrade(database_url, "0001")
    engine = make_engine(database_url)
    day = dt.date(2026, 11, 21)
    at = dt.datetime(2026, 11, 20, 18, 0, tzinfo=dt.UTC)
    try:
        runs = RunRepository(engine)
        assert runs.create_run("m1", "card", day, "manual", at, [NewItem("p1", BSN, ("C",))])
        with pytest.raises(StopError):  # 0001: one run per schedule, day and kind
            runs.create_run("m2", "card", day, "manual", at, [])
        assert upgrade(database_url) == HEAD
        [item] = runs.items("m1")  # the table rebuild did not cascade into the items
        assert item.patient_local_id == "p1"
        later = at + dt.timedelta(hours=1)
        assert runs.create_run("m2", "card", day, "manual", later, [])
        assert runs.create_run("s1", "card", day, "scheduled", at, [])
        assert not runs.create_run("s2", "card", day, "scheduled", at, [])
        found = runs.find_run("card", day, "manual")
        assert found is not None
        assert found.id == "m2"
        with pytest.raises(IntegrityError), engine.begin() as connection:  # CHECK survived
            connection.execute(
                RunRow.__table__.insert().values(
                    id="bad",
                    schedule_id="x",
                    clinic_day=day,
                    kind="manual",
                    state="bogus",
                    created_at=at,
                )
            )
        with pytest.raises(IntegrityError), engine.begin() as connection:  # FK survived
            connection.execute(
                RunItemRow.__table__.insert().values(
                    run_id="nope",
                    patient_local_id="p",
                    clinics=[],
                    state="pending",
                    attempts=0,
                    updated_at=at,
                    dispense_count=0,
                )
            )
    finally:
        engine.dispose()


def _store_run(engine: Engine, run_id: str, created_at: dt.datetime) -> None:
    with engine.begin() as connection:
        connection.execute(
            RunRow.__table__.insert().values(
                id=run_id,
                schedule_id=f"s-{run_id}",
                clinic_day=dt.date(2026, 11, 21),
                kind="scheduled",
                state="planned",
                created_at=created_at,
            )
        )


@pytest.mark.parametrize(
    "written",
    [
        dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC),  # DST night
        dt.datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=AMSTERDAM),  # ambiguous hour
        dt.datetime(2026, 7, 1, 23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    ],
)
def test_utc_round_trip(migrated_engine: Engine, written: dt.datetime) -> None:
    _store_run(migrated_engine, "r1", written)
    with migrated_engine.connect() as connection:
        read = connection.execute(select(RunRow.created_at)).scalar_one()
    assert read == written.astimezone(dt.UTC)  # (== across zones is False for a fold)
    assert read.tzinfo is dt.UTC
    assert read.utcoffset() == dt.timedelta(0)


def test_utc_round_trip_whatever_the_session_time_zone(migrated_engine: Engine) -> None:
    written = dt.datetime(2026, 11, 21, 23, 30, tzinfo=AMSTERDAM)
    with migrated_engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL TIME ZONE 'America/New_York'")
        connection.execute(
            RunRow.__table__.insert().values(
                id="r1",
                schedule_id="s",
                clinic_day=dt.date(2026, 11, 21),
                kind="scheduled",
                state="planned",
                created_at=written,
            )
        )
        read = connection.execute(select(RunRow.created_at)).scalar_one()
    assert read == written
    assert read.tzinfo is dt.UTC


_offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: dt.timezone(dt.timedelta(minutes=m))
)
_instants = st.datetimes(
    min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(2200, 1, 1), timezones=_offsets
)
_ids = itertools.count()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(written=_instants)
def test_utc_round_trip_property(migrated_engine: Engine, written: dt.datetime) -> None:
    run_id = f"p{next(_ids)}"
    _store_run(migrated_engine, run_id, written)
    with migrated_engine.connect() as connection:
        read = connection.execute(select(RunRow.created_at).where(RunRow.id == run_id)).scalar_one()
    assert read == written
    assert read.tzinfo is dt.UTC


def test_naive_datetime_is_refused(migrated_engine: Engine) -> None:
    with pytest.raises(StatementError) as info:
        _store_run(migrated_engine, "r1", dt.datetime(2026, 11, 21, 8, 0))
    assert isinstance(info.value.orig, InvalidValueError)
    assert "naive" in str(info.value.orig)
    with migrated_engine.connect() as connection:
        assert connection.execute(select(RunRow.id)).first() is None


def test_utc_values_compare_correctly_in_sql(migrated_engine: Engine) -> None:
    # Same instant written in different offsets must order by instant, not by text.
    early = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=5)))  # 04:00Z
    late = dt.datetime(2026, 11, 21, 5, 45, tzinfo=AMSTERDAM)  # 04:45Z
    _store_run(migrated_engine, "early", early)
    _store_run(migrated_engine, "late", late)
    cutoff = dt.datetime(2026, 11, 21, 4, 30, tzinfo=dt.UTC)
    with migrated_engine.connect() as connection:
        after = connection.execute(select(RunRow.id).where(RunRow.created_at > cutoff)).scalars()
        assert list(after) == ["late"]


def test_sqlite_engine_uses_wal_and_foreign_keys(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/x.db")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "url",
    ["not a url", "mysql://u@h/db", "postgresql+psycopg2://postgres@127.0.0.1/test"],
)
def test_make_engine_refuses_unusable_urls(url: str) -> None:
    with pytest.raises(ConfigError):
        make_engine(url)


def test_the_schema_head_constant_is_alembics_head() -> None:
    """A new migration must move `SCHEMA_HEAD` too (the run checks it without Alembic)."""
    from prefetch.store.db import SCHEMA_HEAD

    assert head_revision() == SCHEMA_HEAD


def test_the_schema_check_reads_the_revision_and_refuses_an_old_one(database_url: str) -> None:
    from prefetch.store.db import SCHEMA_HEAD, require_schema_head, schema_revision

    engine = make_engine(database_url)
    try:
        assert schema_revision(engine) is None
        with pytest.raises(ConfigError, match="at nothing"):
            require_schema_head(engine)
        upgrade(database_url, "0008")
        assert schema_revision(engine) == current_revision(engine) == "0008"
        with pytest.raises(ConfigError, match=f"at 0008, this version needs {SCHEMA_HEAD}"):
            require_schema_head(engine)
        upgrade(database_url)
        assert schema_revision(engine) == SCHEMA_HEAD
        require_schema_head(engine)
    finally:
        engine.dispose()
