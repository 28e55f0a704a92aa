"""The daemon's schedules: read at start, re-read when the files change, used only when
they pass the check. A changed set with a problem keeps the old set in force, and the log
says which file and line and why (schedule files hold no patient data)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from prefetch.domain.schedule import Schedule
from prefetch.errors import ConfigError
from prefetch.logging import get_logger
from prefetch.schedule_files import load_schedules

log = get_logger("prefetch.daemon.schedules")

Loader = Callable[[Path], Sequence[Schedule]]


def _stamp(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when a schedule file is added, removed or edited."""
    found = []
    for path in sorted(directory.glob("*.toml")):
        try:
            st = path.stat()
        except OSError:
            continue
        found.append((path.name, st.st_mtime_ns, st.st_size))
    return tuple(found)


class ScheduleBook:
    """The schedules in force. `reload_if_changed()` swaps in a changed set only if all of
    it loads; the first load raises (the daemon does not start on a bad set)."""

    def __init__(self, directory: Path, loader: Loader = load_schedules) -> None:
        self.directory = directory
        self._loader = loader
        self._lock = threading.Lock()
        self._stamp = _stamp(directory)
        self._schedules = {s.id: s for s in loader(directory)}
        self.refused: str | None = None  # why the last changed set was not used

    def schedules(self) -> list[Schedule]:
        with self._lock:
            return list(self._schedules.values())

    def get(self, schedule_id: str) -> Schedule | None:
        with self._lock:
            return self._schedules.get(schedule_id)

    def reload_if_changed(self) -> bool:
        """True when a changed, valid set is now in force."""
        stamp = _stamp(self.directory)
        if stamp == self._stamp:
            return False
        self._stamp = stamp  # judge each change once, not on every poll
        try:
            loaded = {s.id: s for s in self._loader(self.directory)}
        except ConfigError as exc:
            self.refused = str(exc)
            log.error(
                "schedules_reload_refused",
                reason=str(exc),
                keeping=sorted(self._schedules),
            )
            return False
        with self._lock:
            old = set(self._schedules)
            self._schedules = loaded
        self.refused = None
        log.info(
            "schedules_reloaded",
            schedules=sorted(loaded),
            added=sorted(set(loaded) - old),
            removed=sorted(old - set(loaded)),
        )
        return True
