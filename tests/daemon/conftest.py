"""One development PKI for the daemon process tests (generating keys costs seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefetch.demo.setup import ensure_pki


@pytest.fixture(scope="session")
def dev_pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("daemon-pki")
    ensure_pki(directory, key_size=2048)
    return directory
