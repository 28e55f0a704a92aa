"""Desk fixtures: a seeded clinic day on SQLite and a TestClient signed in by role."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from desk_client import DemoDesk, make_client, sign_in
from desk_helpers import SeededDay, add_user, seed_day
from fastapi.testclient import TestClient
from samples import mandate
from sqlalchemy import Engine

from prefetch.store.desk_users import DeskRole, use_hasher
from prefetch.store.mandates import MandateRepository


@pytest.fixture(scope="session", autouse=True)
def _cheap_argon2() -> Iterator[None]:
    """argon2id with the CHEAPEST parameters for the desk tests (hashing stays real)."""
    from argon2 import PasswordHasher
    from argon2.profiles import CHEAPEST, RFC_9106_LOW_MEMORY

    use_hasher(PasswordHasher.from_parameters(CHEAPEST))
    yield
    use_hasher(PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY))


@dataclass(frozen=True, slots=True)
class SeededFile:
    path: Path
    day: SeededDay


@pytest.fixture(scope="session")
def migrated_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty database at the newest schema, migrated once and copied per test."""
    from prefetch.store.db import upgrade

    path = tmp_path_factory.mktemp("desk-template") / "desk.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def desk_engine(tmp_path: Path, seeded_file: SeededFile) -> Iterator[Engine]:
    """This test's own copy of the seeded day (SQLite)."""
    from prefetch.store.db import make_engine

    target = tmp_path / "desk.db"
    shutil.copyfile(seeded_file.path, target)
    engine = make_engine(f"sqlite:///{target}")
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def seeded_file(tmp_path_factory: pytest.TempPathFactory, migrated_file: Path) -> SeededFile:
    """The seeded day and three accounts (argon2 is slow on purpose: hash them once)."""
    from prefetch.store.db import make_engine

    path = tmp_path_factory.mktemp("desk-seeded") / "desk.db"
    shutil.copyfile(migrated_file, path)
    engine = make_engine(f"sqlite:///{path}")
    day = seed_day(engine)
    add_user(engine, "anna", DeskRole.ASSISTANT)
    add_user(engine, "piet", DeskRole.POLIMANAGER)
    add_user(engine, "beheer", DeskRole.ADMINISTRATOR)
    MandateRepository(engine).save(mandate())
    engine.dispose()
    return SeededFile(path, day)


@pytest.fixture
def seeded(seeded_file: SeededFile) -> SeededDay:
    """The seeded day's run and item ids (`desk_engine` holds the day)."""
    return seeded_file.day


@pytest.fixture
def client_as(seeded: SeededDay, desk_engine: Engine) -> Callable[[str], TestClient]:
    def build(username: str) -> TestClient:
        return sign_in(make_client(desk_engine), username)

    return build


@pytest.fixture(scope="session")
def demo_desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoDesk]:
    """`prefetch demo` once (2048-bit test keys), then the desk on its data with the
    simulator running, as `prefetch desk --demo DIR` serves it. Shared by the action and
    browser tests: each picks its own patients."""
    from prefetch.cli.demo import run_demo
    from prefetch.store.desk_users import DeskUserRepository
    from prefetch.web.compose import demo_desk_app, ensure_demo_account

    data_dir = tmp_path_factory.mktemp("demo")
    result = run_demo(data_dir, profile_name="ideal", key_size=2048)
    with demo_desk_app(data_dir, profile_name="ideal") as (app, stores):
        name, password, _ = ensure_demo_account(DeskUserRepository(stores.engine), data_dir)
        yield DemoDesk(app, stores, data_dir, result.clinic_day, name, password)
