"""File modes: private data directory and database files; open secret files refused."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from audit_helpers import PASSPHRASE
from sqlalchemy import text

from prefetch.errors import ConfigError
from prefetch.security.keys import Credential, read_passphrase
from prefetch.security.pki import DevPki
from prefetch.store.db import make_engine


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sqlite_data_directory_and_files_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    engine = make_engine(f"sqlite:///{data / 'prefetch.sqlite'}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
        files = sorted(p.name for p in data.iterdir())
        assert files == ["prefetch.sqlite", "prefetch.sqlite-shm", "prefetch.sqlite-wal"]
        assert _mode(data) == 0o700
        assert {p.name: _mode(p) for p in data.iterdir()} == dict.fromkeys(files, 0o600)
    finally:
        engine.dispose()


def test_an_open_data_directory_and_database_are_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    db = data / "prefetch.sqlite"
    db.touch()
    db.chmod(0o644)
    engine = make_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
    finally:
        engine.dispose()
    assert _mode(data) == 0o700
    assert all(_mode(p) == 0o600 for p in data.iterdir())


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_passphrase_file_open_to_others_is_refused_with_the_fix(
    tmp_path: Path, mode: int
) -> None:
    path = tmp_path / "pki.passphrase"
    path.write_bytes(PASSPHRASE)
    path.chmod(mode)
    with pytest.raises(ConfigError) as info:
        read_passphrase(path)
    message = str(info.value)
    assert f"mode {mode:04o}" in message
    assert f"chmod 600 {path}" in message
    assert PASSPHRASE.decode() not in message
    path.chmod(0o600)
    assert read_passphrase(path) == PASSPHRASE
    path.chmod(0o400)
    assert read_passphrase(path) == PASSPHRASE


def test_a_world_readable_key_store_is_refused(audit_pki: DevPki, tmp_path: Path) -> None:
    copy = tmp_path / "hospital.p12"
    copy.write_bytes(audit_pki.hospital.p12.read_bytes())
    copy.chmod(0o666)
    with pytest.raises(ConfigError, match=r"key store .*\(mode 0666\).*chmod 600"):
        Credential.load(copy, PASSPHRASE)
    copy.chmod(0o600)
    assert Credential.load(copy, PASSPHRASE).certificate
