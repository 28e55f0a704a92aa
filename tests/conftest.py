"""Shared database fixtures: every storage test runs on SQLite and on PostgreSQL.

- `database_url`: parametrised over `sqlite` (a file in tmp_path) and `postgresql`
  (marked `postgres`). The PostgreSQL URL comes from `PREFETCH_TEST_POSTGRES_URL`
  (default `postgresql+psycopg://postgres@127.0.0.1:5432/test`). Each test gets its own
  schema with a random name, set as the only entry of `search_path` through the URL's
  `options`, so tables, Alembic's version table and the audit triggers all live there and
  tests running at the same time (other engineers, CI) never meet. The schema is dropped
  afterwards. Unreachable PostgreSQL: skip, or fail when `PREFETCH_REQUIRE_POSTGRES=1`.
- `migrated_engine`: an Engine on `database_url` after `upgrade` to head.

The suite runs in parallel: pytest-xdist, `-n 4 --dist loadfile` in pyproject's addopts
(`pytest -n 0` runs it in one process). Each worker is a process of its own with its own
session fixtures; a test file is one unit of work, run by one worker from top to bottom,
so its module fixtures are made once and the tests of one file never run at the same time
(the acceptance files, whose runs and kills load both cores, stay one after another).
`pytest_xdist_make_scheduler` below refines that: files that share an expensive session
fixture are one unit (`XDIST_UNITS`), and the longest units are handed out first
(`XDIST_FIRST`), so the suite's wall time is not a long file started last.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, make_url

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCHEMA_PREFIX = "prefetch_test_"

_reachability: dict[str, str | None] = {}


def postgres_base_url() -> str:
    return os.environ.get("PREFETCH_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _libpq_dsn(sqlalchemy_url: str) -> str:
    """The same server as a plain libpq URL, for psycopg without SQLAlchemy."""
    url = make_url(sqlalchemy_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _postgres_unreachable_reason(base_url: str) -> str | None:
    if base_url not in _reachability:
        try:
            with psycopg.connect(_libpq_dsn(base_url), connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _reachability[base_url] = None
        except psycopg.Error as exc:
            _reachability[base_url] = f"PostgreSQL unreachable: {type(exc).__name__}"
    return _reachability[base_url]


def with_search_path(base_url: str, schema: str) -> str:
    """`base_url` with `search_path` set to `schema` for every connection it makes."""
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def _create_schema(base_url: str) -> str:
    schema = SCHEMA_PREFIX + uuid.uuid4().hex[:16]
    with psycopg.connect(_libpq_dsn(base_url), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return schema


def _drop_schema(base_url: str, schema: str) -> None:
    with psycopg.connect(_libpq_dsn(base_url), autocommit=True) as conn:
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'prefetch.db'}"
        return
    base_url = postgres_base_url()
    reason = _postgres_unreachable_reason(base_url)
    if reason is not None:
        if os.environ.get("PREFETCH_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason} (PREFETCH_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    schema = _create_schema(base_url)
    try:
        yield with_search_path(base_url, schema)
    finally:
        _drop_schema(base_url, schema)


@pytest.fixture(scope="session")
def xmllint_schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our interaction schemas with the schema set's files linked beside them, for
    `xmllint --schema` (which has no resolver of ours): `hl7_schemas/` of a linked tree."""
    from prefetch.hl7v3.schema_set import linked_schema_tree

    return linked_schema_tree(tmp_path_factory.mktemp("xsd"))


@pytest.fixture
def migrated_engine(database_url: str) -> Iterator[Engine]:
    from prefetch.store.db import make_engine, upgrade

    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


# Files that are one unit of work for pytest-xdist, run one after another by one worker, in
# this order (a dict keeps it).
XDIST_UNITS = {
    # They share a session fixture that costs seconds of both cores (each worker that ran
    # one of them would build its own): `demo_desk`, `prefetch demo` with its simulator.
    "tests/web/test_desk_actions.py": "demo_desk",
    "tests/web/test_desk_book.py": "demo_desk",
    "tests/web/test_desk_browser.py": "demo_desk",
    # The acceptance runs never at the same time: twenty `prefetch run` starts at once, or
    # five kills and restarts, starve a run on another worker of both cores, and the LSP
    # trouble tests time a breaker against a 3 s outage (a run that sent one query in it
    # instead of three failed so in CI). LSP trouble last: by then the rest of the suite
    # is done and the cores are free.
    "tests/acceptance/test_run_acceptance.py": "acceptance",  # ~200 s: kills, 20 starts
    "tests/acceptance/test_lsp_trouble.py": "acceptance",  # ~160 s: outages, a window
}
# The longest units (serial seconds, measured on 2 cores), started first: the suite cannot
# end before the longest unit does, so it must not begin last.
XDIST_FIRST = (
    "acceptance",  # ~360 s
    "tests/daemon/test_scale_out.py",  # ~65 s: three daemons, 1,000 patients
)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: unknown under `-p no:xdist`
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile` with `XDIST_UNITS` and `XDIST_FIRST`; other modes as xdist has them."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    files = list(XDIST_UNITS)

    def file_order(nodeid: str) -> int:
        path = nodeid.split("::", 1)[0]
        return files.index(path) if path in files else len(files)

    class Units(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return XDIST_UNITS.get(path, path)

        def _assign_work_unit(self, node: Any) -> None:
            for unit in reversed(XDIST_FIRST):
                if unit in self.workqueue:
                    self.workqueue.move_to_end(unit, last=False)
            unit, tests = next(iter(self.workqueue.items()))
            # a unit's files in XDIST_UNITS' order (sorted is stable: tests keep theirs)
            self.workqueue[unit] = dict(sorted(tests.items(), key=lambda t: file_order(t[0])))
            super()._assign_work_unit(node)

    return Units(config, log)
