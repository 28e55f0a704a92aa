"""Fixtures for the HL7v3 tests: the shared reference material and typical values."""

from __future__ import annotations

from pathlib import Path

import pytest
from hl7_samples import EXAMPLES, make_params

from prefetch.hl7v3.params import QueryParams, QueryRef


@pytest.fixture(scope="session")
def examples() -> Path:
    return EXAMPLES  # hl7_samples checked it (reference.shared_path) when it was imported


@pytest.fixture
def params() -> QueryParams:
    return make_params()


@pytest.fixture
def ref(params: QueryParams) -> QueryRef:
    return QueryRef.of(params)
