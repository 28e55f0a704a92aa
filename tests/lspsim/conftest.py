"""Fixtures for the simulator tests: a small seeded world, profiles, a fake clock."""

from __future__ import annotations

import pytest
from lspsim_helpers import REFERENCE_DATE

from prefetch.lspsim.clock import FakeClock
from prefetch.lspsim.world import World


@pytest.fixture(scope="session")
def world() -> World:
    """Shared read-only world (tests that add patients build their own)."""
    return World.generate(20261120, 160, reference_date=REFERENCE_DATE)


@pytest.fixture
def own_world() -> World:
    return World.generate(4242, 40, reference_date=REFERENCE_DATE)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
