"""File modes for what holds patient data or secrets.

- The data directory is 0700 and its database files (with SQLite's `-wal` and `-shm`) are
  0600: any other local user could otherwise read BSNs and medication.
- Key stores (PKCS#12) and passphrase files are refused when group or others may read or
  write them, as ssh refuses such a private key, with the `chmod` that fixes it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefetch.errors import ConfigError

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
_OTHERS = stat.S_IRWXG | stat.S_IRWXO


@contextmanager
def private_umask() -> Iterator[None]:
    """Create every file and directory private to this user while the block runs."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) mode 0700, or take group and others' access away from
    an existing directory of ours."""
    try:
        path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        _tighten(path, PRIVATE_DIR)
    except OSError as exc:
        raise ConfigError(
            "cannot create a private directory", path=str(path), error=type(exc).__name__
        ) from None
    return path


def private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 when missing; tighten it to 0600 when not."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE)
    os.close(fd)
    _tighten(path, PRIVATE_FILE)


def tighten_files(*paths: Path) -> None:
    """Mode 0600 for those of `paths` that exist (SQLite's -wal and -shm come and go)."""
    for path in paths:
        try:
            _tighten(path, PRIVATE_FILE)
        except FileNotFoundError:
            continue


def _tighten(path: Path, mode: int) -> None:
    info = path.stat()
    if info.st_mode & _OTHERS and info.st_uid == os.getuid():
        path.chmod(mode)


def require_private(path: Path, what: str) -> None:
    """Refuse a secret file that group or others may read or write (like ssh does)."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return  # the caller's read reports a missing or unreadable file
    if mode & _OTHERS:
        raise ConfigError(
            f"{what} {path} is accessible by group or others (mode {mode:04o}); refused",
            fix=f"chmod 600 {path}",
        )


def read_secret_line(path: Path, what: str) -> str:
    """The first line of a private secret file (a database URL with its password)."""
    require_private(path, what)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what}", path=str(path), error=type(exc).__name__) from None
    value = lines[0].strip() if lines else ""
    if not value:
        raise ConfigError(f"{what} is empty", path=str(path))
    return value
